"""Differentiable torch versions of the forward-model operators (METHOD.md §3).

Every operator here matches the NumPy reference in :mod:`ptychopinn.data.physics`
but works **channels-first**: grouped tensors are ``(B, C, N, N)`` and
positions ``(B, 2, C)`` (axis 1 = [x, y]).  Callers at the package boundary
convert from the channels-last ``(B, N, N, C)`` / ``(B, 1, 2, C)`` layout.

Translation is implemented as two banded interpolation matrices applied to
the image (``T_y @ img @ T_x^T``).  Because a shift is uniform over an image,
2-D bilinear interpolation with zero outside is exactly separable, so this is
the same arithmetic as a bilinear gather, but it is a pair of batched matmuls:
deterministic on every device (no scatter-add in the backward pass), it fuses
zero-padding and cropping into the same product, and it works for complex
fields by stacking the real and imaginary parts.
"""

from __future__ import annotations

import math

import torch
from ptychopinn.core.constants import LAMBDA_FLOOR, SUPPORT_THRESHOLD

__all__ = [
    "centre_crop",
    "diffract",
    "extract",
    "gaussian_smooth",
    "illuminate",
    "merge",
    "merge_size",
    "poisson_nll",
    "probe_mask",
    "reextract",
    "shift_matrices",
    "translate",
]


def _hat_matrix(
    out_size: int, in_size: int, start: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """Bilinear interpolation matrix ``W[..., i, j] = max(0, 1 - |start + i - j|)``.

    ``start`` (...,) is the source coordinate of output index 0; the weights are
    computed in float64 so that large coordinates do not lose precision, then
    cast to ``dtype``.
    """
    start64 = start.detach().to(torch.float64)
    i = torch.arange(out_size, dtype=torch.float64, device=start.device)
    j = torch.arange(in_size, dtype=torch.float64, device=start.device)
    src = start64[..., None] + i  # (..., out)
    w = (1.0 - (src[..., :, None] - j).abs()).clamp_min(0.0)  # (..., out, in)
    return w.to(dtype)


def shift_matrices(
    shifts: torch.Tensor,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    origin: tuple[float, float] = (0.0, 0.0),
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column interpolation matrices for ``out(y, x) = img(y0 + y - dy, x0 + x - dx)``.

    Args:
        shifts: (..., 2) [dx, dy] in pixels.
        in_hw: (H, W) of the source image.
        out_hw: (h, w) of the output.
        origin: (y0, x0), the source coordinate of output pixel (0, 0) before shifting.

    Returns:
        ``(T_y (..., h, H), T_x (..., w, W))`` with ``out = T_y @ img @ T_x^T``.
    """
    dx, dy = shifts[..., 0], shifts[..., 1]
    t_y = _hat_matrix(out_hw[0], in_hw[0], origin[0] - dy, dtype)
    t_x = _hat_matrix(out_hw[1], in_hw[1], origin[1] - dx, dtype)
    return t_y, t_x


def _apply(img: torch.Tensor, t_y: torch.Tensor, t_x: torch.Tensor) -> torch.Tensor:
    """``t_y @ img @ t_x^T`` for real or complex ``img`` (..., H, W)."""
    if img.is_complex():
        parts = torch.stack((img.real, img.imag), dim=-3)  # (..., 2, H, W)
        t_y = t_y.to(parts.dtype).unsqueeze(-3)
        t_x = t_x.to(parts.dtype).unsqueeze(-3)
        out = t_y @ parts @ t_x.transpose(-1, -2)
        return torch.complex(out[..., 0, :, :], out[..., 1, :, :])
    t_y = t_y.to(img.dtype)
    t_x = t_x.to(img.dtype)
    return t_y @ img @ t_x.transpose(-1, -2)


def _real_dtype(t: torch.Tensor) -> torch.dtype:
    return t.real.dtype if t.is_complex() else t.dtype


def translate(images: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Bilinear translation with zero outside: ``out(y, x) = img(y - dy, x - dx)``.

    Args:
        images: (..., H, W) real or complex.
        shifts: (..., 2) [dx, dy] pixels, broadcastable to the leading dims of ``images``.

    Returns:
        (..., H, W), content moved by +d.
    """
    h, w = images.shape[-2:]
    shifts = shifts.expand(*images.shape[:-2], 2)
    t_y, t_x = shift_matrices(shifts, (h, w), (h, w), dtype=_real_dtype(images))
    return _apply(images, t_y, t_x)


def extract(canvas: torch.Tensor, positions: torch.Tensor, N: int) -> torch.Tensor:
    """Patches of ``canvas`` centred on ``positions``.

    ``patch[b, i, j] = canvas(y_b - N/2 + i, x_b - N/2 + j)``, bilinear, zero outside.

    Args:
        canvas: (H, W) real or complex.
        positions: (B, 2) [x, y] object pixels.
        N: patch side.

    Returns:
        (B, N, N).
    """
    h, w = canvas.shape[-2:]
    half = N // 2
    t_y = _hat_matrix(N, h, positions[..., 1] - half, _real_dtype(canvas))
    t_x = _hat_matrix(N, w, positions[..., 0] - half, _real_dtype(canvas))
    return _apply(canvas, t_y, t_x)


def merge_size(relative: torch.Tensor, N: int) -> int:
    """Canvas side P = N + 2·ceil(max |relative|), rounded up to even.

    Args:
        relative: (B, 2, C) offsets of each member from its group centre.
    """
    reach = float(relative.detach().abs().max()) if relative.numel() else 0.0
    # The tolerance keeps offsets that are integers up to rounding from growing P.
    p = N + 2 * math.ceil(reach - 1e-9)
    return p + (p % 2)


def _support(N: int, probe_big: bool, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if probe_big:
        return torch.ones((N, N), dtype=dtype, device=device)
    mask = torch.zeros((N, N), dtype=dtype, device=device)
    q = N // 4
    mask[q : N - q, q : N - q] = 1.0
    return mask


def merge(
    patches: torch.Tensor,
    relative: torch.Tensor,
    probe_big: bool = True,
    P: int | None = None,
) -> torch.Tensor:
    """Overlap-average the C patches of each group onto its own P×P canvas.

    Each patch is zero-padded (centred) to P×P, translated by ``-relative_c``,
    summed within its group (never across the batch) and divided by the summed
    translated support masks; pixels whose support is below 1e-6 are 0.

    Args:
        patches: (B, C, N, N) real or complex.
        relative: (B, 2, C) [x, y], ``-(coords_nn - coords_offsets)``.
        probe_big: support is the full N×N if True, else the central N/2 window.
        P: canvas side; default :func:`merge_size`.

    Returns:
        (B, 1, P, P).
    """
    N = patches.shape[-1]
    if P is None:
        P = merge_size(relative, N)
    pad = (P - N) / 2.0
    shifts = -relative.transpose(-1, -2)  # (B, C, 2)
    rdt = _real_dtype(patches)
    t_y, t_x = shift_matrices(shifts, (N, N), (P, P), origin=(-pad, -pad), dtype=rdt)
    if not probe_big:
        patches = patches * _support(N, False, rdt, patches.device)
    num = _apply(patches, t_y, t_x).sum(dim=1, keepdim=True)
    support = _support(N, probe_big, rdt, patches.device)
    den = (t_y @ support @ t_x.transpose(-1, -2)).sum(dim=1, keepdim=True)
    covered = den >= SUPPORT_THRESHOLD
    safe = torch.where(covered, den, torch.ones_like(den))
    out = num / safe
    return torch.where(covered, out, torch.zeros_like(out))


def reextract(canvas: torch.Tensor, relative: torch.Tensor, N: int) -> torch.Tensor:
    """Translate the group canvas by ``+relative_c`` and crop the central N×N per member.

    Args:
        canvas: (B, 1, P, P) real or complex.
        relative: (B, 2, C).
        N: patch side.

    Returns:
        (B, C, N, N).
    """
    P = canvas.shape[-1]
    pad = (P - N) / 2.0
    shifts = relative.transpose(-1, -2)  # (B, C, 2)
    t_y, t_x = shift_matrices(shifts, (P, P), (N, N), origin=(pad, pad), dtype=_real_dtype(canvas))
    return _apply(canvas, t_y, t_x)


def centre_crop(canvas: torch.Tensor, N: int) -> torch.Tensor:
    """Central N×N of a (B, C, P, P) canvas; (P - N) must be even."""
    P = canvas.shape[-1]
    start = (P - N) // 2
    return canvas[..., start : start + N, start : start + N]


def probe_mask(N: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """(N, N) disk of radius N/4 about (N/2 - 0.5, N/2 - 0.5)."""
    c = N / 2 - 0.5
    r = torch.arange(N, dtype=torch.float64, device=device) - c
    dist2 = r[:, None] ** 2 + r[None, :] ** 2
    return (dist2 < (N / 4) ** 2).to(dtype)


def illuminate(obj: torch.Tensor, probe: torch.Tensor, mask: bool = False) -> torch.Tensor:
    """Exit wave ``probe · obj``.

    Args:
        obj: (B, C, N, N) complex.
        probe: (N, N) complex.
        mask: multiply the probe by :func:`probe_mask` first.
    """
    if mask:
        probe = probe * probe_mask(probe.shape[-1], _real_dtype(probe), probe.device)
    return obj * probe


def diffract(psi: torch.Tensor) -> torch.Tensor:
    """Far-field amplitude ``|fftshift(fft2(psi))| / N`` over the last two axes.

    Args:
        psi: (..., N, N) complex exit waves.

    Returns:
        (..., N, N) real amplitude, zero frequency at N/2 (Parseval-normalised).
    """
    n = psi.shape[-1]
    f = torch.fft.fftshift(torch.fft.fft2(psi), dim=(-2, -1))
    return f.abs() / n


def poisson_nll(pred_amp: torch.Tensor, target_amp: torch.Tensor) -> torch.Tensor:
    """Mean saturated Poisson NLL ``λ - y - y·log(λ/y)`` (≥ 0, 0 at λ = y; METHOD.md §6).

    λ = max(pred², 1e-12), y = target²; the log term is 0 where y = 0.
    """
    lam = (pred_amp * pred_amp).clamp_min(LAMBDA_FLOOR)
    y = target_amp * target_amp
    log_ratio = torch.log(lam) - torch.log(y.clamp_min(LAMBDA_FLOOR))
    return (lam - y - y * log_ratio).mean()


def gaussian_smooth(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-blur the last two axes of a real or complex (..., N, N) field.

    Zero-padded separable convolution with a kernel truncated at 4σ and
    normalised to unit sum; ``sigma <= 0`` returns the input.
    """
    if sigma <= 0:
        return field
    radius = math.ceil(4.0 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=field.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    n_h, n_w = field.shape[-2:]
    # A banded Toeplitz matrix: the same matmul machinery as translation.
    rows = torch.arange(n_h, device=field.device)
    cols = torch.arange(n_w, device=field.device)
    dy = rows[None, :] - rows[:, None] + radius
    dx = cols[None, :] - cols[:, None] + radius
    k_y = torch.where((dy >= 0) & (dy <= 2 * radius), k[dy.clamp(0, 2 * radius)], 0.0)
    k_x = torch.where((dx >= 0) & (dx <= 2 * radius), k[dx.clamp(0, 2 * radius)], 0.0)
    rdt = _real_dtype(field)
    return _apply(field, k_y.to(rdt), k_x.to(rdt))
