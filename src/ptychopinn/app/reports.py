"""Headless figures and the Markdown report of a run.

Every figure is written with matplotlib's Agg canvas (no display needed) and closed
after saving, so long runs do not accumulate open figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ptychopinn.core.history import LR

__all__ = [
    "match_amplitude",
    "save_comparison_figure",
    "save_frc_figure",
    "save_image_figure",
    "save_loss_figure",
    "save_reconstruction_figure",
    "write_report",
]

DPI = 100


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    path = Path(path)
    from ptychopinn.data import atomic_write

    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format=path.suffix.lstrip(".") or "png")
    return path


def _limits(*images: np.ndarray) -> tuple[float, float]:
    """Shared colour limits (1st-99th percentile) so that panels compare directly."""
    values = np.concatenate([np.asarray(im, dtype=np.float64).ravel() for im in images])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, [1.0, 99.0])
    if not high > low:
        high = low + 1e-6
    return float(low), float(high)


def _panel(fig: Figure, ax: Any, image: np.ndarray, title: str, cmap: str, vmin, vmax) -> None:
    shown = ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(shown, ax=ax, shrink=0.8)


def _as_complex(image: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D image, got shape {array.shape}")
    return array.astype(np.complex128)


def save_image_figure(path: Path, image: np.ndarray, title: str = "reconstruction") -> Path:
    """Amplitude and phase of one complex image `(H, W)` side by side."""
    image = _as_complex(image, "image")
    fig = _new_figure(8.0, 3.6)
    axes = fig.subplots(1, 2)
    amp, phase = np.abs(image), np.angle(image)
    _panel(fig, axes[0], amp, f"{title}: amplitude", "gray", *_limits(amp))
    _panel(fig, axes[1], phase, f"{title}: phase", "viridis", *_limits(phase))
    return _save(fig, path)


def match_amplitude(recon: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, float]:
    """`recon` `(H, W)` complex with its amplitude scaled as the metrics scale it, and the factor.

    The factor is mean(|truth|) / mean(|recon|) (``ptychopinn.stitch.scale_amplitude``);
    it is 1 for an image already scaled so (e.g. ``pipeline.align_to_truth``'s), so
    scaling twice changes nothing. An all-zero reconstruction is left as it is (factor 1).
    """
    recon = _as_complex(recon, "recon")
    mean_r = float(np.mean(np.abs(recon)))
    if mean_r == 0.0:
        return recon, 1.0
    scale = float(np.mean(np.abs(_as_complex(truth, "truth")))) / mean_r
    return recon * scale, scale


def _reconstruction_figure(recon: np.ndarray, truth: np.ndarray, title: str) -> Figure:
    recon = _as_complex(recon, "recon")
    truth = _as_complex(truth, "truth")
    if recon.shape != truth.shape:
        raise ValueError(f"recon shape {recon.shape} differs from truth shape {truth.shape}")
    recon, scale = match_amplitude(recon, truth)
    fig = _new_figure(11.0, 6.6)
    axes = fig.subplots(2, 3)
    scaled = "" if math.isclose(scale, 1.0, rel_tol=1e-6) else f" (x{scale:.3g})"
    rows = (
        (
            "amplitude",
            f"{title}: amplitude{scaled}",
            np.abs(recon),
            np.abs(truth),
            np.abs(np.abs(recon) - np.abs(truth)),
            "gray",
        ),
        (
            "phase",
            f"{title}: phase",
            np.angle(recon),
            np.angle(truth),
            np.abs(np.angle(recon * np.conj(truth))),  # wrapped phase difference
            "viridis",
        ),
    )
    for r, (label, heading, rec, tru, error, cmap) in enumerate(rows):
        vmin, vmax = _limits(rec, tru)
        _panel(fig, axes[r, 0], rec, heading, cmap, vmin, vmax)
        _panel(fig, axes[r, 1], tru, f"truth: {label}", cmap, vmin, vmax)
        _panel(fig, axes[r, 2], error, f"|error|: {label}", "magma", *_limits(error))
    return fig


def save_reconstruction_figure(
    path: Path, recon: np.ndarray, truth: np.ndarray | None = None, title: str = "reconstruction"
) -> Path:
    """Amplitude and phase of `recon` `(H, W)` beside the truth and the error maps.

    With a truth (same shape, already registered, e.g. ``pipeline.align_to_truth``'s)
    the grid is 2 x 3: reconstruction, truth and error for amplitude (top) and phase
    (bottom); without one it is amplitude and phase only. The reconstruction's amplitude
    is first scaled as the metrics scale it (:func:`match_amplitude`; a no-op for
    images already scaled), so the amplitude error map is |scaled recon - truth| and the
    reconstruction shares the truth's colour limits (unscaled, an amplitude far from the
    truth's drew a black panel and an error map that was the truth itself). The phase
    error is the wrapped difference |angle(recon * conj(truth))|.
    """
    if truth is None:
        return save_image_figure(path, recon, title)
    return _save(_reconstruction_figure(recon, truth, title), path)


def save_comparison_figure(
    path: Path,
    images: Mapping[str, np.ndarray],
    subtitles: Mapping[str, str] | None = None,
) -> Path:
    """Columns of complex images `(H, W)` (e.g. untrained, trained, truth); amplitude above phase.

    The colour limits of each row are shared, so columns compare directly; every panel
    has its colourbar.
    """
    if not images:
        raise ValueError("save_comparison_figure needs at least one image")
    named = {k: _as_complex(v, k) for k, v in images.items()}
    subtitles = subtitles or {}
    h, w = next(iter(named.values())).shape
    panel = 3.2
    fig = _new_figure(panel * len(named), 2 * panel * min(max(h / w, 0.3), 1.5) + 1.3)
    axes = np.asarray(fig.subplots(2, len(named))).reshape(2, len(named))
    amps = {k: np.abs(v) for k, v in named.items()}
    phases = {k: np.angle(v) for k, v in named.items()}
    amp_lim = _limits(*amps.values())
    phase_lim = _limits(*phases.values())
    for c, key in enumerate(named):
        sub = subtitles.get(key, "")
        title = f"{key}\n{sub}" if sub else key
        for r, (values, cmap, lim, label) in enumerate(
            ((amps, "gray", amp_lim, "amplitude"), (phases, "viridis", phase_lim, "phase"))
        ):
            ax = axes[r, c]
            _panel(fig, ax, values[key], title if r == 0 else label, cmap, *lim)
            if c == 0:
                ax.set_ylabel(label)
    return _save(fig, path)


def save_frc_figure(
    path: Path,
    curves: Mapping[str, Sequence[float]],
    frequencies: Sequence[float] | None = None,
) -> Path:
    """Fourier ring correlation curves with the 0.5 and 1/7 thresholds.

    `curves` maps a label (e.g. "amplitude", "phase") to FRC values per ring; the x
    axis is the fraction of Nyquist (ring index / number of rings unless `frequencies`
    is given).
    """
    if not curves:
        raise ValueError("save_frc_figure needs at least one curve")
    fig = _new_figure(6.0, 4.0)
    ax = fig.subplots()
    for label, raw in curves.items():
        values = np.asarray(raw, dtype=np.float64).ravel()
        if frequencies is not None and len(frequencies) == len(values):
            x = np.asarray(frequencies, dtype=np.float64)
        else:
            x = np.arange(len(values)) / max(len(values) - 1, 1)
        ax.plot(x, values, label=label)
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=0.8, label="0.5")
    ax.axhline(1 / 7, color="gray", linestyle=":", linewidth=0.8, label="1/7")
    ax.set_xlabel("spatial frequency (fraction of Nyquist)")
    ax.set_ylabel("FRC")
    ax.set_ylim(-0.1, 1.05)
    ax.set_title("Fourier ring correlation")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def save_loss_figure(path: Path, history: Mapping[str, Sequence[float]]) -> Path:
    """Loss curves per epoch: the ``*loss``/``*nll`` series on the left, other metrics (MAE, ...) right.

    Learning-rate series are left out; a series shorter than the others (e.g. a test
    loss measured once after training) is marked at the last epoch.
    """
    series = {
        k: np.asarray(v, dtype=np.float64).ravel()
        for k, v in history.items()
        if isinstance(v, Sequence | np.ndarray) and len(v) > 0 and k != LR
    }
    if not series:
        raise ValueError("the training history holds no loss values to plot")
    losses = {k: v for k, v in series.items() if "loss" in k.lower() or "nll" in k.lower()}
    others = {k: v for k, v in series.items() if k not in losses}
    groups = [g for g in (losses or others, others if losses else {}) if g]
    epochs_run = max(len(v) for v in series.values())
    fig = _new_figure(6.0 * len(groups), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(groups)))
    for ax, group, ylabel in zip(axes, groups, ("loss", "metric")):
        for label, values in sorted(group.items()):
            if len(values) == epochs_run:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, marker="o" if len(values) < 30 else None, label=label)
            else:
                ax.plot([epochs_run], values[-1:], marker="*", markersize=10, ls="", label=label)
        finite = np.concatenate([v[np.isfinite(v)] for v in group.values()])
        if finite.size and np.all(finite > 0) and finite.max() / finite.min() > 20:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_title("training history")
    return _save(fig, path)


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _flat_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flat_metrics(value, f"{name}."))
        elif isinstance(value, int | float | str | bool | np.number) or value is None:
            flat[name] = value.item() if isinstance(value, np.number) else value
    return flat


def write_report(
    path: Path,
    title: str,
    *,
    summary: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Mapping[str, Any]] | None = None,
    figures: Mapping[str, Path] | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write a Markdown report: summary, metrics tables, linked pictures, configuration.

    `metrics` maps a column label (e.g. "untrained", "trained") to a (possibly nested)
    dict of scalar metrics; nested keys are joined with dots. Figure links are relative
    to the report's directory.
    """
    path = Path(path)
    lines = [f"# {title}", ""]
    if summary:
        for key, value in summary.items():
            lines.append(f"- **{key}**: {_format_value(value)}")
        lines.append("")
    if metrics:
        columns = list(metrics)
        flat = {c: _flat_metrics(metrics[c]) for c in columns}
        names = sorted({n for f in flat.values() for n in f})
        lines += ["## Metrics", "", "| metric | " + " | ".join(columns) + " |"]
        lines.append("|---" * (len(columns) + 1) + "|")
        for name in names:
            cells = [_format_value(flat[c].get(name, "")) for c in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if figures:
        lines += ["## Pictures", ""]
        for label, figure in figures.items():
            figure = Path(figure)
            try:
                link = figure.resolve().relative_to(path.parent.resolve())
            except ValueError:
                link = figure
            lines += [f"### {label}", "", f"![{label}]({link.as_posix()})", ""]
    if config:
        lines += ["## Configuration", "", "```json", json.dumps(config, indent=2, default=str)]
        lines += ["```", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    from ptychopinn.data import write_text_atomic

    write_text_atomic(path, "\n".join(lines))
    return path
