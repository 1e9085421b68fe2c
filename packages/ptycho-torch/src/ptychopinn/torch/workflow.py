"""The public workflow of the PyTorch backend: train, predict, bundles, portable weights.

``run_cdi_example`` is the generic ``ptychopinn.core.run_cdi_example`` bound to this
backend (``ptychopinn.torch.backend``).

The surface is the same as the TensorFlow backend's (INTERFACES.md "Backends").
Arrays cross this boundary channels-last as NumPy: ``(B, N, N, C)``.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import torch
from ptychopinn.config import ExecutionConfig, TrainingConfig, layer_plan
from ptychopinn.core import TrainResult, check_data, stitch_at_group_centres
from ptychopinn.core.constants import BUNDLE_NAME, PORTABLE_MEMBER, PROBE_MEMBER
from ptychopinn.core.history import record_epoch
from ptychopinn.data import BundleError, GroupedData, read_bundle, write_bundle
from ptychopinn.data.bundle import load_portable, save_portable

from .errors import ModelMismatchError
from .model import PtychoPINN

__all__ = [
    "BUNDLE_NAME",
    "TrainResult",
    "check_data",
    "export_weights",
    "import_weights",
    "load_bundle",
    "predict",
    "save_bundle",
    "train",
]

NATIVE_MEMBER = "weights.safetensors"
BACKEND_NAME = "pytorch"


# -------------------------------------------------------------------------- train
def train(
    train: GroupedData,
    test: GroupedData | None,
    config: TrainingConfig,
    execution: ExecutionConfig | None = None,
    *,
    ckpt_path: str | Path | None = None,
    save: bool = True,
    on_epoch_end: Callable[[int, Any], bool | None] | None = None,
) -> TrainResult:
    """Train a PtychoPINN on ``train`` (validation split per config), evaluate on ``test``.

    Args:
        train: grouped training data (B, N, N, C).
        test: grouped test data or None; its loss is logged as ``test_loss`` in the history.
        config: training configuration (its ``output_dir`` receives logs, checkpoints, bundle).
        execution: devices, precision, logging; defaults to ``ExecutionConfig()``.
        ckpt_path: resume from this checkpoint; ``"last"`` means ``output_dir/checkpoints/last.ckpt``.
        save: write ``output_dir/wts.h5.zip`` (global rank 0 only).
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` (epoch from 0) after every
            training epoch with the :class:`PtychoPINN` being trained (usable with
            :func:`predict`); returning True stops training after that epoch.

    Returns:
        :class:`TrainResult`; ``extras["stopped_reason"]`` is the stall check's message
        when it stopped training early (else None), ``extras["collapse_check"]`` the
        last collapse-check numbers (``ExecutionConfig.collapse_check``/``stall_patience``).

    Raises:
        NonFiniteLossError: the loss became NaN/inf (names the epoch and last good checkpoint).
        TrainingCollapsedError: the predicted object became constant (names the epoch,
            the measured spread and what to try).
    """
    from .training import (
        EpochHook,
        HistoryCallback,
        PtychoDataModule,
        PtychoLightningModule,
        build_trainer,
    )

    execution = execution if execution is not None else ExecutionConfig()
    check_data(train, config.model, "train")
    if test is not None:
        check_data(test, config.model, "test")
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    cfg = config if config.backend == BACKEND_NAME else config.replace(backend=BACKEND_NAME)
    module = PtychoLightningModule(
        cfg.to_dict(), intensity_scale=float(train.intensity_scale), norm_factor=train.norm_factor
    )
    module.set_probe(train.probe)
    datamodule = PtychoDataModule(train, test, cfg, execution)
    monitor = "val_loss" if datamodule.has_validation else "train_loss"
    module.monitor = monitor
    if execution.jit_compile:
        module.compiled = torch.compile(module.model)
    history = HistoryCallback()
    extra: list[Any] = [history]
    if on_epoch_end is not None:
        extra.append(EpochHook(on_epoch_end))
    trainer = build_trainer(execution, output_dir, cfg.nepochs, monitor, extra)
    if ckpt_path == "last":
        ckpt_path = output_dir / "checkpoints" / "last.ckpt"
    if ckpt_path is not None and not Path(ckpt_path).is_file():
        raise FileNotFoundError(f"checkpoint to resume from does not exist: {ckpt_path}")
    trainer.fit(
        module,
        datamodule=datamodule,
        ckpt_path=str(ckpt_path) if ckpt_path is not None else None,
        weights_only=True,
    )
    if test is not None and len(test) > 0:
        metrics = trainer.validate(module, dataloaders=datamodule.test_dataloader(), verbose=False)
        if metrics:
            # Lightning's validate() logs under the val_ names: these are the test data's.
            test_values = {"test_" + k.removeprefix("val_"): v for k, v in metrics[0].items()}
            record_epoch(history.history, test_values)
    cb = trainer.checkpoint_callback
    best = Path(cb.best_model_path) if cb is not None and cb.best_model_path else None
    last = Path(cb.last_model_path) if cb is not None and cb.last_model_path else None
    model = module.model.cpu()
    model.training_config = cfg
    bundle_path = None
    if save and trainer.is_global_zero:
        bundle_path = save_bundle(model, output_dir / BUNDLE_NAME)
    return TrainResult(
        model=model,
        history=history.history,
        output_dir=output_dir,
        best_checkpoint=best,
        last_checkpoint=last,
        bundle_path=bundle_path,
        extras={"trainer": trainer, "global_rank": trainer.global_rank, **_health_extras(trainer)},
    )


def _health_extras(trainer: Any) -> dict[str, Any]:
    """``stopped_reason``/``stopped_epoch``/``collapse_check`` of the run's HealthCallback."""
    from .training import HealthCallback

    for cb in trainer.callbacks:
        if isinstance(cb, HealthCallback):
            return cb.extras()
    return {"stopped_reason": None, "stopped_epoch": None}


# ------------------------------------------------------------------------ predict
def _as_model(model: Any) -> PtychoPINN:
    inner = getattr(model, "model", model)
    if not isinstance(inner, PtychoPINN):
        raise TypeError(
            f"expected a PtychoPINN (or its LightningModule), got {type(model).__name__}"
        )
    return inner


def predict(
    model: Any,
    data: GroupedData,
    batch_size: int | None = None,
    *,
    precision: str = "32",
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Object patches for every group: ``(B, N, N, 1)`` complex64 (the inference path).

    Streams ``batch_size`` groups at a time (default 16 on CPU, where small batches keep
    the activations in cache -- 8 % faster than 64 on 2 cores -- and 64 on accelerators)
    under ``torch.inference_mode``;
    memory is the output plus one batch. ``precision="bf16-mixed"`` runs the network
    in bfloat16 (physics and the complex object stay float32).
    """
    net = _as_model(model)
    check_data(data, net.config, "data")
    dev = torch.device(device) if device is not None else next(net.parameters()).device
    bs = int(batch_size) if batch_size else (16 if dev.type == "cpu" else 64)
    out = np.empty((len(data), data.N, data.N, 1), dtype=np.complex64)
    was_training = net.training
    net.eval()
    use_bf16 = precision == "bf16-mixed"
    with torch.inference_mode():
        for start in range(0, len(data), bs):
            stop = min(start + bs, len(data))
            x = torch.from_numpy(np.ascontiguousarray(data.X[start:stop])).to(dev)
            rel = torch.from_numpy(np.ascontiguousarray(data.coords_relative[start:stop, 0]))
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                obj = net.diffraction_to_obj(x.permute(0, 3, 1, 2), rel.to(dev))
            out[start:stop] = obj.permute(0, 2, 3, 1).cpu().numpy()
    net.train(was_training)
    return out


# ------------------------------------------------------------------------ weights
def export_weights(model: Any) -> dict[str, np.ndarray]:
    """Every canonical parameter as NumPy: conv ``(out, in, kh, kw)``/``(out,)`` float32,
    ``log_scale`` () float32, ``probe`` (N, N) complex64."""
    net = _as_model(model)
    out: dict[str, np.ndarray] = {}
    for name, tensor in net.canonical_parameters().items():
        t = tensor.detach().cpu()
        if name == "probe":
            out[name] = t.to(torch.complex64).numpy().copy()
        else:
            out[name] = t.to(torch.float32).contiguous().numpy().copy()
    return out


def import_weights(model: Any, weights: dict[str, np.ndarray]) -> None:
    """Load canonical weights (exactly the plan's names and shapes) into ``model``; strict."""
    net = _as_model(model)
    expected = net.plan.parameter_shapes()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise ModelMismatchError(
            f"portable weights do not match the layer plan (N={net.N}, gridsize="
            f"{net.config.gridsize}): missing {missing[:6]}, unexpected {extra[:6]}"
        )
    for name, shape in expected.items():
        got = tuple(np.shape(weights[name]))
        if got != tuple(shape):
            raise ModelMismatchError(
                f"portable weight {name!r} has shape {got}, the model expects {tuple(shape)}"
            )
    params = net.canonical_parameters()
    with torch.no_grad():
        for name, target in params.items():
            value = np.asarray(weights[name])
            dtype = torch.complex64 if name == "probe" else torch.float32
            if name != "probe" and np.iscomplexobj(value):
                raise ModelMismatchError(f"portable weight {name!r} must be real")
            if not np.all(np.isfinite(value)):
                raise ModelMismatchError(f"portable weight {name!r} holds non-finite values")
            target.copy_(torch.as_tensor(value, dtype=dtype).to(target.dtype))


# ------------------------------------------------------------------------ bundles
def _versions() -> dict[str, str]:
    versions = {"torch": torch.__version__}
    for dist in ("ptycho-torch", "ptycho-config", "ptycho-data", "lightning", "safetensors"):
        try:
            versions[dist] = _dist_version(dist)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            versions[dist] = "unknown"
    return versions


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def save_bundle(model: Any, path: str | Path) -> Path:
    """Write ``wts.h5.zip``: manifest, ``weights.safetensors``, ``portable.npz``, ``probe.npy``.

    Atomic (temporary file + rename, via ``ptychopinn.data.bundle.write_bundle``).
    """
    net = _as_model(model)
    tc = net.training_config or TrainingConfig(model=net.config, backend=BACKEND_NAME)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    portable = export_weights(net)
    manifest = {
        "backend": BACKEND_NAME,
        "config": tc.to_dict(),
        "intensity_scale": float(net.s0),
        "intensity_scale_trained": float(torch.exp(net.log_scale.detach())),
        "norm_factor": float(net.norm_factor),
        "N": net.N,
        "gridsize": net.config.gridsize,
        "package_versions": _versions(),
        "layer_plan": layer_plan(net.config).to_dict(),
    }
    members = {
        NATIVE_MEMBER: st_save(state),
        PORTABLE_MEMBER: save_portable(portable),
        PROBE_MEMBER: _npy_bytes(portable["probe"]),
    }
    return write_bundle(path, manifest, members)


def _manifest_float(manifest: dict[str, Any], key: str, path: Path) -> float:
    try:
        value = float(manifest[key])
    except (KeyError, TypeError, ValueError):
        raise BundleError(f"{path}: manifest key {key!r} is missing or not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise BundleError(f"{path}: manifest key {key!r} must be finite and > 0, got {value}")
    return value


def _check_native(
    net: PtychoPINN, state: dict[str, torch.Tensor], portable: bytes | None, path: Path
) -> None:
    """Refuse non-finite native weights, and native weights that disagree with
    ``portable.npz`` (one bundle must give one model on either backend), as TF does."""
    for name, value in state.items():
        if (value.is_floating_point() or value.is_complex()) and not bool(
            torch.isfinite(value).all()
        ):
            raise BundleError(
                f"{path}: member {NATIVE_MEMBER!r}, tensor {name!r}: expected finite weights, "
                f"found NaN or inf in shape {tuple(value.shape)}"
            )
    if portable is None:
        return
    native = export_weights(net)
    for name, value in load_portable(portable).items():
        if name not in native or not np.array_equal(native[name], value):
            raise BundleError(
                f"{path}: members {NATIVE_MEMBER!r} and {PORTABLE_MEMBER!r} disagree on {name!r}"
            )


def load_bundle(
    path: str | Path, *, expect_N: int | None = None, expect_gridsize: int | None = None
) -> PtychoPINN:
    """Load a bundle written by either backend (TensorFlow ones through ``portable.npz``).

    Strict: every canonical weight must be present with its shape; hashes are
    verified and pickled members refused by ``read_bundle``. ``expect_N`` /
    ``expect_gridsize`` make a mismatch with the data an error at load time.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model bundle not found: {path}")
    bundle = read_bundle(path)
    manifest = bundle.manifest
    backend = manifest.get("backend")
    try:
        config = TrainingConfig.from_dict(manifest["config"])
    except KeyError:
        raise BundleError(f"{path}: manifest has no 'config'") from None
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{path}: manifest 'config' is invalid: {exc}") from None
    mc = config.model
    for key, want in (("N", expect_N), ("gridsize", expect_gridsize)):
        have = getattr(mc, key)
        if manifest.get(key, have) != have:
            raise BundleError(f"{path}: manifest {key}={manifest.get(key)} disagrees with config")
        if want is not None and want != have:
            raise ModelMismatchError(
                f"{path}: the bundle was trained with {key}={have}, but {key}={want} was expected"
            )
    s0 = _manifest_float(manifest, "intensity_scale", path)
    nf = _manifest_float(manifest, "norm_factor", path)
    net = PtychoPINN(
        mc,
        None,
        s0,
        nf,
        probe_trainable=config.probe_trainable,
        intensity_scale_trainable=config.intensity_scale_trainable,
        seed=config.seed,
    )
    net.training_config = config
    if backend == BACKEND_NAME and NATIVE_MEMBER in bundle.members:
        try:
            state = st_load(bundle.members[NATIVE_MEMBER])
        except (SafetensorError, ValueError, RuntimeError) as exc:
            raise BundleError(
                f"{path}: member {NATIVE_MEMBER!r} is not valid safetensors: {exc}"
            ) from None
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelMismatchError(
                f"{path}: member {NATIVE_MEMBER!r} does not fit: {exc}"
            ) from None
        _check_native(net, state, bundle.members.get(PORTABLE_MEMBER), path)
    elif PORTABLE_MEMBER in bundle.members:
        import_weights(net, load_portable(bundle.members[PORTABLE_MEMBER]))
    else:
        raise BundleError(
            f"{path}: a {backend!r} bundle without {PORTABLE_MEMBER!r} cannot be loaded by the "
            f"PyTorch backend; the TensorFlow ('tensorflow') and PyTorch ('pytorch') backends "
            f"exchange weights only through {PORTABLE_MEMBER!r}"
        )
    net.eval()
    return net


#: ``stitch(patches, data, crop)``: the patches at the group centres (``ptychopinn.core``).
stitch = stitch_at_group_centres


def manifest_of(path: str | Path) -> dict[str, Any]:
    """The verified manifest of a bundle (for reports)."""
    return json.loads(json.dumps(read_bundle(path).manifest))
