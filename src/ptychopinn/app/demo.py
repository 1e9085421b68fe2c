"""``ptychopinn demo``: simulate a small ``lines`` dataset, train briefly, reconstruct, compare.

The defaults are sized to finish within a few minutes on a 2-core CPU with either
backend while showing a clearly better reconstruction than the untrained network.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import pipeline, reports

logger = logging.getLogger(__name__)

__all__ = [
    "DEMO_DEFAULTS",
    "DemoSummary",
    "demo_overrides",
    "format_summary",
    "initial_weights",
    "run_demo",
]

# Sized by measurement on a 2-core CPU (numbers in CHANGELOG.md and
# benchmarks/results/quality/README.md). What makes a short run learn: a structured probe
# (the built-in disk with a curved wavefront, defocus 8; a stronger curvature than 4
# learns faster) -- with the flat disk a pattern cannot tell a patch from its inverted
# twin (docs/METHOD.md section 4); gridsize 1 on a
# dense grid scan (step N/16, 33 x 33 patterns); the diffraction-amplitude MAE objective
# (NLL weight 0), learning rate 1e-3; an amplitude-only object (the upstream default for
# simulated 'lines'); probe_big off.
DEMO_DEFAULTS: dict[str, Any] = {
    "n_images": 1089,  # a 33 x 33 grid
    "N": 64,
    "scan": "grid",
    "step": 4.0,
    "phase": False,
    "probe_defocus": 8.0,
    "nphotons": 1e9,
    "nepochs": 20,
    "batch_size": 16,
    "n_filters_scale": 1,
    "gridsize": 1,
    "probe_big": False,
    "learning_rate": 1e-3,
    "nll_weight": 0.0,
    "mae_weight": 1.0,
}


@dataclass
class DemoSummary:
    """What the demo measured and where it wrote it."""

    backend: str
    nepochs: int
    epochs_run: int
    train_seconds: float
    total_seconds: float
    before: dict[str, Any]
    after: dict[str, Any]
    output_dir: Path
    figures: dict[str, Path] = field(default_factory=dict)
    report_path: Path | None = None


def initial_weights(
    shapes: Mapping[str, tuple[int, ...]], reference: Mapping[str, np.ndarray], seed: int = 0
) -> dict[str, np.ndarray]:
    """Fresh network parameters in canonical layout: Glorot-uniform kernels, zero biases.

    `shapes` is ``LayerPlan.parameter_shapes()``; entries that are not conv weights or
    biases (the probe, the log intensity scale) keep their `reference` values, so the
    result is the network as it was before training.
    """
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        ref = np.asarray(reference[name])
        if name.endswith(".weight") and len(shape) == 4:
            out_ch, in_ch, kh, kw = shape
            limit = math.sqrt(6.0 / ((in_ch + out_ch) * kh * kw))
            weights[name] = rng.uniform(-limit, limit, size=shape).astype(ref.dtype)
        elif name.endswith(".bias"):
            weights[name] = np.zeros(shape, dtype=ref.dtype)
        else:
            weights[name] = ref.copy()
    return weights


def demo_overrides(backend: str, nepochs: int, seed: int, output_dir: Path) -> dict[str, Any]:
    """The demo's recipe as ``load_config`` overrides (CSV log, no early stopping)."""
    d = DEMO_DEFAULTS
    return {
        "model.N": d["N"],
        "model.n_filters_scale": d["n_filters_scale"],
        "model.gridsize": d["gridsize"],
        "model.probe_big": d["probe_big"],
        "training.backend": backend,
        "training.nepochs": nepochs,
        "training.batch_size": d["batch_size"],
        "training.learning_rate": d["learning_rate"],
        "training.nll_weight": d["nll_weight"],
        "training.mae_weight": d["mae_weight"],
        "training.seed": seed,
        "training.output_dir": str(output_dir),
        "inference.backend": backend,
        "execution.logger": "csv",
        "execution.early_stop_patience": None,
    }


def run_demo(
    backend: str | None = None,
    output_dir: Path = Path("ptychopinn-demo"),
    nepochs: int | None = None,
    n_images: int | None = None,
    seed: int = 0,
    quiet: bool = False,
    log: Callable[[str], None] | None = None,
    on_backend: Callable[[Any], None] | None = None,
) -> DemoSummary:
    """Run the demo end to end and write data, model, pictures and report.md under `output_dir`.

    `backend` None: the only installed backend, else the default (``choose_backend``).
    Progress messages go to `log` (default: this module's logger at INFO); `quiet` turns
    the training and inference progress bars off; `on_backend(backend)` is called once the
    backend is loaded.
    """
    log = log or logger.info
    from ptychopinn.config import layer_plan, load_config, save_config
    from ptychopinn.core import get_backend
    from ptychopinn.data import default_probe, save_npz, simulate, write_text_atomic

    started = time.perf_counter()
    d = dict(DEMO_DEFAULTS)
    nepochs = nepochs or d["nepochs"]
    n_images = n_images or d["n_images"]
    output_dir = Path(output_dir)
    if backend is None:
        from .environment import choose_backend

        choice = choose_backend()
        backend = choice.name
        log(f"backend: {backend} ({choice.reason})")
    chosen = get_backend(backend)  # fails fast, before any work, when it is not installed
    if on_backend is not None:
        on_backend(chosen)
    overrides = demo_overrides(backend, nepochs, seed, output_dir / "model")
    overrides["execution.enable_progress_bar"] = not quiet
    progress = not quiet and sys.stderr.isatty()
    configs = load_config(None, overrides)
    model_config, training = configs["model"], configs["training"]

    log(
        f"[1/5] simulating a {d['scan']} scan of {n_images} diffraction patterns of a 'lines' "
        f"object (N={d['N']}, step {d['step']:g} px, {d['nphotons']:.0e} photons per pattern, "
        f"probe defocus {d['probe_defocus']:g})"
    )
    scan = simulate(
        object="lines",
        n_images=n_images,
        N=d["N"],
        nphotons=d["nphotons"],
        seed=seed,
        scan=d["scan"],
        step=d["step"],
        phase=d["phase"],
        probe=default_probe(d["N"], d["probe_defocus"]),
    )
    data_dir = output_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    save_npz(scan, data_dir / "scan.npz")
    # The network is trained on the measured patterns alone (no ground truth) and then
    # reconstructs that same scan: the self-supervised use of PtychoPINN at a beamline.
    # training.nphotons is unset: the count comes from the simulated scan's metadata.
    train_data = pipeline.group_for_model(scan, model_config, training, training.nphotons)
    test_data = train_data

    log(f"[2/5] training the {backend} model for {nepochs} epochs on {len(train_data)} patterns")
    t0 = time.perf_counter()
    result = chosen.train(train_data, None, training, configs["execution"])
    train_seconds = time.perf_counter() - t0
    model, history = result.model, result.history
    model_dir = Path(training.output_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    bundle = model_dir / pipeline.BUNDLE_NAME
    chosen.save_bundle(model, bundle)
    save_config(configs, model_dir / "config.yaml")
    write_text_atomic(model_dir / "history.json", json.dumps(history, indent=2))

    log(f"[3/5] reconstructing the scanned object from its {len(test_data)} groups")
    crop = configs["inference"].stitch_crop
    weight = configs["inference"].stitch_weight
    trained = pipeline.stitch_patches(
        pipeline.predict_patches(chosen, model, test_data, progress=progress),
        test_data,
        crop,
        weight,
    )
    # The same network before training: the bundle reloaded with fresh initial weights.
    untrained_model = chosen.load_bundle(bundle)
    trained_weights = chosen.export_weights(model)
    fresh = initial_weights(layer_plan(model_config).parameter_shapes(), trained_weights, seed)
    fresh["log_scale"] = np.asarray(math.log(test_data.intensity_scale), dtype=np.float32)
    chosen.import_weights(untrained_model, fresh)
    untrained = pipeline.stitch_patches(
        pipeline.predict_patches(chosen, untrained_model, test_data, progress=progress),
        test_data,
        crop,
        weight,
    )

    log("[4/5] evaluating against the ground truth")
    assert scan.object is not None  # simulate() always returns its object
    after_aligned = pipeline.align_to_truth(trained, scan.object)
    before_aligned = pipeline.align_to_truth(untrained, scan.object)
    after = pipeline.evaluate_aligned(after_aligned)
    before = pipeline.evaluate_aligned(before_aligned)
    pipeline.save_reconstruction(output_dir / "recon.npz", trained)
    write_text_atomic(
        output_dir / "metrics.json", json.dumps({"untrained": before, "trained": after}, indent=2)
    )

    log("[5/5] drawing pictures")
    pictures = output_dir / "pictures"
    figures: dict[str, Path] = {}
    figures["untrained vs trained vs truth"] = reports.save_comparison_figure(
        pictures / "comparison.png",
        {
            "untrained": before_aligned.recon,
            f"trained ({nepochs} epochs)": after_aligned.recon,
            "truth": after_aligned.truth,
        },
        {
            "untrained": _short(before),
            f"trained ({nepochs} epochs)": _short(after),
        },
    )
    figures["trained reconstruction, truth and error maps"] = reports.save_reconstruction_figure(
        pictures / "reconstruction.png", after_aligned.recon, after_aligned.truth, "trained"
    )
    frc = pipeline.frc_curves(after)
    if frc:
        figures["Fourier ring correlation (trained)"] = reports.save_frc_figure(
            pictures / "frc.png", frc
        )
    if history and any(history.values()):
        figures["loss per epoch"] = reports.save_loss_figure(pictures / "loss.png", history)
    total = time.perf_counter() - started
    epochs_run = max((len(v) for v in history.values()), default=nepochs)
    summary = DemoSummary(
        backend=backend,
        nepochs=nepochs,
        epochs_run=epochs_run,
        train_seconds=train_seconds,
        total_seconds=total,
        before=before,
        after=after,
        output_dir=output_dir,
        figures=figures,
    )
    summary.report_path = reports.write_report(
        output_dir / "report.md",
        "ptychopinn demo",
        summary={
            "backend": backend,
            "epochs": epochs_run,
            "scan positions": scan.n_positions,
            f"groups (gridsize {d['gridsize']})": len(train_data),
            "training seconds": round(train_seconds, 1),
            "total seconds": round(total, 1),
        },
        metrics={
            "untrained": pipeline.scalar_metrics(before),
            "trained": pipeline.scalar_metrics(after),
        },
        figures=figures,
        config=pipeline._config_dicts(configs),
    )
    return summary


def _metric(metrics: Mapping[str, Any], part: str, name: str) -> float:
    value = metrics.get(part, {})
    value = value.get(name) if isinstance(value, Mapping) else None
    return float(value) if isinstance(value, int | float) else float("nan")


def _short(metrics: Mapping[str, Any]) -> str:
    return (
        f"amp SSIM {_metric(metrics, 'amplitude', 'ssim'):.2f}, "
        f"PSNR {_metric(metrics, 'amplitude', 'psnr'):.1f} dB"
    )


def format_summary(s: DemoSummary) -> str:
    """The few lines the demo prints at the end."""
    lines = [
        f"ptychopinn demo — backend {s.backend}, {s.epochs_run} epochs, "
        f"training {s.train_seconds:.0f} s, total {s.total_seconds:.0f} s",
        f"{'':12s}{'SSIM amp':>10s}{'SSIM phase':>12s}{'PSNR amp':>10s}{'PSNR phase':>12s}",
    ]
    for label, m in (("untrained", s.before), ("trained", s.after)):
        lines.append(
            f"{label:12s}{_metric(m, 'amplitude', 'ssim'):10.3f}{_metric(m, 'phase', 'ssim'):12.3f}"
            f"{_metric(m, 'amplitude', 'psnr'):10.2f}{_metric(m, 'phase', 'psnr'):12.2f}"
        )
    lines.append(f"pictures: {s.output_dir / 'pictures'}   report: {s.report_path}")
    return "\n".join(lines)
