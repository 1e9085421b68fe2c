"""``evaluate``: align a reconstruction with the truth and measure amplitude and phase (METHOD §8)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ptychopinn.stitch.alignment import PHASE_ALIGN, Alignment, align, remove_phase_plane
from ptychopinn.stitch.canvas import Stitched
from ptychopinn.stitch.errors import StitchError
from ptychopinn.stitch.metrics import data_range, frc, mae, ms_ssim, mse, psnr, psnr_legacy, ssim

__all__ = [
    "PHASE_ALIGN",
    "PHASE_THRESHOLD",
    "evaluate",
    "evaluate_aligned",
    "evaluate_if_possible",
    "measure",
]

PHASE_THRESHOLD = 1e-3
"""rad: a truth phase whose std (after plane removal, in the region) is below this has no
phase structure to measure a reconstruction against."""

STRUCTURE_METRICS = (
    "psnr",
    "psnr_legacy",
    "ssim",
    "ms_ssim",
    "frc50",
    "frc50_nyquist",
    "frc17",
    "frc17_nyquist",
    "frc_curve",
)
"""Metrics that compare structure; None for a phase without structure (MAE and MSE stay)."""


def measure(
    target: np.ndarray,
    pred: np.ndarray,
    *,
    peak: float | None = None,
    ms_ssim_sigma: float = 0.0,
    frc_sigma: float = 0.0,
    frc_window: str | None = "hann",
) -> dict[str, Any]:
    """Every metric of two aligned (H, W) real images (target first).

    ``peak`` is the data range of PSNR, SSIM and MS-SSIM, in the images' unit (default:
    the target's max - min). It is reported as ``data_range``. A constant target without
    ``peak`` has no data range: PSNR is then NaN and SSIM falls back to its own default.
    ``frc_window``: the apodisation window of :func:`~ptychopinn.stitch.frc`.
    """
    curve = frc(target, pred, smooth_sigma=frc_sigma, window=frc_window)
    rng = data_range(target) if peak is None else float(peak)
    s_range = rng if rng > 0 else None
    return {
        "mae": mae(target, pred),
        "mse": mse(target, pred),
        "psnr": psnr(target, pred, peak=rng) if rng > 0 else float("nan"),
        "psnr_legacy": psnr_legacy(target, pred),
        "ssim": ssim(target, pred, s_range),
        "ms_ssim": ms_ssim(target, pred, s_range, sigma=ms_ssim_sigma),
        "data_range": rng,
        "frc50": curve.frc50,
        "frc50_nyquist": curve.frc50_nyquist,
        "frc17": curve.frc17,
        "frc17_nyquist": curve.frc17_nyquist,
        "frc_curve": curve.curve,
    }


def evaluate_aligned(
    alignment: Alignment,
    *,
    phase_threshold: float = PHASE_THRESHOLD,
    ms_ssim_sigma: float = 0.0,
    frc_sigma: float = 0.0,
    frc_window: str | None = "hann",
) -> dict[str, Any]:
    """The metrics dict of :func:`evaluate` for an :class:`Alignment` (from :func:`align`).

    Amplitude metrics compare ``recon_amplitude`` (scaled) with ``truth_amplitude``, data
    range = the truth's amplitude range. Phase metrics compare the aligned phases in
    radians with data range = the truth phase's range in the region (after
    ``phase_align``); the phase is never mapped to [0, 1] (that inflated the scores of
    structureless images: a flat phase against a structured truth scored SSIM 0.91).
    When the truth's phase, after removing its least-squares plane, has a standard
    deviation below ``phase_threshold`` rad, it holds no structure to measure against:
    the phase PSNR, SSIM, MS-SSIM and FRC entries are None (MAE and MSE stay, they show
    how much phase the reconstruction invented) and ``phase_note`` says why.
    """
    amplitude = measure(
        alignment.truth_amplitude,
        alignment.recon_amplitude,
        ms_ssim_sigma=ms_ssim_sigma,
        frc_sigma=frc_sigma,
        frc_window=frc_window,
    )
    phi_t, phi_r = alignment.truth_phase, alignment.recon_phase
    structure = float(np.std(remove_phase_plane(phi_t)))
    phase_note = None
    if structure < phase_threshold:
        phase_note = (
            f"truth has no phase structure (std {structure:.2g} rad after plane removal, "
            f"below {phase_threshold:g} rad): phase PSNR/SSIM/MS-SSIM/FRC not reported"
        )
        phase: dict[str, Any] = {"mae": mae(phi_t, phi_r), "mse": mse(phi_t, phi_r)}
        phase.update(dict.fromkeys(STRUCTURE_METRICS))
        phase["data_range"] = data_range(phi_t)
    else:
        phase = measure(phi_t, phi_r, frc_sigma=frc_sigma, frc_window=frc_window)
    return {
        "amplitude": amplitude,
        "phase": phase,
        "phase_note": phase_note,
        "amplitude_scale": alignment.amplitude_scale,
        "shift": alignment.shift,
        "registration_note": alignment.registration_note,
        "shape": alignment.shape,
        "origin": alignment.origin,
    }


def evaluate(
    recon: Stitched | np.ndarray,
    truth: np.ndarray,
    *,
    register: bool = True,
    upsample_factor: int = 20,
    max_shift: float | None = None,
    phase_align: str = "plane",
    phase_threshold: float = PHASE_THRESHOLD,
    ms_ssim_sigma: float = 0.0,
    frc_sigma: float = 0.0,
    frc_window: str | None = "hann",
) -> dict[str, Any]:
    """Metrics of a complex reconstruction against the complex truth, amplitude and phase.

    ``recon`` is a :class:`Stitched` (cropped with the truth to the scanned region via its
    origin, which may be fractional) or an (H, W) array already on the truth's grid.
    :func:`~ptychopinn.stitch.align` registers it to the truth (sub-pixel, on by default;
    ``register=False`` opts out), scales the amplitude and aligns the phases;
    :func:`evaluate_aligned` measures (phase metrics only where the truth has phase
    structure). Returns ``{"amplitude": {...}, "phase": {...}, "phase_note",
    "amplitude_scale", "shift" (dy, dx) applied or None, "registration_note", "shape"
    (h, w), "origin" (col, row) in truth}``; each part holds ``mae``, ``mse``, ``psnr``,
    ``psnr_legacy``, ``ssim``, ``ms_ssim``, ``data_range``, ``frc50``,
    ``frc50_nyquist``, ``frc17``, ``frc17_nyquist`` and ``frc_curve`` (n//2 + 1,).
    """
    alignment = align(
        recon,
        truth,
        register=register,
        upsample_factor=upsample_factor,
        max_shift=max_shift,
        phase_align=phase_align,
    )
    return evaluate_aligned(
        alignment,
        phase_threshold=phase_threshold,
        ms_ssim_sigma=ms_ssim_sigma,
        frc_sigma=frc_sigma,
        frc_window=frc_window,
    )


def evaluate_if_possible(
    recon: Stitched, truth: np.ndarray | None, **options: Any
) -> dict[str, Any]:
    """What a workflow reports about a reconstruction: ``{"metrics": evaluate(...)}``, or
    ``{"metrics_error": reason}`` when the scanned region cannot be evaluated (e.g. too
    sparse a scan to hold a covered rectangle), or ``{}`` without a truth. ``options``
    go to :func:`evaluate`."""
    if truth is None:
        return {}
    try:
        return {"metrics": evaluate(recon, truth, **options)}
    except StitchError as exc:
        return {"metrics_error": str(exc)}
