"""NumPy reference of every physical operator (METHOD.md §3); the oracle for both backends.

Conventions (METHOD.md §2): positions and shifts are ``[x, y]`` in object pixels,
``x`` is the column and ``y`` the row; grouped tensors are channels-last
``(B, N, N, C)``; diffraction is amplitude with zero frequency at index ``N/2``.
Every operator preserves the input precision: float32/complex64 stay single,
float64/complex128 stay double, integers are promoted to float64.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from ptychopinn.config.constants import SUPPORT_THRESHOLD

__all__ = [
    "LAMBDA_FLOOR",
    "SUPPORT_THRESHOLD",
    "centre_crop",
    "diffract",
    "extract",
    "gaussian_kernel",
    "gaussian_smooth",
    "illuminate",
    "intensity_scale_closed_form",
    "intensity_scale_from_data",
    "merge",
    "merge_size",
    "norm_factor",
    "poisson_nll",
    "poisson_observe",
    "probe_mask",
    "reextract",
    "translate",
]


LAMBDA_FLOOR = 1e-12
"""Floor of the predicted intensity λ (and of y inside the log) in the Poisson NLL."""


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """Return the floating/complex dtype an operator computes in for an input dtype."""
    return np.result_type(dtype, np.float32)


def _real_dtype(dtype: np.dtype) -> np.dtype:
    """Return the real dtype matching a float or complex dtype (complex64 -> float32)."""
    return np.empty(0, dtype=dtype).real.dtype


def _shift_axis(img: np.ndarray, shift: np.ndarray, axis: int) -> np.ndarray:
    """Linearly shift ``img`` (K, H, W) along ``axis`` (1 or 2) by ``shift`` (K,) px, zero fill."""
    length = img.shape[axis]
    whole = np.floor(shift)
    frac = (shift - whole).astype(_real_dtype(img.dtype))
    whole = whole.astype(np.int64)
    grid = np.arange(length)
    out = np.zeros_like(img)
    # out[p] = (1 - a) * img[p - f] + a * img[p - f - 1]
    for offset, weight in ((0, 1 - frac), (1, frac)):
        if offset == 1 and not np.any(frac):
            break
        src = grid[None, :] - whole[:, None] - offset  # (K, L)
        valid = (src >= 0) & (src < length)
        src = np.clip(src, 0, length - 1)
        if axis == 2:
            idx = src[:, None, :]
            w = (weight[:, None] * valid)[:, None, :]
        else:
            idx = src[:, :, None]
            w = (weight[:, None] * valid)[:, :, None]
        out += np.take_along_axis(img, idx, axis=axis) * w.astype(_real_dtype(img.dtype))
    return out


def translate(images: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Bilinearly translate images (..., H, W) by shifts (..., 2) ``[dx, dy]`` px, zero outside.

    ``out(y, x) = img(y - dy, x - dx)``: content moves by ``+d``. Leading axes of
    ``images`` and ``shifts`` broadcast. An integer shift is a roll with zero fill.
    """
    images = np.asarray(images)
    images = images.astype(_float_dtype(images.dtype), copy=False)
    shifts = np.asarray(shifts, dtype=np.float64)
    if shifts.shape[-1:] != (2,):
        raise ValueError(
            f"shifts must have a trailing axis of length 2 [dx, dy], got {shifts.shape}"
        )
    if images.ndim < 2:
        raise ValueError(f"images must have at least 2 dimensions (H, W), got {images.shape}")
    lead = np.broadcast_shapes(images.shape[:-2], shifts.shape[:-1])
    h, w = images.shape[-2:]
    flat = np.broadcast_to(images, (*lead, h, w)).reshape(-1, h, w)
    flat_shifts = np.broadcast_to(shifts, (*lead, 2)).reshape(-1, 2)
    out = _shift_axis(flat, flat_shifts[:, 0], axis=2)
    out = _shift_axis(out, flat_shifts[:, 1], axis=1)
    return out.reshape(*lead, h, w)


def extract(canvas: np.ndarray, positions: np.ndarray, N: int) -> np.ndarray:
    """Extract N×N patches (B, N, N) from canvas (H, W) at positions (B, 2) ``[x, y]`` px.

    ``patch[i, j] = canvas(y - N/2 + i, x - N/2 + j)``, bilinear, zero outside, so
    patch pixel (N/2, N/2) sits on canvas pixel (row=y, col=x). Equivalent to
    translating the canvas by (centre - p) and cropping the central N×N.
    """
    canvas = np.asarray(canvas)
    canvas = canvas.astype(_float_dtype(canvas.dtype), copy=False)
    if canvas.ndim != 2:
        raise ValueError(f"canvas must be (H, W), got {canvas.shape}")
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    h, w = canvas.shape
    rdt = _real_dtype(canvas.dtype)
    sx = positions[:, 0] - N / 2
    sy = positions[:, 1] - N / 2
    fx, fy = np.floor(sx), np.floor(sy)
    ax, ay = (sx - fx).astype(rdt), (sy - fy).astype(rdt)
    grid = np.arange(N)
    cols0 = fx.astype(np.int64)[:, None] + grid[None, :]  # (B, N)
    rows0 = fy.astype(np.int64)[:, None] + grid[None, :]
    out = np.zeros((positions.shape[0], N, N), dtype=canvas.dtype)
    for dr, wr in ((0, 1 - ay), (1, ay)):
        if dr == 1 and not np.any(ay):
            break
        rows = rows0 + dr
        rvalid = (rows >= 0) & (rows < h)
        rows_c = np.clip(rows, 0, h - 1)
        for dc, wc in ((0, 1 - ax), (1, ax)):
            if dc == 1 and not np.any(ax):
                break
            cols = cols0 + dc
            cvalid = (cols >= 0) & (cols < w)
            cols_c = np.clip(cols, 0, w - 1)
            weight = (wr[:, None] * rvalid)[:, :, None] * (wc[:, None] * cvalid)[:, None, :]
            out += canvas[rows_c[:, :, None], cols_c[:, None, :]] * weight.astype(rdt)
    return out


def merge_size(relative: np.ndarray, N: int) -> int:
    """Return the merge canvas side P = N + 2·ceil(max|relative|), rounded up to even."""
    relative = np.asarray(relative, dtype=np.float64)
    reach = float(np.max(np.abs(relative))) if relative.size else 0.0
    p = N + 2 * math.ceil(reach - 1e-9)
    return p + (p % 2)


def _pad_centred(images: np.ndarray, P: int) -> np.ndarray:
    """Zero-pad the last two axes of images (..., N, N) centred to (..., P, P)."""
    n = images.shape[-1]
    if P < n:
        raise ValueError(f"merge canvas P={P} is smaller than the patch size N={n}")
    lo = (P - n) // 2
    pad = [(0, 0)] * (images.ndim - 2) + [(lo, P - n - lo), (lo, P - n - lo)]
    return np.pad(images, pad)


def _relative_shifts(relative: np.ndarray, batch: int, channels: int) -> np.ndarray:
    """Validate relative offsets (B, 1, 2, C) and return them as shifts (B, C, 2) [dx, dy]."""
    relative = np.asarray(relative, dtype=np.float64)
    if relative.shape != (batch, 1, 2, channels):
        raise ValueError(
            f"relative offsets must be (B, 1, 2, C) = {(batch, 1, 2, channels)}, got {relative.shape}"
        )
    return np.transpose(relative[:, 0], (0, 2, 1))


def merge(
    patches: np.ndarray, relative: np.ndarray, probe_big: bool = True, P: int | None = None
) -> np.ndarray:
    """Merge each group's patches (B, N, N, C) at offsets (B, 1, 2, C) into canvases (B, P, P, 1).

    Per group (never across the batch): zero-pad each patch to P×P (centred),
    translate channel c by ``-relative_c``, sum, and divide by the sum of the
    identically translated support masks (full N×N when ``probe_big`` else the
    central N/2 window; patches are multiplied by the same support). Pixels with
    support below 1e-6 are 0.
    """
    patches = np.asarray(patches)
    patches = patches.astype(_float_dtype(patches.dtype), copy=False)
    if patches.ndim != 4 or patches.shape[1] != patches.shape[2]:
        raise ValueError(f"patches must be (B, N, N, C), got {patches.shape}")
    b, n, _, c = patches.shape
    shifts = -_relative_shifts(relative, b, c)
    if P is None:
        P = merge_size(relative, n)
    support = np.zeros((n, n), dtype=_real_dtype(patches.dtype))
    if probe_big:
        support[:] = 1
    else:
        support[n // 4 : n // 4 + n // 2, n // 4 : n // 4 + n // 2] = 1
    padded = _pad_centred(np.moveaxis(patches, 3, 1) * support, P)  # (B, C, P, P)
    mask = _pad_centred(support, P)  # (P, P)
    moved = translate(padded, shifts).sum(axis=1)
    weight = translate(np.broadcast_to(mask, (b, c, P, P)), shifts).sum(axis=1)
    covered = weight >= SUPPORT_THRESHOLD
    out = np.where(covered, moved / np.where(covered, weight, 1), 0).astype(patches.dtype)
    return out[..., None]


def reextract(canvas: np.ndarray, relative: np.ndarray, N: int) -> np.ndarray:
    """Re-extract member patches (B, N, N, C) from merged canvases (B, P, P, 1).

    Channel c: translate the canvas by ``+relative_c`` and crop the central N×N.
    """
    canvas = np.asarray(canvas)
    if canvas.ndim != 4 or canvas.shape[-1] != 1:
        raise ValueError(f"canvas must be (B, P, P, 1), got {canvas.shape}")
    relative = np.asarray(relative, dtype=np.float64)
    b = canvas.shape[0]
    c = relative.shape[-1] if relative.ndim == 4 else -1
    shifts = _relative_shifts(relative, b, c)  # (B, C, 2)
    moved = translate(canvas[:, None, :, :, 0], shifts)  # (B, C, P, P)
    return centre_crop(np.moveaxis(moved, 1, 3), N)


def centre_crop(canvas: np.ndarray, N: int) -> np.ndarray:
    """Crop the central N×N of canvases (B, P, P, K) -> (B, N, N, K); start index (P - N) // 2."""
    canvas = np.asarray(canvas)
    p = canvas.shape[1]
    if p < N:
        raise ValueError(f"cannot crop N={N} from a canvas of side {p}")
    lo = (p - N) // 2
    return canvas[:, lo : lo + N, lo : lo + N, ...]


def probe_mask(N: int) -> np.ndarray:
    """Return the (N, N) float64 disk mask of radius N/4 about (N/2 - 0.5, N/2 - 0.5)."""
    centre = N / 2 - 0.5
    yy, xx = np.mgrid[0:N, 0:N]
    return (((xx - centre) ** 2 + (yy - centre) ** 2) < (N / 4) ** 2).astype(np.float64)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """The 1-D Gaussian taps (2r+1,) float64 of ``gaussian_smooth``: r = ceil(4σ), unit sum.

    Raises ValueError for a σ that is not finite and > 0.
    """
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be finite and > 0, got {sigma}")
    radius = math.ceil(4.0 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1, dtype=np.float64) / sigma) ** 2)
    return taps / taps.sum()


def gaussian_smooth(field: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-blur the last two axes of a real or complex (..., H, W) field (METHOD.md §5).

    Separable convolution with :func:`gaussian_kernel` (truncated at ceil(4σ), unit
    sum), zero outside the field: ``out[y, x] = Σ_ij k[i] k[j] f[y + i - r, x + j - r]``.
    Real and imaginary parts are smoothed alike. ``sigma <= 0`` returns the input.
    """
    field = np.asarray(field)
    if sigma <= 0:
        return field
    k = gaussian_kernel(sigma)
    r = (len(k) - 1) // 2
    h, w = field.shape[-2:]
    out = np.zeros(field.shape, dtype=np.result_type(field.dtype, np.float32))
    padded = np.zeros((*field.shape[:-2], h + 2 * r, w + 2 * r), dtype=out.dtype)
    padded[..., r : r + h, r : r + w] = field
    rows = np.zeros((*field.shape[:-2], h, w + 2 * r), dtype=out.dtype)
    for i, tap in enumerate(k):
        rows += tap * padded[..., i : i + h, :]
    for j, tap in enumerate(k):
        out += tap * rows[..., :, j : j + w]
    return out


def illuminate(obj: np.ndarray, probe: np.ndarray, mask: bool = False) -> np.ndarray:
    """Return exit waves ``probe · obj`` (B, N, N, C) for object patches (B, N, N, C), probe (N, N).

    With ``mask`` the probe is first multiplied by :func:`probe_mask`.
    """
    obj = np.asarray(obj)
    probe = np.asarray(probe)
    n = probe.shape[-1]
    if probe.shape != (n, n) or obj.shape[1:3] != (n, n):
        raise ValueError(
            f"probe (N, N) must match patches (B, N, N, C); got {probe.shape}, {obj.shape}"
        )
    if mask:
        probe = probe * probe_mask(n).astype(_real_dtype(_float_dtype(probe.dtype)))
    return obj * probe[:, :, None]


def diffract(psi: np.ndarray, axes: tuple[int, int] = (1, 2)) -> np.ndarray:
    """Return far-field amplitude ``|fftshift(fft2(psi))| / N`` over ``axes`` of psi (B, N, N, C).

    Zero frequency lands at index N/2; Parseval holds: Σ amp² = Σ |psi|².
    Precision follows the input (complex64 -> float32, complex128 -> float64).
    """
    psi = np.asarray(psi)
    psi = psi.astype(np.result_type(psi.dtype, np.complex64), copy=False)
    n = psi.shape[axes[0]]
    if psi.shape[axes[1]] != n:
        raise ValueError(f"diffract needs square fields over axes {axes}, got {psi.shape}")
    spectrum = scipy.fft.fftshift(scipy.fft.fft2(psi, axes=axes, workers=-1), axes=axes)
    return np.abs(spectrum) / np.asarray(n, dtype=_real_dtype(psi.dtype))


def poisson_nll(pred_amp: np.ndarray, target_amp: np.ndarray) -> float:
    """Return the mean saturated Poisson NLL ``λ - y - y·log(λ/y)`` (float64).

    λ = max(pred², 1e-12), y = target²; the ``y·log(λ/y)`` term is 0 where y = 0.
    This is ``λ - y·log λ`` plus the constant ``y·log y - y``: the same gradients,
    but ≥ 0 and 0 at λ = y, so relative-threshold schedulers and early stopping see
    a flat loss as flat (the bare form is ~ -10⁶ per element at 10⁹ photons).
    """
    lam = np.maximum(np.asarray(pred_amp, dtype=np.float64) ** 2, LAMBDA_FLOOR)
    y = np.asarray(target_amp, dtype=np.float64) ** 2
    log_ratio = np.log(lam) - np.log(np.maximum(y, LAMBDA_FLOOR))
    return float(np.mean(lam - y - y * log_ratio))


def poisson_observe(amp: np.ndarray, rng: np.random.Generator | int | None) -> np.ndarray:
    """Return observed amplitude ``sqrt(Poisson(amp²))`` with the same shape and float dtype as amp."""
    amp = np.asarray(amp)
    if np.iscomplexobj(amp):
        raise ValueError("poisson_observe expects a real amplitude, got a complex array")
    rng = np.random.default_rng(rng)
    lam = np.square(amp, dtype=np.float64)
    counts = rng.poisson(lam)
    return np.sqrt(counts).astype(_float_dtype(amp.dtype), copy=False)


def norm_factor(diffraction: np.ndarray, axes: tuple[int, int] = (1, 2)) -> float:
    """Return ``sqrt((N/2)² / mean Σ_HW diffraction²)`` for amplitudes summed over ``axes``.

    ``X = diffraction · norm_factor`` then has mean Σ X² = (N/2)². Float64
    accumulation; integer input is safe. All-zero input is an error.
    """
    d = np.asarray(diffraction)
    n = d.shape[axes[0]]
    energy = np.mean(np.sum(np.square(d, dtype=np.float64), axis=axes))
    if not np.isfinite(energy) or energy <= 0:
        raise ValueError(f"cannot normalise diffraction with mean energy {energy}")
    return float(math.sqrt((n / 2) ** 2 / energy))


def intensity_scale_closed_form(nphotons: float, N: int) -> float:
    """Return the closed-form intensity scale ``sqrt(nphotons) / (N/2)``."""
    if nphotons <= 0:
        raise ValueError(f"nphotons must be > 0, got {nphotons}")
    return float(math.sqrt(nphotons) / (N / 2))


def intensity_scale_from_data(
    nphotons: float, psi: np.ndarray, axes: tuple[int, int] = (1, 2)
) -> float:
    """Return ``sqrt(nphotons / mean Σ|psi|²)`` for exit waves psi = P·O summed over ``axes``."""
    psi = np.asarray(psi)
    energy = np.mean(np.sum(np.abs(psi).astype(np.float64) ** 2, axis=axes))
    if nphotons <= 0 or not np.isfinite(energy) or energy <= 0:
        raise ValueError(f"need nphotons > 0 and a non-zero field, got {nphotons}, {energy}")
    return float(math.sqrt(nphotons / energy))
