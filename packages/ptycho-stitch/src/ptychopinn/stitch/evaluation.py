"""``evaluate``: align a reconstruction with the truth and measure amplitude and phase (METHOD §8)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ptychopinn.stitch.alignment import (
    apply_shift,
    as_image,
    overlay,
    register,
    remove_phase_plane,
    scale_amplitude,
    shift_margin,
    trim,
)
from ptychopinn.stitch.canvas import Stitched
from ptychopinn.stitch.errors import StitchError
from ptychopinn.stitch.metrics import data_range, frc, mae, ms_ssim, mse, psnr, psnr_legacy, ssim

PHASE_ALIGN = ("plane", "mean", "none")


def measure(
    target: np.ndarray,
    pred: np.ndarray,
    *,
    unit_range: bool = False,
    ms_ssim_sigma: float = 0.0,
    frc_sigma: float = 0.0,
) -> dict[str, Any]:
    """Every metric of two aligned (H, W) real images.

    ``unit_range``: the images are phases; SSIM and MS-SSIM then compare
    (phi + pi) / 2pi with data range 1 (METHOD §8); otherwise the target's range.
    """
    curve = frc(target, pred, smooth_sigma=frc_sigma)
    peak = data_range(target)
    if peak <= 0:
        # A constant target (e.g. the zero phase of an amplitude-only object) has no data
        # range: phases fall back to their full range 2*pi; amplitudes have no PSNR.
        peak = 2 * np.pi if unit_range else 0.0
    if unit_range:
        s_t, s_p, s_range = (target + np.pi) / (2 * np.pi), (pred + np.pi) / (2 * np.pi), 1.0
    else:
        s_t, s_p, s_range = target, pred, None
    return {
        "mae": mae(target, pred),
        "mse": mse(target, pred),
        "psnr": psnr(target, pred, peak=peak) if peak > 0 else float("nan"),
        "psnr_legacy": psnr_legacy(target, pred),
        "ssim": ssim(s_t, s_p, s_range),
        "ms_ssim": ms_ssim(s_t, s_p, s_range, sigma=ms_ssim_sigma),
        "frc50": curve.frc50,
        "frc50_nyquist": curve.frc50_nyquist,
        "frc17": curve.frc17,
        "frc17_nyquist": curve.frc17_nyquist,
        "frc_curve": curve.curve,
    }


def evaluate(
    recon: Stitched | np.ndarray,
    truth: np.ndarray,
    *,
    register_shift: bool = False,
    upsample_factor: int = 20,
    phase_align: str = "plane",
    ms_ssim_sigma: float = 0.0,
    frc_sigma: float = 0.0,
) -> dict[str, Any]:
    """Metrics of a complex reconstruction against the complex truth, amplitude and phase.

    ``recon`` is a :class:`Stitched` (cropped with the truth to the scanned region via its
    origin) or an (H, W) array already on the truth's grid. Steps: optional sub-pixel
    registration (phase cross-correlation of amplitudes, then trimming the wrapped
    border), phase-plane removal from each image ("plane"; "mean" subtracts the mean;
    "none"), amplitude scaled by mean(truth)/mean(recon). Phase SSIM/MS-SSIM use
    (phi + pi) / 2pi with data range 1. Returns ``{"amplitude": {...}, "phase": {...},
    "amplitude_scale", "shift" (dy, dx) or None, "shape", "origin" (col, row) in truth}``.
    """
    if phase_align not in PHASE_ALIGN:
        raise StitchError(f"phase_align must be one of {PHASE_ALIGN}, found {phase_align!r}")
    if isinstance(recon, Stitched):
        rec, gt, origin = overlay(recon, truth)
    else:
        rec = as_image(recon, "recon")
        gt = as_image(truth, "truth")
        if rec.shape != gt.shape:
            raise StitchError(
                f"recon and truth must have one shape (or pass the Stitched result), "
                f"found {rec.shape} and {gt.shape}"
            )
        origin = (0, 0)
    rec = rec.astype(np.complex128)
    gt = gt.astype(np.complex128)
    shift = None
    if register_shift:
        shift = register(np.abs(gt), np.abs(rec), upsample_factor=upsample_factor)
        rec = apply_shift(rec, shift)
        m = shift_margin(shift)
        rec, gt = trim(rec, m), trim(gt, m)
        origin = (origin[0] + m, origin[1] + m)
        if min(rec.shape) < 7:
            raise StitchError(f"after registration only {rec.shape} pixels remain to evaluate")
    amp_t = np.abs(gt)
    amp_r, scale = scale_amplitude(np.abs(rec), amp_t)
    phi_t = np.angle(gt)
    phi_r = np.angle(rec)
    if phase_align == "plane":
        phi_t, phi_r = remove_phase_plane(phi_t), remove_phase_plane(phi_r)
    elif phase_align == "mean":
        phi_t, phi_r = phi_t - phi_t.mean(), phi_r - phi_r.mean()
    amplitude = measure(amp_t, amp_r, ms_ssim_sigma=ms_ssim_sigma, frc_sigma=frc_sigma)
    phase = measure(phi_t, phi_r, unit_range=True, frc_sigma=frc_sigma)
    return {
        "amplitude": amplitude,
        "phase": phase,
        "amplitude_scale": scale,
        "shift": shift,
        "shape": rec.shape,
        "origin": origin,
    }


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
