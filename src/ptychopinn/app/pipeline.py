"""The jobs behind the subcommands: simulate, train, infer, evaluate.

Each job reads its inputs, calls the library packages (``ptychopinn.data``,
``ptychopinn.stitch``) and a backend obtained from ``ptychopinn.core.get_backend``,
and writes its outputs plus a ``report.md`` into one directory. No deep-learning
framework is imported here.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.core import BUNDLE_NAME, stitch_at_group_centres
from ptychopinn.core.history import TRAIN_LOSS

from . import reports
from .errors import InputError, one_line

__all__ = [
    "EvaluationResult",
    "InferenceResult",
    "TrainingRun",
    "align_to_truth",
    "claim_output_dir",
    "evaluate_aligned",
    "evaluate_files",
    "evaluate_images",
    "group_for_model",
    "infer",
    "predict_patches",
    "read_probe",
    "read_scan",
    "simulate_files",
    "split_scan",
    "train",
]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, the previous-run check stays
    fcntl = None  # type: ignore[assignment]

Log = Callable[[str], None]
logger = logging.getLogger(__name__)
LOCK_NAME = ".ptychopinn.lock"
RUN_MARKERS = (BUNDLE_NAME, "history.json", "config.yaml", "checkpoints", "metrics.csv")
"""What a training run leaves in its output folder (either backend)."""
MAX_CANVAS_SIDE_PX = 8192
"""Positions that need a larger stitching canvas are implausible (wrong units?) unless
``infer(..., allow_large_canvas=True)``: 8192² complex pixels are 0.5 GiB per image."""
PRODUCT_SUFFIXES = (".h5", ".hdf5")


def _silent(_: str) -> None:
    return None


PREDICT_CHUNK_BATCHES = 8
"""``predict_patches`` hands the backend this many batches at a time, so that a progress
bar can move (a 100 k-pattern scan is minutes of inference)."""


def predict_patches(
    backend: Any, model: Any, data: Any, batch_size: int | None = None, *, progress: bool = False
) -> np.ndarray:
    """The backend's ``predict`` over `data` in chunks, with a tqdm bar if `progress`.

    Returns the patches ``(B, N, N, 1)`` complex64, the same as one ``predict`` call.
    The bar goes to stderr; the command line turns it on only when stderr is a terminal
    and ``-q`` is not given.
    """
    from tqdm import tqdm

    total = len(data)
    chunk = max(int(batch_size or 64), 1) * PREDICT_CHUNK_BATCHES
    if total <= chunk:
        starts = [0]
    else:
        starts = list(range(0, total, chunk))
    parts = []
    with tqdm(total=total, desc="inference", unit="pattern", disable=not progress) as bar:
        for start in starts:
            stop = min(start + chunk, total)
            part = data if (start, stop) == (0, total) else data.subset(slice(start, stop))
            parts.append(np.asarray(backend.predict(model, part, batch_size=batch_size)))
            bar.update(stop - start)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


def _require_file(path: Path | None, what: str) -> Path:
    from ptychopinn.data import check_input_file

    if path is None:
        raise InputError(f"no {what} given")
    return check_input_file(path)  # missing, a folder, a FIFO/device or unreadable: refused


def read_scan(path: Path, measurement: str | None = None) -> Any:
    """Load a ScanData from an upstream NPZ or a ptychodus product with raw data."""
    from ptychopinn.data import load

    return load(_require_file(path, "data file"), measurement)


def read_probe(path: Path) -> np.ndarray:
    """Read a probe (N, N) complex from .npy, an NPZ (``probeGuess``/``probe``) or a product."""
    path = _require_file(path, "probe file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            probe = np.load(path, allow_pickle=False)
        elif suffix in PRODUCT_SUFFIXES:
            from ptychopinn.data import load_product

            probe = load_product(path).probe
        else:
            with np.load(path, allow_pickle=False) as npz:
                key = next((k for k in ("probeGuess", "probe") if k in npz.files), None)
                if key is None:
                    raise InputError(
                        f"{path}: no 'probeGuess' or 'probe' array, found {sorted(npz.files)}"
                    )
                probe = npz[key]
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: cannot read a probe: {exc}") from None
    probe = np.asarray(probe)
    while probe.ndim > 2 and probe.shape[0] == 1:
        probe = probe[0]  # products may carry (1, H, W) or (1, 1, H, W) probe modes
    if probe.ndim != 2 or probe.shape[0] != probe.shape[1]:
        raise InputError(f"{path}: the probe must be square (N, N), found shape {probe.shape}")
    return probe.astype(np.complex64)


def split_scan(scan: Any, test_fraction: float) -> tuple[Any, Any]:
    """Split a scan spatially: the top rows train, the bottom `test_fraction` of rows test.

    A spatial split (not a random one) keeps the test region unseen during training.
    """
    if not 0 < test_fraction < 1:
        raise InputError(f"test_fraction={test_fraction} must be between 0 and 1")
    order = np.argsort(scan.ycoords, kind="stable")
    n_test = round(test_fraction * scan.n_positions)
    n_test = min(max(n_test, 1), scan.n_positions - 1)
    if scan.n_positions < 2:
        raise InputError("a scan of one position cannot be split into train and test")
    train_idx = np.sort(order[: scan.n_positions - n_test])
    test_idx = np.sort(order[scan.n_positions - n_test :])
    return scan.subset(train_idx), scan.subset(test_idx)


def simulate_files(
    output_dir: Path,
    object_type: str = "lines",
    n_images: int = 512,
    N: int = 64,
    object_size: int | None = None,
    nphotons: float = 1e9,
    probe_path: Path | None = None,
    scan: str = "random",
    seed: int = 0,
    test_fraction: float = 0.5,
    probe_defocus: float = 0.0,
) -> dict[str, Path]:
    """Simulate a dataset; write ``data.npz``, ``train.npz``, ``test.npz``, ``object.png``, ``report.md``.

    Without ``probe_path`` the probe is ``default_probe(N, probe_defocus)``.
    """
    from ptychopinn.config import ModelConfig
    from ptychopinn.data import default_probe, save_npz, simulate

    ModelConfig(N=N)  # validates N with the project's message
    if probe_path is not None:
        if probe_defocus:
            raise InputError(
                "give a probe file or a probe defocus for the built-in probe, not both"
            )
        probe = read_probe(probe_path)
        if probe.shape != (N, N):
            raise InputError(f"{probe_path}: probe shape {probe.shape} does not match N={N}")
    else:
        probe = default_probe(N, probe_defocus)
    data = simulate(
        object=object_type,
        n_images=n_images,
        N=N,
        object_size=object_size,
        nphotons=nphotons,
        seed=seed,
        scan=scan,
        probe=probe,
    )
    train_scan, test_scan = split_scan(data, test_fraction)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "data": save_npz(data, output_dir / "data.npz"),
        "train": save_npz(train_scan, output_dir / "train.npz"),
        "test": save_npz(test_scan, output_dir / "test.npz"),
    }
    assert data.object is not None  # simulate() always returns its object
    paths["object"] = reports.save_image_figure(
        output_dir / "object.png", data.object, f"simulated {object_type}"
    )
    paths["report"] = reports.write_report(
        output_dir / "report.md",
        "ptychopinn simulation",
        summary={
            "object": f"{object_type}, {data.object.shape[1]}x{data.object.shape[0]} px",
            "scan": f"{scan}, {data.n_positions} positions",
            "patterns": f"N={N}, {nphotons:.3g} photons per pattern",
            "probe": str(probe_path)
            if probe_path is not None
            else f"built in, defocus {probe_defocus:g}",
            "seed": seed,
            "split": f"{train_scan.n_positions} train / {test_scan.n_positions} test "
            f"(test fraction {test_fraction:g})",
            "files": ", ".join(p.name for p in paths.values()),
        },
        figures={"simulated object": paths["object"]},
    )
    return paths


def group_for_model(
    scan: Any,
    model: Any,
    sampling: Any,
    nphotons: float | None,
    intensity_scale: float | None = None,
) -> Any:
    """Group a scan with a ModelConfig and the sampling fields of a Training/InferenceConfig.

    ``nphotons`` None: the photon count from the data (``ptychopinn.data.photon_count``);
    ``intensity_scale`` (inference: the bundle's s0) makes it unnecessary.
    """
    from ptychopinn.data import group_for_config

    if scan.N != model.N:
        raise InputError(
            f"{scan.metadata.get('source', 'the data')}: patterns are {scan.N}x{scan.N} but the "
            f"model expects N={model.N}; set model.N={scan.N} or use matching data"
        )
    return group_for_config(
        scan, model, sampling, nphotons=nphotons, intensity_scale=intensity_scale
    )


def _match_model_to_data(configs: dict[str, Any], scan: Any, log: Log) -> dict[str, Any]:
    """Take N from the data when the config leaves it at the default."""
    from ptychopinn.config import ModelConfig

    model = configs["model"]
    if model.N == scan.N:
        return configs
    if model.N != ModelConfig().N:
        return configs  # an explicit mismatch: group_for_model reports it
    log(f"using N={scan.N} from the data (config default was N={model.N})")
    model = model.replace(N=scan.N)
    out = dict(configs, model=model)
    for name in ("training", "inference"):
        out[name] = configs[name].replace(model=model)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)


@dataclass
class TrainingRun:
    """What ``train`` wrote and measured."""

    output_dir: Path
    bundle_path: Path
    report_path: Path
    history: dict[str, list[float]]
    seconds: float
    backend: str
    model: Any = field(repr=False, default=None)
    configs: dict[str, Any] = field(repr=False, default_factory=dict)


@contextmanager
def claim_output_dir(output_dir: Path, overwrite: bool = False) -> Iterator[Path]:
    """Hold ``output_dir`` for one training run: refuse it while another run holds it,
    and refuse a folder with a previous run unless ``overwrite``.

    The claim is an exclusive ``flock`` on ``output_dir/.ptychopinn.lock`` (released by
    the kernel when the process ends, kill -9 included, so a crashed run never leaves
    the folder locked). A previous run is any of ``RUN_MARKERS``; with ``overwrite``
    its stale ``checkpoints/`` are removed (a resume would pick up their ``last.ckpt``)
    and its other files are replaced, each atomically, as the new run writes them.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    lock_path = output_dir / LOCK_NAME
    with open(lock_path, "a+", encoding="utf-8") as lock:
        if fcntl is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                holder = lock.read().strip() or "pid unknown"
                raise InputError(
                    f"{output_dir}: in use by another training run ({holder}, lock {lock_path}); "
                    "wait for it to finish or choose another --output-dir"
                ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        previous = [m for m in RUN_MARKERS if (output_dir / m).exists()]
        if previous and not overwrite:
            raise InputError(
                f"{output_dir}: holds a previous run ({', '.join(previous)}); pass --overwrite "
                "to replace it, or choose another --output-dir"
            )
        if previous:
            shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
        yield output_dir


def train(
    configs: dict[str, Any],
    train_path: Path | None = None,
    test_path: Path | None = None,
    log: Log | None = None,
    overwrite: bool = False,
    on_backend: Callable[[Any], None] | None = None,
    backend_chosen: bool = True,
) -> TrainingRun:
    """Train on an NPZ/product file with the configs of ``load_config``; write bundle and report.

    The output folder is claimed for the run (:func:`claim_output_dir`): a folder in
    use by another run, or holding a previous run without ``overwrite``, is refused.
    Progress messages go to `log` (default: this module's logger at INFO);
    `on_backend(backend)` is called once the inputs are read and the backend is loaded.
    ``backend_chosen=False`` says that ``training.backend`` is only the configs' default
    (the user named none): the installed backend is used instead
    (:func:`ptychopinn.app.environment.choose_backend`), once the inputs are read.
    """
    log = log or logger.info
    from ptychopinn.config import save_config
    from ptychopinn.core import get_backend
    from ptychopinn.data import photon_count, write_text_atomic

    training = configs["training"]
    train_path = _require_file(
        train_path or training.train_data_file, "training data (--train-data)"
    )
    test_path = test_path or training.test_data_file
    if test_path is not None:
        test_path = _require_file(test_path, "test data (--test-data)")
    scan = read_scan(train_path)
    test_scan = read_scan(test_path) if test_path is not None else None
    if not backend_chosen:
        from .environment import choose_backend

        choice = choose_backend()
        log(f"backend: {choice.name} ({choice.reason})")
        configs = {**configs, "training": training.replace(backend=choice.name)}
        training = configs["training"]
    backend = get_backend(training.backend)
    if on_backend is not None:
        on_backend(backend)
    configs = _match_model_to_data(configs, scan, log)
    training = configs["training"].replace(train_data_file=train_path, test_data_file=test_path)
    configs["training"] = training
    model_config = configs["model"]
    # One count for the run, decided from the training data (given > metadata > mean counts).
    photons = photon_count(scan, training.nphotons)
    log(f"{photons.describe()}: intensity scale from {train_path}")
    train_data = group_for_model(scan, model_config, training, photons.value)
    test_data = None
    if test_path is not None:
        test_data = group_for_model(test_scan, model_config, training, photons.value)
    output_dir = Path(training.output_dir)
    with claim_output_dir(output_dir, overwrite):
        log(
            f"training on {len(train_data)} groups ({train_path}) with {training.backend}, "
            f"{training.nepochs} epochs, N={model_config.N}, gridsize={model_config.gridsize}"
        )
        started = time.perf_counter()
        result = backend.train(train_data, test_data, training, configs["execution"])
        seconds = time.perf_counter() - started
        model, history = result.model, result.history
        bundle_path = output_dir / BUNDLE_NAME
        backend.save_bundle(model, bundle_path)
        save_config(configs, output_dir / "config.yaml")
        write_text_atomic(output_dir / "history.json", json.dumps(history, indent=2))
        figures = {}
        if history and any(history.values()):
            figures["loss curves"] = reports.save_loss_figure(output_dir / "loss.png", history)
        final = {k: v[-1] for k, v in history.items() if v}
        report = reports.write_report(
            output_dir / "report.md",
            "ptychopinn training run",
            summary={
                "backend": training.backend,
                "training data": str(train_path),
                "groups": len(train_data),
                "epochs run": max((len(v) for v in history.values()), default=0),
                "seconds": round(seconds, 1),
                "bundle": BUNDLE_NAME,
            },
            metrics={"final epoch": final} if final else None,
            figures=figures,
            config=_config_dicts(configs),
        )
        epochs_run = max((len(v) for v in history.values()), default=0)
        if 0 < epochs_run < training.nepochs:
            log(
                f"training stopped after {epochs_run} of {training.nepochs} epochs "
                "(early stopping or a stall check; see history.json)"
            )
        log(f"trained in {seconds:.1f} s; bundle {bundle_path}")
        return TrainingRun(
            output_dir, bundle_path, report, history, seconds, training.backend, model, configs
        )


def _config_dicts(configs: Mapping[str, Any]) -> dict[str, Any]:
    from ptychopinn.config import to_file_dict

    return to_file_dict(
        {k: v for k, v in configs.items() if k in ("model", "training", "inference", "execution")}
    )


# --- inference ----------------------------------------------------------------------


def _bundle_manifest(path: Path) -> dict[str, Any]:
    from ptychopinn.data import read_bundle

    return read_bundle(_require_file(path, "model bundle (--model)")).manifest


def _model_config_from_manifest(manifest: Mapping[str, Any], path: Path) -> Any:
    from ptychopinn.config import ModelConfig, TrainingConfig, from_dict

    config = manifest.get("config")
    if not isinstance(config, Mapping):
        raise InputError(f"{path}: the bundle manifest holds no 'config' mapping")
    if "model" in config and isinstance(config["model"], Mapping) and "N" not in config:
        try:
            return from_dict(TrainingConfig, config).model
        except ValueError:
            return from_dict(ModelConfig, config["model"])
    return from_dict(ModelConfig, config)


#: Stitch predicted patches (B, N, N, 1) at the group centres (``ptychopinn.core``).
stitch_patches = stitch_at_group_centres


def save_reconstruction(path: Path, stitched: Any, extra: Mapping[str, Any] | None = None) -> Path:
    """Write the stitched object (complex), amplitude, phase and pixel origin to an NPZ."""
    image = np.asarray(stitched.image).astype(np.complex64)
    arrays: dict[str, Any] = {
        "object": image,
        "amplitude": np.abs(image).astype(np.float32),
        "phase": np.angle(image).astype(np.float32),
        "origin": np.asarray(stitched.origin, dtype=np.float64),
        "covered": np.asarray(stitched.covered),
    }
    for key, value in (extra or {}).items():
        arrays[key] = np.asarray(value)
    from ptychopinn.data import atomic_write

    with atomic_write(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    return path


@dataclass
class InferenceResult:
    """What ``infer`` wrote."""

    output_dir: Path
    recon_path: Path
    product_path: Path
    report_path: Path
    metrics: dict[str, Any] | None
    seconds: float
    truth_skipped: str | None = None
    """Why the optional comparison with the data's truth was skipped (None: done or no truth)."""


def _loss_history(bundle_path: Path, manifest: Mapping[str, Any]) -> list[float]:
    """The training loss per epoch, from the manifest or a history.json beside the bundle."""
    history = manifest.get("history")
    if not isinstance(history, Mapping):
        beside = bundle_path.parent / "history.json"
        if beside.exists():
            try:
                history = json.loads(beside.read_text())
            except ValueError:
                history = None
    if isinstance(history, Mapping) and TRAIN_LOSS in history:
        return [float(v) for v in history[TRAIN_LOSS]]
    return []


def infer(
    bundle_path: Path,
    data_path: Path,
    output_dir: Path | None = None,
    backend: str | None = None,
    config_path: Path | None = None,
    overrides: Sequence[str] = (),
    n_groups: int | None = None,
    stitch_crop: int | None = None,
    stitch_weight: str | None = None,
    batch_size: int | None = None,
    pixel_size_m: float | None = None,
    log: Log | None = None,
    allow_large_canvas: bool = False,
    progress: bool = False,
) -> InferenceResult:
    """Reconstruct `data_path` with a bundle; write recon.npz, PNGs, a ptychodus product, report.

    Positions whose stitching canvas would exceed ``MAX_CANVAS_SIDE_PX`` per side are
    refused before the model is loaded, unless ``allow_large_canvas``. ``progress``
    shows a progress bar over the patterns (:func:`predict_patches`); messages go to
    `log` (default: this module's logger at INFO).
    """
    log = log or logger.info
    from ptychopinn.config import available_backends, load_config
    from ptychopinn.core import get_backend
    from ptychopinn.core.bundle import manifest_float
    from ptychopinn.data import ScanData, save_product

    from .environment import KNOWN_BACKENDS, choose_backend

    bundle_path = _require_file(bundle_path, "model bundle (--model)")
    data_path = _require_file(data_path, "data (--data)")
    manifest = _bundle_manifest(bundle_path)
    configs = load_config(config_path, list(overrides))
    inference = configs["inference"]
    name = backend or manifest.get("backend") or inference.backend
    if backend is None and name in KNOWN_BACKENDS and name not in available_backends():
        # A bundle loads in the other backend through its portable weights.
        choice = choose_backend()
        log(f"the bundle's backend {name} is not installed; using {choice.name} ({choice.reason})")
        name = choice.name
    chosen = get_backend(name)
    model_config = _model_config_from_manifest(manifest, bundle_path)
    inference = inference.replace(
        model=model_config,
        model_path=bundle_path,
        test_data_file=data_path,
        n_groups=n_groups if n_groups is not None else inference.n_groups,
        stitch_crop=stitch_crop if stitch_crop is not None else inference.stitch_crop,
        stitch_weight=stitch_weight if stitch_weight is not None else inference.stitch_weight,
        output_dir=output_dir if output_dir is not None else inference.output_dir,
    )
    configs = {"model": model_config, "inference": inference, "execution": configs["execution"]}
    scan = read_scan(data_path)
    # The model's own s0 (the manifest's, checked by load_bundle): no photon count needed.
    data = group_for_model(
        scan,
        model_config,
        inference,
        None,
        manifest_float(manifest, "intensity_scale", bundle_path),
    )
    if not allow_large_canvas:
        _check_canvas(scan, data, inference.stitch_crop, data_path)
    batch = batch_size or configs["execution"].inference_batch_size
    log(f"loading {bundle_path} ({manifest.get('backend')}) with the {name} backend")
    model = chosen.load_bundle(bundle_path)
    started = time.perf_counter()
    patches = predict_patches(chosen, model, data, batch, progress=progress)
    stitched = stitch_patches(patches, data, inference.stitch_crop, inference.stitch_weight)
    seconds = time.perf_counter() - started
    log(f"reconstructed {len(data)} patches in {seconds:.1f} s")
    out = Path(inference.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    recon_path = save_reconstruction(out / "recon.npz", stitched)
    figures = {
        "reconstruction": reports.save_image_figure(out / "reconstruction.png", stitched.image)
    }
    metrics, skipped = _compare_with_truth(stitched, scan.object, out, figures)
    if skipped is not None:
        warnings.warn(f"{data_path}: comparison with the truth skipped: {skipped}", stacklevel=2)
    # The product: the stitched object, positions relative to its pixel (0, 0).
    x0, y0 = stitched.origin
    pixel = pixel_size_m or scan.metadata.get("object_pixel_width_m")
    if pixel is None:
        logger.warning(
            "object pixel size unknown (--pixel-size-m): product positions use a nominal 10 nm"
        )
    product_scan = ScanData(
        xcoords=scan.xcoords - x0,
        ycoords=scan.ycoords - y0,
        diffraction=scan.diffraction,
        probe=scan.probe,
        object=np.asarray(stitched.image).astype(np.complex64),
        scan_index=scan.scan_index,
        metadata={k: v for k, v in scan.metadata.items() if k != "source"},
    )
    geometry: dict[str, Any] = {} if pixel is None else {"object_pixel_width_m": float(pixel)}
    product_path = save_product(
        product_scan,
        out / "product.h5",
        loss_values=np.asarray(_loss_history(bundle_path, manifest), dtype=np.float64),
        name="ptychopinn",
        **geometry,
    )
    report = reports.write_report(
        out / "report.md",
        "ptychopinn inference",
        summary={
            "backend": name,
            "bundle": str(bundle_path),
            "data": str(data_path),
            "patches": len(data),
            "seconds": round(seconds, 2),
            "product": product_path.name,
            **({"truth comparison": f"skipped: {skipped}"} if skipped is not None else {}),
        },
        metrics={"reconstruction": metrics} if metrics else None,
        figures=figures,
        config=_config_dicts(configs),
    )
    return InferenceResult(out, recon_path, product_path, report, metrics, seconds, skipped)


def _compare_with_truth(
    stitched: Any, truth: np.ndarray | None, out: Path, figures: dict[str, Path]
) -> tuple[dict[str, Any] | None, str | None]:
    """The optional comparison of ``infer``: (metrics, None), or (None, why it was skipped).

    It never fails the job: a reconstruction whose scanned region cannot be evaluated
    (too sparse a scan to hold a covered rectangle, hardly any overlap) is the same
    outcome as ``ptychopinn.stitch.evaluate_if_possible``'s ``metrics_error``.
    """
    from ptychopinn.stitch import StitchError

    if truth is None:
        return None, None
    try:
        aligned = align_to_truth(stitched, truth)
        metrics = evaluate_aligned(aligned)
    except (StitchError, InputError) as exc:
        return None, one_line(exc)
    figures["reconstruction vs truth"] = reports.save_reconstruction_figure(
        out / "comparison.png", aligned.recon, aligned.truth
    )
    from ptychopinn.data import write_text_atomic

    write_text_atomic(out / "metrics.json", json.dumps(_plain(metrics), indent=2))
    return metrics, None


def _check_canvas(scan: Any, data: Any, crop: int, path: Path) -> None:
    """Refuse positions whose stitching canvas would exceed ``MAX_CANVAS_SIDE_PX``."""
    from ptychopinn.stitch import canvas_geometry

    (side, _), _ = canvas_geometry(data.coords_offsets[:, 0, :, 0], crop)
    if side <= MAX_CANVAS_SIDE_PX:
        return
    x, y = scan.xcoords, scan.ycoords
    raise InputError(
        f"{path}, keys 'xcoords'/'ycoords': expected positions in object pixels that fit a "
        f"canvas of at most {MAX_CANVAS_SIDE_PX} x {MAX_CANVAS_SIDE_PX} px, found x "
        f"{x.min():.6g}..{x.max():.6g}, y {y.min():.6g}..{y.max():.6g}, which need a "
        f"{side} x {side} px canvas ({side * side * 8 / 2**30:.1f} GiB per complex image); "
        "check the positions' units, or pass --allow-large-canvas"
    )


# --- evaluation ---------------------------------------------------------------------


@dataclass
class Aligned:
    """A reconstruction and the matching region of the truth as the metrics see them.

    ``recon`` and ``truth`` are `(h, w)` complex128: the reconstruction registered to the
    truth, its amplitude scaled by ``alignment.amplitude_scale``, both phases with their
    planes removed (``ptychopinn.stitch.Alignment.recon`` / ``.truth``).
    """

    recon: np.ndarray
    truth: np.ndarray
    origin: tuple[int, int]
    """(col, row) of the region's top-left pixel in the truth."""
    alignment: Any = field(repr=False, default=None)
    """The ``ptychopinn.stitch.Alignment`` behind it (shift, scale, separate phases)."""


def align_to_truth(stitched: Any, truth: np.ndarray, *, register: bool = True) -> Aligned:
    """Bring a ``Stitched`` image onto the truth `(H, W)` over the scanned region they share.

    ``ptychopinn.stitch.align``: crop to the fully covered scanned region (the stitched
    origin is in object pixels and may be fractional: the image is then resampled onto
    the truth's grid), register to the truth with sub-pixel precision (``register=False``
    opts out), scale the amplitude and remove the phase planes, exactly as the metrics
    do. A region smaller than 8x8 pixels is an error.
    """
    from ptychopinn.stitch import align

    alignment = align(stitched, np.asarray(truth), register=register)
    if min(alignment.shape) < 8:
        raise InputError(
            f"the reconstruction (origin x={stitched.origin[0]:g}, y={stitched.origin[1]:g}, "
            f"shape {np.shape(stitched.image)}) hardly overlaps the truth (shape {np.shape(truth)})"
        )
    return Aligned(alignment.recon, alignment.truth, alignment.origin, alignment)


def evaluate_aligned(aligned: Aligned) -> dict[str, Any]:
    """The metrics of an ``align_to_truth`` result (``ptychopinn.stitch.evaluate_aligned``),
    JSON-ready: measured on exactly the images a figure of ``aligned`` shows."""
    from ptychopinn.stitch import evaluate_aligned as measure_alignment

    return _finite(_plain(measure_alignment(aligned.alignment)))


def evaluate_images(
    recon: np.ndarray, truth: np.ndarray, *, register: bool = True
) -> dict[str, Any]:
    """Metrics of a complex reconstruction `(H, W)` against the truth on the same grid
    (``ptychopinn.stitch.evaluate``: registered to the truth unless ``register=False``)."""
    from ptychopinn.stitch import evaluate

    return _finite(_plain(evaluate(recon, truth, register=register)))


def _finite(value: Any) -> Any:
    """Replace inf/nan by strings so that metrics.json stays standard JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@dataclass
class EvaluationResult:
    """What ``evaluate_files`` wrote."""

    metrics: dict[str, Any]
    metrics_path: Path
    report_path: Path
    figures: dict[str, Path]


def _require_zip(path: Path) -> None:
    import zipfile

    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not an NPZ (zip) archive")


def _read_recon(path: Path) -> Any:
    """Read a recon.npz written by ``infer`` back into a ``Stitched``."""
    from ptychopinn.stitch import Stitched

    path = _require_file(path, "reconstruction (--recon)")
    _require_zip(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = set(npz.files)
            if "object" in files:
                image = npz["object"]
            elif {"amplitude", "phase"} <= files:
                image = npz["amplitude"] * np.exp(1j * npz["phase"])
            else:
                raise InputError(
                    f"{path}: expected 'object' or 'amplitude'+'phase' (as written by "
                    f"'ptychopinn infer'), found {sorted(files)}"
                )
            origin = tuple(float(v) for v in npz["origin"]) if "origin" in files else (0.0, 0.0)
            covered = npz["covered"] if "covered" in files else None
    except InputError:
        raise
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: not a readable NPZ reconstruction: {exc}") from None
    image = np.asarray(image)
    if image.ndim != 2:
        raise InputError(f"{path}: the reconstruction must be a 2-D image, found {image.shape}")
    if covered is None or np.shape(covered) != image.shape:
        covered = np.abs(image) > 0
    # A fractional origin is fine: ptychopinn.stitch.overlay resamples it onto the truth grid.
    if len(origin) != 2 or not all(math.isfinite(v) for v in origin):
        raise InputError(
            f"{path}: 'origin' must be two finite pixel numbers (x0, y0), found {origin}"
        )
    return Stitched(image.astype(np.complex64), (origin[0], origin[1]), covered.astype(np.float64))


def _read_truth(path: Path) -> np.ndarray:
    path = _require_file(path, "ground truth (--truth)")
    if path.suffix.lower() == ".npy":
        try:
            truth = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable .npy array: {exc}") from None
    elif path.suffix.lower() in PRODUCT_SUFFIXES:
        from ptychopinn.data import load_product

        truth = load_product(path).object
    else:
        _require_zip(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                key = next((k for k in ("objectGuess", "object") if k in npz.files), None)
                if key is None:
                    raise InputError(
                        f"{path}: no ground truth: expected key 'objectGuess', found {sorted(npz.files)}"
                    )
                truth = npz[key]
        except InputError:
            raise
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"{path}: not a readable NPZ: {exc}") from None
    truth = np.asarray(truth)
    while truth.ndim > 2 and truth.shape[0] == 1:
        truth = truth[0]
    if truth.ndim != 2:
        raise InputError(f"{path}: the ground truth must be a 2-D image, found {truth.shape}")
    return truth.astype(np.complex64)


def evaluate_files(
    recon_path: Path,
    truth_path: Path,
    output_dir: Path | None = None,
    *,
    register: bool = True,
) -> EvaluationResult:
    """Compare a reconstruction NPZ with the ground truth; write metrics.json, figures, report.

    The reconstruction is registered to the truth (sub-pixel; the shift found is
    ``metrics["shift"]``) unless ``register=False``; ``evaluation.png`` shows the images
    the metrics measured (amplitude scaled, phase planes removed).
    """
    _require_file(recon_path, "reconstruction (--recon)")
    _require_file(truth_path, "ground truth (--truth)")
    stitched = _read_recon(recon_path)
    truth = _read_truth(truth_path)
    aligned = align_to_truth(stitched, truth, register=register)
    metrics = evaluate_aligned(aligned)
    out = Path(output_dir) if output_dir is not None else Path(recon_path).parent
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.json"
    from ptychopinn.data import write_text_atomic

    write_text_atomic(metrics_path, json.dumps(metrics, indent=2))
    figures = {
        "reconstruction vs truth": reports.save_reconstruction_figure(
            out / "evaluation.png", aligned.recon, aligned.truth
        )
    }
    frc = frc_curves(metrics)
    if frc:
        figures["Fourier ring correlation"] = reports.save_frc_figure(out / "frc.png", frc)
    report = reports.write_report(
        out / "evaluation.md",
        "ptychopinn evaluation",
        summary={"reconstruction": str(recon_path), "truth": str(truth_path)},
        metrics={"reconstruction": scalar_metrics(metrics)},
        figures=figures,
    )
    return EvaluationResult(metrics, metrics_path, report, figures)


def frc_curves(metrics: Mapping[str, Any]) -> dict[str, list[float]]:
    """The FRC curve of each part (amplitude, phase) found in a metrics dict."""
    curves = {}
    for part in ("amplitude", "phase"):
        values = metrics.get(part, {})
        if isinstance(values, Mapping):
            frc = values.get("frc_curve")
            if isinstance(frc, list | tuple) and len(frc) > 1:
                curves[part] = [float(v) for v in frc]
    return curves


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the array-valued entries (FRC curves) for tables."""
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            inner = scalar_metrics(value)
            if inner:
                out[key] = inner
        elif isinstance(value, float | int | str | bool) and not (
            isinstance(value, float) and math.isnan(value)
        ):
            out[key] = value
    return out
