"""TensorFlow versions of the physical operators of METHOD.md §3.

Every operator matches :mod:`ptychopinn.data.physics` (the NumPy reference) and is
differentiable. Grouped tensors are channels-last ``(B, N, N, C)``; positions and
offsets are ``[x, y]`` in object pixels (x = column, y = row).

All sub-pixel resampling is done by one primitive, :func:`resample`: bilinear
interpolation with zero outside the source, written as two small dense
interpolation matrices per image (``out = M_y · img · M_xᵀ``). Because a uniform
translation is separable, this is exactly the corner-wise bilinear gather of the
reference, needs no gather/scatter (deterministic, XLA-friendly, matmul-fast),
and folds padding and cropping into the same product: ``merge`` never builds a
canvas wider than it needs and ``centre_crop(merge(...))`` never builds one at all.

Merging is strictly per group: every tensor keeps its batch axis, so groups of a
batch can never be summed onto one canvas (upstream's batch·C ≥ 64 hazard).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ptychopinn.core.constants import LAMBDA_FLOOR, SUPPORT_THRESHOLD

__all__ = [
    "LAMBDA_FLOOR",
    "SUPPORT_THRESHOLD",
    "centre_crop",
    "diffract",
    "extract",
    "illuminate",
    "merge",
    "merge_centre",
    "merge_size",
    "pad_reextract",
    "poisson_nll",
    "probe_mask",
    "reextract",
    "resample",
    "support_mask",
    "translate",
]

# SUPPORT_THRESHOLD (merged pixels with less summed support are 0, never divided) and
# LAMBDA_FLOOR (lower clamp of the Poisson rate λ) are the NumPy reference's own.


def _interp_matrix(offset: tf.Tensor, n_out: int | tf.Tensor, n_in: int | tf.Tensor) -> tf.Tensor:
    """Return bilinear matrices (..., n_out, n_in) with ``out[i] = src(i + offset)``, zero outside.

    ``offset`` (...,) float32 may be fractional; source indices outside ``[0, n_in)``
    contribute nothing (``tf.one_hot`` yields a zero row for them).
    """
    offset = tf.convert_to_tensor(offset, tf.float32)
    whole = tf.floor(offset)
    frac = offset - whole
    grid = tf.range(n_out, dtype=tf.int32)
    first = grid + tf.cast(whole, tf.int32)[..., None]  # (..., n_out)
    frac = frac[..., None, None]
    return (1.0 - frac) * tf.one_hot(first, n_in, dtype=tf.float32) + frac * tf.one_hot(
        first + 1, n_in, dtype=tf.float32
    )


def resample(
    images: tf.Tensor,
    offset_y: tf.Tensor,
    offset_x: tf.Tensor,
    out_h: int | tf.Tensor,
    out_w: int | tf.Tensor,
) -> tf.Tensor:
    """Bilinearly sample ``out(i, j) = img(i + offset_y, j + offset_x)``, zero outside the image.

    ``images`` (..., H, W) float32 or complex64; ``offset_y``/``offset_x`` (...,) px,
    one per leading index; result (..., out_h, out_w) of the input dtype.
    """
    images = tf.convert_to_tensor(images)
    h = tf.shape(images)[-2]
    w = tf.shape(images)[-1]
    m_y = _interp_matrix(offset_y, out_h, h)  # (..., out_h, H)
    m_x = _interp_matrix(offset_x, out_w, w)  # (..., out_w, W)

    def apply(real: tf.Tensor) -> tf.Tensor:
        return tf.matmul(m_y, tf.matmul(real, m_x, transpose_b=True))

    if images.dtype.is_complex:
        return tf.complex(apply(tf.math.real(images)), apply(tf.math.imag(images)))
    return apply(tf.cast(images, tf.float32))


def translate(images: tf.Tensor, shifts: tf.Tensor) -> tf.Tensor:
    """Translate images (..., H, W) by shifts (..., 2) ``[dx, dy]`` px: ``out(y, x) = img(y-dy, x-dx)``.

    Bilinear, zero outside; leading axes of ``images`` and ``shifts`` must agree.
    """
    images = tf.convert_to_tensor(images)
    shifts = tf.convert_to_tensor(shifts, tf.float32)
    return resample(
        images, -shifts[..., 1], -shifts[..., 0], tf.shape(images)[-2], tf.shape(images)[-1]
    )


def extract(canvas: tf.Tensor, positions: tf.Tensor, N: int) -> tf.Tensor:
    """Extract patches (B, N, N) from canvas (H, W) at positions (B, 2) ``[x, y]`` px.

    ``patch[i, j] = canvas(y - N/2 + i, x - N/2 + j)``, bilinear, zero outside.
    """
    canvas = tf.convert_to_tensor(canvas)
    positions = tf.reshape(tf.convert_to_tensor(positions, tf.float32), (-1, 2))
    b = tf.shape(positions)[0]
    tiled = tf.broadcast_to(canvas[None], tf.concat([[b], tf.shape(canvas)], axis=0))
    return resample(tiled, positions[:, 1] - N / 2, positions[:, 0] - N / 2, N, N)


def merge_size(relative: np.ndarray | tf.Tensor, N: int) -> int | tf.Tensor:
    """Return the merge canvas side ``P = N + 2·ceil(max|relative|)``, rounded up to even.

    A Python int for concrete (eager/NumPy) offsets, a scalar int32 tensor inside a graph.
    """
    if isinstance(relative, np.ndarray) or tf.executing_eagerly():
        rel = np.asarray(relative, dtype=np.float64)
        reach = float(np.max(np.abs(rel))) if rel.size else 0.0
        p = N + 2 * math.ceil(reach - 1e-9)
        return p + (p % 2)
    reach = tf.reduce_max(tf.abs(tf.cast(relative, tf.float32)))
    p = N + 2 * tf.cast(tf.math.ceil(reach), tf.int32)
    return p + p % 2


def support_mask(N: int, probe_big: bool) -> tf.Tensor:
    """Return the (N, N) float32 merge support: all ones, or the central N/2 window."""
    mask = np.zeros((N, N), np.float32)
    if probe_big:
        mask[:] = 1
    else:
        mask[N // 4 : N // 4 + N // 2, N // 4 : N // 4 + N // 2] = 1
    return tf.constant(mask)


def _channels_first(x: tf.Tensor) -> tf.Tensor:
    return tf.transpose(x, (0, 3, 1, 2))


def _channels_last(x: tf.Tensor) -> tf.Tensor:
    return tf.transpose(x, (0, 2, 3, 1))


def _offsets_xy(relative: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Split relative offsets (B, 1, 2, C) into (B, C) x and y."""
    relative = tf.convert_to_tensor(relative, tf.float32)
    return relative[:, 0, 0, :], relative[:, 0, 1, :]


def _weighted_sum(
    patches: tf.Tensor,
    relative: tf.Tensor,
    probe_big: bool,
    size: int | tf.Tensor,
    lo: int | tf.Tensor,
) -> tf.Tensor:
    """Per group: Σ_c patch_c(j + rel_c - lo) / Σ_c mask(j + rel_c - lo) on a size×size grid.

    patches (B, N, N, C) -> (B, size, size, 1); 0 where the summed support < 1e-6.
    """
    patches = tf.convert_to_tensor(patches)
    n = patches.shape[1]
    mask = support_mask(n, probe_big)
    rx, ry = _offsets_xy(relative)
    lo_f = tf.cast(lo, tf.float32)
    oy, ox = ry - lo_f, rx - lo_f
    m_y = _interp_matrix(oy, size, n)  # (B, C, size, N)
    m_x = _interp_matrix(ox, size, n)
    masked = _channels_first(patches) * tf.cast(mask, patches.dtype)

    def apply(real: tf.Tensor) -> tf.Tensor:
        return tf.reduce_sum(tf.matmul(m_y, tf.matmul(real, m_x, transpose_b=True)), axis=1)

    if masked.dtype.is_complex:
        num = tf.complex(apply(tf.math.real(masked)), apply(tf.math.imag(masked)))
    else:
        num = apply(masked)
    weight = tf.reduce_sum(
        tf.matmul(tf.einsum("bcsn,nm->bcsm", m_y, mask), m_x, transpose_b=True), axis=1
    )
    covered = weight >= SUPPORT_THRESHOLD
    safe = tf.where(covered, weight, tf.ones_like(weight))
    ratio = num / tf.cast(safe, num.dtype)
    out = tf.where(covered, ratio, tf.zeros_like(ratio))
    return out[..., None]


def merge(
    patches: tf.Tensor,
    relative: tf.Tensor,
    probe_big: bool = True,
    P: int | tf.Tensor | None = None,
) -> tf.Tensor:
    """Merge each group's patches (B, N, N, C) at offsets (B, 1, 2, C) into canvases (B, P, P, 1).

    Per group: zero-pad each (support-masked) patch centred to P×P, translate channel c
    by ``-relative_c``, sum, divide by the summed translated support masks; 0 where the
    support is below 1e-6. ``P`` defaults to :func:`merge_size`.
    """
    patches = tf.convert_to_tensor(patches)
    n = patches.shape[1]
    if P is None:
        P = merge_size(relative, n)
    lo = (P - n) // 2
    return _weighted_sum(patches, relative, probe_big, P, lo)


def merge_centre(patches: tf.Tensor, relative: tf.Tensor, probe_big: bool = True) -> tf.Tensor:
    """Return ``centre_crop(merge(patches, relative), N)`` (B, N, N, 1) without building the canvas.

    The crop window and the padding share the same centre, so the cropped canvas is
    the merge evaluated on the patch grid itself (independent of P).
    """
    return _weighted_sum(patches, relative, probe_big, tf.convert_to_tensor(patches).shape[1], 0)


def reextract(canvas: tf.Tensor, relative: tf.Tensor, N: int) -> tf.Tensor:
    """Re-extract member patches (B, N, N, C) from canvases (B, P, P, 1).

    Channel c: translate the canvas by ``+relative_c`` and crop the central N×N.
    """
    canvas = tf.convert_to_tensor(canvas)
    p = tf.shape(canvas)[1] if canvas.shape[1] is None else canvas.shape[1]
    lo = tf.cast((p - N) // 2, tf.float32)
    rx, ry = _offsets_xy(relative)
    c = tf.shape(rx)[1]
    planes = tf.repeat(canvas[:, None, :, :, 0], c, axis=1)  # (B, C, P, P)
    return _channels_last(resample(planes, lo - ry, lo - rx, N, N))


def pad_reextract(patch: tf.Tensor, relative: tf.Tensor) -> tf.Tensor:
    """Zero-pad one patch (B, N, N, 1) centred and re-extract it at every offset -> (B, N, N, C).

    Equals ``reextract(pad(patch, P), relative, N)`` for any P ≥ merge_size (object_big=False).
    """
    patch = tf.convert_to_tensor(patch)
    n = patch.shape[1]
    rx, ry = _offsets_xy(relative)
    c = tf.shape(rx)[1]
    planes = tf.repeat(patch[:, None, :, :, 0], c, axis=1)
    return _channels_last(resample(planes, -ry, -rx, n, n))


def centre_crop(canvas: tf.Tensor, N: int) -> tf.Tensor:
    """Crop the central N×N of canvases (B, P, P, K) -> (B, N, N, K); start index (P - N) // 2."""
    canvas = tf.convert_to_tensor(canvas)
    p = tf.shape(canvas)[1] if canvas.shape[1] is None else canvas.shape[1]
    lo = (p - N) // 2
    return canvas[:, lo : lo + N, lo : lo + N, :]


def probe_mask(N: int) -> np.ndarray:
    """Return the (N, N) float32 disk of radius N/4 about (N/2 - 0.5, N/2 - 0.5)."""
    centre = N / 2 - 0.5
    yy, xx = np.mgrid[0:N, 0:N]
    return (((xx - centre) ** 2 + (yy - centre) ** 2) < (N / 4) ** 2).astype(np.float32)


def illuminate(obj: tf.Tensor, probe: tf.Tensor, mask: bool = False) -> tf.Tensor:
    """Return exit waves ``probe · obj`` (B, N, N, C) for patches (B, N, N, C) and probe (N, N)."""
    obj = tf.convert_to_tensor(obj)
    probe = tf.cast(probe, tf.complex64)
    if mask:
        probe = probe * tf.cast(probe_mask(probe.shape[-1]), tf.complex64)
    return tf.cast(obj, tf.complex64) * probe[:, :, None]


def _safe_abs(z: tf.Tensor) -> tf.Tensor:
    """|z| whose gradient is 0 (not NaN) where z == 0."""
    sq = tf.square(tf.math.real(z)) + tf.square(tf.math.imag(z))
    positive = sq > 0
    root = tf.sqrt(tf.where(positive, sq, tf.ones_like(sq)))
    return tf.where(positive, root, tf.zeros_like(sq))


def diffract(psi: tf.Tensor) -> tf.Tensor:
    """Return far-field amplitudes ``|fftshift(fft2(psi))| / N`` (B, N, N, C) float32 of psi (B, N, N, C)."""
    psi = tf.cast(tf.convert_to_tensor(psi), tf.complex64)
    n = psi.shape[1]
    spectrum = tf.signal.fft2d(_channels_first(psi))
    spectrum = tf.roll(spectrum, shift=(n // 2, n // 2), axis=(2, 3))
    return _channels_last(_safe_abs(spectrum)) / float(n)


def poisson_nll(pred_amp: tf.Tensor, target_amp: tf.Tensor) -> tf.Tensor:
    """Return the mean saturated Poisson NLL ``λ - y - y·log(λ/y)`` (scalar, ≥ 0).

    λ = max(pred², 1e-12), y = target²; 0 at λ = y (METHOD.md §6).
    """
    lam = tf.maximum(tf.square(tf.cast(pred_amp, tf.float32)), LAMBDA_FLOOR)
    y = tf.square(tf.cast(target_amp, tf.float32))
    log_ratio = tf.math.log(lam) - tf.math.log(tf.maximum(y, LAMBDA_FLOOR))
    return tf.reduce_mean(lam - y - y * log_ratio)
