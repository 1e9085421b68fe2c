"""Streaming reassembly of object patches into one image (METHOD.md §7).

Placement convention (the same as ``ptychopinn.data.physics.translate``): a patch
centred on scan position (x, y) has its pixel (N//2, N//2) on object pixel
(row=y, col=x); a bilinear sub-pixel shift by d moves content by +d and is zero
outside the shifted support.

Bilinear splatting of a crop x crop tile at a sub-pixel position equals placing the
tile convolved with a 2x2 kernel, (crop+1) x (crop+1) values, at an integer position,
so every chunk is a few vectorised scatter-adds (``np.add.at``) of those values. The
summed shifted ones depend only on the positions: they are accumulated as four
point masses per patch and box-filtered once, in :meth:`Canvas.result`.

A weight map ``w`` (the same for every patch, e.g. ``probe_weight``: the illumination
intensity) makes the result sum(w·patch) / sum(w) (METHOD.md §7): each tile is multiplied
by ``w`` before it is splatted, and the point masses are convolved with ``w`` instead of
box-filtered.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.fft
import scipy.signal

from ptychopinn.config.constants import SUPPORT_THRESHOLD
from ptychopinn.stitch.errors import StitchError

Method = Literal["bilinear", "fourier"]
METHODS: tuple[str, ...] = ("bilinear", "fourier")


@dataclass(frozen=True)
class Stitched:
    """A stitched image: ``image[r, c]`` is object pixel (row=origin[1]+r, col=origin[0]+c)."""

    image: np.ndarray
    """(H, W) complex128 or float64; 0 where nothing landed."""
    origin: tuple[float, float]
    """(x0, y0): position of pixel (0, 0) in the offsets' frame (pixels)."""
    weights: np.ndarray
    """(H, W) float64 summed shifted support: the number of patches covering each pixel
    (their summed weight at the pixel with a weight map)."""

    @property
    def covered(self) -> np.ndarray:
        """(H, W) bool: pixels where at least one patch landed."""
        return self.weights >= SUPPORT_THRESHOLD

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W) of the image."""
        return self.image.shape  # type: ignore[return-value]


def _check_crop(crop: int) -> int:
    if isinstance(crop, bool) or not isinstance(crop, int | np.integer) or crop < 1:
        raise StitchError(f"crop must be a positive integer number of pixels, found {crop!r}")
    return int(crop)


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise StitchError(f"method must be one of {METHODS}, found {method!r}")
    return method


def as_patch_stack(patches: np.ndarray, name: str = "patches") -> np.ndarray:
    """Return patches as (B, N, N) from (B, N, N) or (B, N, N, 1); raise StitchError otherwise."""
    arr = np.asarray(patches)
    if arr.ndim == 4:
        if arr.shape[-1] != 1:
            raise StitchError(
                f"{name} must be (B, N, N) or (B, N, N, 1), found {arr.shape}: "
                f"{arr.shape[-1]} channels; merge each group first (one patch per group centre)"
            )
        arr = arr[..., 0]
    if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
        raise StitchError(f"{name} must be (B, N, N) or (B, N, N, 1), found {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) and not np.issubdtype(arr.dtype, np.bool_)):
        raise StitchError(f"{name} must be numeric (real or complex), found dtype {arr.dtype}")
    return arr


def _as_offsets(offsets: np.ndarray, batch: int | None = None) -> np.ndarray:
    off = np.asarray(offsets, dtype=np.float64)
    if off.ndim == 4 and off.shape[1] == 1 and off.shape[3] == 1:
        off = off[:, 0, :, 0]  # coords_offsets (B, 1, 2, 1)
    if off.ndim != 2 or off.shape[1] != 2:
        raise StitchError(f"offsets must be (B, 2) [x, y] pixels, found {off.shape}")
    if batch is not None and off.shape[0] != batch:
        raise StitchError(
            f"offsets must be ({batch}, 2) to match {batch} patches, found {off.shape}"
        )
    if not np.isfinite(off).all():
        raise StitchError("offsets must be finite")
    return off


def probe_weight(probe: np.ndarray, power: float = 2.0) -> np.ndarray:
    """(N, N) float64 stitching weight |probe|**power scaled to a maximum of 1.

    ``probe`` (N, N), (N, N, 1) or (modes, N, N) (modes: their summed intensities
    raised to power/2). Pixels a patch's probe barely lit carry little of its weight, so
    where patches overlap the image follows those that saw the pixel best (METHOD.md §7).
    """
    arr = np.asarray(probe)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3:
        intensity = np.sum(np.abs(arr.astype(np.complex128)) ** 2, axis=0)
    elif arr.ndim == 2:
        intensity = np.abs(arr.astype(np.complex128)) ** 2
    else:
        raise StitchError(f"probe must be (N, N), (N, N, 1) or (modes, N, N), found {arr.shape}")
    if arr.shape[-1] != arr.shape[-2]:
        raise StitchError(f"probe must be square, found {arr.shape}")
    if isinstance(power, bool) or not np.isfinite(power) or power <= 0:
        raise StitchError(f"power must be a positive number, found {power!r}")
    if not np.isfinite(intensity).all():
        raise StitchError("probe must be finite (it holds NaN or inf)")
    peak = float(intensity.max())
    if peak <= 0:
        raise StitchError("probe is zero everywhere: it gives no stitching weight")
    return (intensity / peak) ** (power / 2.0)


def _check_weight(weight: np.ndarray | None) -> np.ndarray | None:
    if weight is None:
        return None
    w = np.asarray(weight)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise StitchError(f"weight must be a square (N, N) or (crop, crop) map, found {w.shape}")
    if not np.issubdtype(w.dtype, np.number) or np.iscomplexobj(w):
        raise StitchError(f"weight must be real, found dtype {w.dtype}")
    w = w.astype(np.float64)
    if not np.isfinite(w).all() or (w < 0).any():
        raise StitchError("weight must be finite and >= 0 everywhere")
    return w


def canvas_geometry(
    offsets: np.ndarray, crop: int = 20
) -> tuple[tuple[int, int], tuple[float, float]]:
    """Canvas (shape, origin) for offsets (B, 2) [x, y] per METHOD.md §7.

    Offsets are re-centred on their mean rounded to a whole pixel (so the canvas grid is
    the offsets' pixel grid and the image overlays the truth without interpolation);
    side = crop + 2*ceil(max |offset - centre|), the centre patch in the middle.
    """
    crop = _check_crop(crop)
    off = _as_offsets(offsets)
    if off.shape[0] == 0:
        raise StitchError("offsets must hold at least one position, found 0")
    centre = np.round(off.mean(axis=0))
    pad = math.ceil(float(np.max(np.abs(off - centre))) - 1e-9)
    side = crop + 2 * max(pad, 0)
    x0 = float(centre[0]) - pad - crop // 2
    y0 = float(centre[1]) - pad - crop // 2
    return (side, side), (x0, y0)


class Canvas:
    """Accumulator for patches on a fixed canvas; memory = canvas + one chunk.

    ``Canvas(shape, origin).add(patches, offsets)`` any number of times, then
    ``result()``. Pixel (r, c) of the canvas is position (x0 + c, y0 + r) of the
    offsets' frame. Parts of patches outside the canvas are dropped. ``weight``: an
    (N, N) map (its central crop is used) or a (crop, crop) one, the same for every
    patch; None is uniform.
    """

    def __init__(
        self,
        shape: tuple[int, int],
        origin: tuple[float, float] = (0.0, 0.0),
        *,
        crop: int = 20,
        method: Method = "bilinear",
        chunk_size: int = 256,
        dtype: np.dtype | type | None = None,
        weight: np.ndarray | None = None,
    ) -> None:
        """Create an empty canvas of shape (H, W) whose pixel (0, 0) sits at origin (x0, y0).

        ``dtype`` of the accumulated image: None follows the patches' precision
        (float32/complex64 in -> complex64 or float32 sums; float64 -> float64/complex128).
        """
        self.crop = _check_crop(crop)
        self.method = _check_method(method)
        if len(tuple(shape)) != 2 or min(int(s) for s in shape) < 1:
            raise StitchError(f"canvas shape must be (H, W) with H, W >= 1, found {shape!r}")
        if len(tuple(origin)) != 2 or not np.isfinite(np.asarray(origin, dtype=float)).all():
            raise StitchError(f"canvas origin must be finite (x0, y0), found {origin!r}")
        if int(chunk_size) < 1:
            raise StitchError(f"chunk_size must be >= 1, found {chunk_size!r}")
        self.shape = (int(shape[0]), int(shape[1]))
        self.origin = (float(origin[0]), float(origin[1]))
        self.chunk_size = int(chunk_size)
        self._dtype = None if dtype is None else np.dtype(dtype)
        if self._dtype is not None and self._dtype.kind not in "fc":
            raise StitchError(f"dtype must be a real or complex float type, found {self._dtype}")
        self._buffers: dict[str, np.ndarray] = {}
        self._weight = _check_weight(weight)
        if self._weight is not None and self._weight.shape[0] < self.crop:
            raise StitchError(
                f"weight must be at least crop x crop = {self.crop} x {self.crop}, "
                f"found {self._weight.shape}"
            )
        self._tile_weight: np.ndarray | None = None  # the crop x crop part, known at add()
        # A margin of crop+1 on every side takes the (crop+1)^2 splat of any patch that
        # touches the visible canvas, so no per-pixel bounds test is needed.
        self._margin = self.crop + 1
        self._inner = (self.shape[0] + 2 * self._margin, self.shape[1] + 2 * self._margin)
        size = self._inner[0] * self._inner[1]
        self._values: np.ndarray | None = None  # allocated by the first add (dtype known)
        self._density = np.zeros(size, dtype=np.float64)
        self.n_patches = 0
        self._n_expected: int | None = None
        lin = np.arange(self.crop + 1)
        self._loc_splat = (lin[:, None] * self._inner[1] + lin[None, :]).ravel()
        lin = np.arange(self.crop)
        self._loc_tile = (lin[:, None] * self._inner[1] + lin[None, :]).ravel()

    @classmethod
    def for_offsets(
        cls,
        offsets: np.ndarray,
        *,
        crop: int = 20,
        method: Method = "bilinear",
        chunk_size: int = 256,
        weight: np.ndarray | None = None,
    ) -> Canvas:
        """Canvas sized for all offsets (B, 2) [x, y] known up front (see canvas_geometry)."""
        shape, origin = canvas_geometry(offsets, crop)
        return cls(shape, origin, crop=crop, method=method, chunk_size=chunk_size, weight=weight)

    def add(self, patches: np.ndarray, offsets: np.ndarray) -> None:
        """Accumulate patches (B, N, N[, 1]) centred on offsets (B, 2) [x, y]."""
        stack = as_patch_stack(patches)
        off = _as_offsets(offsets, stack.shape[0])
        n = stack.shape[1]
        if self.crop > n:
            raise StitchError(f"crop must be <= patch size N={n}, found crop={self.crop}")
        self._set_tile_weight(n)
        self._ensure_values(stack.dtype)
        for start in range(0, stack.shape[0], self.chunk_size):
            stop = start + self.chunk_size
            self._add_chunk(stack[start:stop], off[start:stop])
        self.n_patches += stack.shape[0]

    def _set_tile_weight(self, n: int) -> None:
        w = self._weight
        if w is None:
            return
        if w.shape[0] not in (n, self.crop):
            raise StitchError(
                f"weight must be (N, N) = ({n}, {n}) like the patches or (crop, crop) = "
                f"({self.crop}, {self.crop}), found {w.shape}"
            )
        if w.shape[0] == n and n != self.crop:
            s0 = n // 2 - self.crop // 2
            w = w[s0 : s0 + self.crop, s0 : s0 + self.crop]
        if self._tile_weight is None:
            if not (w > 0).any():
                raise StitchError(f"weight is zero over the central {self.crop} x {self.crop}")
            self._tile_weight = np.ascontiguousarray(w)

    def _ensure_values(self, patch_dtype: np.dtype) -> None:
        size = self._inner[0] * self._inner[1]
        want = self._dtype if self._dtype is not None else np.result_type(patch_dtype, np.float32)
        if np.iscomplexobj(np.empty(0, patch_dtype)):
            want = np.result_type(want, np.complex64)
        if self._values is None:
            self._values = np.zeros(size, dtype=want)
        else:
            promoted = np.result_type(self._values.dtype, want)
            if promoted != self._values.dtype:
                self._values = self._values.astype(promoted)

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Reusable per-chunk work array: fresh pages every chunk would cost more than the math."""
        buf = self._buffers.get(name)
        if buf is None or buf.dtype != dtype or buf.shape[1:] != shape[1:] or len(buf) < shape[0]:
            buf = np.empty((max(shape[0], self.chunk_size), *shape[1:]), dtype=dtype)
            self._buffers[name] = buf
        return buf[: shape[0]]

    def _add_chunk(self, patches: np.ndarray, offsets: np.ndarray) -> None:
        crop, m = self.crop, self._margin
        n = patches.shape[1]
        s0 = n // 2 - crop // 2
        # Tile pixel (i, j) sits at inner position (p + i) with p the tile's top-left.
        px = offsets[:, 0] - crop // 2 - self.origin[0] + m
        py = offsets[:, 1] - crop // 2 - self.origin[1] + m
        kx = np.floor(px)
        ky = np.floor(py)
        keep = (kx >= 0) & (ky >= 0)
        keep &= kx + crop + 1 < self._inner[1]
        keep &= ky + crop + 1 < self._inner[0]
        if not keep.all():
            patches, px, py, kx, ky = patches[keep], px[keep], py[keep], kx[keep], ky[keep]
            if patches.shape[0] == 0:
                return
        fx = px - kx
        fy = py - ky
        base = ky.astype(np.int64) * self._inner[1] + kx.astype(np.int64)
        assert self._values is not None
        dtype = self._values.dtype
        w = self._tile_weight
        if self.method == "bilinear":
            tile = patches[:, s0 : s0 + crop, s0 : s0 + crop]
            if w is not None:
                tile = tile * w.astype(np.empty(0, dtype).real.dtype)
            values = self._bilinear_splat(tile, fx, fy, dtype)
            loc = self._loc_splat
            self._add_density_bilinear(base, fx, fy)
        else:
            values = _fourier_shift_crop(patches, fx, fy, s0, crop).astype(dtype, copy=False)
            if w is not None:
                values = values * w.astype(np.empty(0, dtype).real.dtype)
            loc = self._loc_tile
            np.add.at(self._density, base, 1.0)
        self._scatter(base, loc, values.reshape(values.shape[0], -1))

    def _bilinear_splat(
        self, tile: np.ndarray, fx: np.ndarray, fy: np.ndarray, dtype: np.dtype
    ) -> np.ndarray:
        """(B, c, c) tiles -> (B, (c+1)^2) of dtype: bilinear splat of each tile at (fx, fy)."""
        b, c, _ = tile.shape
        # Flat real rows of width (c+1)*e (e = 2 for complex) whose last column is 0: a
        # one-row shift is then a shift by a row width and a one-column shift a shift by e
        # in the flat buffer (the zero column absorbs the wrap), so each pass is one
        # long-inner-loop ufunc call per chunk.
        padded = self._buffer("padded", (b, c, c + 1), dtype)
        padded[:, :, :c] = tile
        padded[:, :, c] = 0
        e = 2 if dtype.kind == "c" else 1
        real = padded.real.dtype
        flat = padded.view(real).reshape(b, -1)
        width = (c + 1) * e
        n_out = (c + 1) * width
        # 1 - f in float64 first: in float32 it would cancel catastrophically for f near 1.
        fy2, gy2 = fy.astype(real)[:, None], (1 - fy).astype(real)[:, None]
        fx2, gx2 = fx.astype(real)[:, None], (1 - fx).astype(real)[:, None]
        rows = self._buffer("rows", (b, n_out), real)
        tmp = self._buffer("tmp", (b, n_out), real)
        out = self._buffer("out", (b, n_out), real)
        np.multiply(flat, gy2, out=rows[:, : c * width])
        rows[:, c * width :] = 0
        np.multiply(flat, fy2, out=tmp[:, : c * width])
        rows[:, width:] += tmp[:, : c * width]
        np.multiply(rows, gx2, out=out)
        np.multiply(rows[:, :-e], fx2, out=tmp[:, :-e])
        out[:, e:] += tmp[:, :-e]
        return out.view(dtype) if e == 2 else out

    def _add_density_bilinear(self, base: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> None:
        w = self._inner[1]
        idx = np.concatenate([base, base + 1, base + w, base + w + 1])
        mass = np.concatenate([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
        np.add.at(self._density, idx, mass)

    def _scatter(self, base: np.ndarray, loc: np.ndarray, values: np.ndarray) -> None:
        """Add values (B, L) of the canvas dtype at flat inner indices base[:, None] + loc."""
        assert self._values is not None
        # Sorted by position, the unbuffered add is cache-local (several times faster).
        order = np.argsort(base, kind="stable")
        b = base[order]
        lo = int(b[0])
        nb, nl = values.shape
        idx = self._buffer("idx", (nb, nl), np.dtype(np.intp))
        np.add((b - lo)[:, None], loc[None, :], out=idx)
        v = self._buffer("sorted", (nb, nl), values.dtype)
        np.take(values, order, axis=0, out=v)
        np.add.at(self._values[lo:], idx.ravel(), v.ravel())

    def result(self) -> Stitched:
        """Divide the summed shifted patches by the summed shifted support; 0 where uncovered."""
        h, w = self.shape
        m = self._margin
        weights = self._support()[m : m + h, m : m + w]
        if self._values is None:
            values = np.zeros((h, w), dtype=np.float64)
        else:
            values = self._values.reshape(self._inner)[m : m + h, m : m + w]
        covered = weights >= SUPPORT_THRESHOLD
        weights = np.where(covered, weights, 0.0)
        # 1/weight in the image's real precision: one same-type multiply, not a mixed divide.
        real = np.empty(0, values.dtype).real.dtype
        inverse = np.zeros(weights.shape, dtype=real)
        np.divide(1.0, weights, out=inverse, where=covered, casting="same_kind")
        image = np.multiply(values, inverse)
        return Stitched(image=image, origin=self.origin, weights=weights)

    def _support(self) -> np.ndarray:
        """(inner H, inner W) summed shifted ones (or weights): the point masses box-filtered
        over crop, or convolved with the weight map."""
        if self._tile_weight is not None:
            density = self._density.reshape(self._inner)
            full = scipy.signal.fftconvolve(density, self._tile_weight, mode="full")
            # FFT round-off leaves ~1e-16 (possibly negative) where nothing landed.
            return np.clip(full[: self._inner[0], : self._inner[1]], 0.0, None)
        out = np.cumsum(self._density.reshape(self._inner), axis=0)
        _difference_in_place(out, self.crop, axis=0)
        np.cumsum(out, axis=1, out=out)
        _difference_in_place(out, self.crop, axis=1)
        # The running sums leave ~1e-13 where nothing landed; result() thresholds at 1e-6.
        return out


def _difference_in_place(a: np.ndarray, lag: int, axis: int) -> None:
    """a[i] -= a[i - lag] along axis for i >= lag, without a full-size temporary."""
    n = a.shape[axis]
    end = n
    # Backwards in blocks of `lag`: each block's sources lie before it, still unmodified.
    while end > lag:
        start = max(end - lag, lag)
        dst = [slice(None)] * a.ndim
        src = [slice(None)] * a.ndim
        dst[axis] = slice(start, end)
        src[axis] = slice(start - lag, end - lag)
        a[tuple(dst)] -= a[tuple(src)]
        end = start


def _fourier_shift_crop(
    patches: np.ndarray, fx: np.ndarray, fy: np.ndarray, s0: int, crop: int
) -> np.ndarray:
    """(B, N, N) patches shifted by (fx, fy) with a Fourier phase ramp, central (B, crop, crop)."""
    n = patches.shape[1]
    freq = np.fft.fftfreq(n).astype(fx.dtype)
    spec = scipy.fft.fft2(patches, axes=(1, 2), workers=-1)
    ramp_y = np.exp(-2j * np.pi * freq[None, :] * fy[:, None])
    ramp_x = np.exp(-2j * np.pi * freq[None, :] * fx[:, None])
    spec *= ramp_y[:, :, None]
    spec *= ramp_x[:, None, :]
    shifted = scipy.fft.ifft2(spec, axes=(1, 2), workers=-1)[:, s0 : s0 + crop, s0 : s0 + crop]
    if not np.iscomplexobj(patches):
        return np.ascontiguousarray(shifted.real)
    return shifted


def reassemble(
    patches: np.ndarray | Iterable[tuple[np.ndarray, np.ndarray]],
    offsets: np.ndarray | None = None,
    crop: int = 20,
    method: Method = "bilinear",
    chunk_size: int = 256,
    *,
    shape: tuple[int, int] | None = None,
    origin: tuple[float, float] | None = None,
    weight: np.ndarray | None = None,
    phase_weight: np.ndarray | None = None,
) -> Stitched:
    """Stitch patches (B, N, N[, 1]) centred on offsets (B, 2) [x, y] into one image.

    With arrays, the canvas follows METHOD.md §7 (see :func:`canvas_geometry`) unless
    ``shape`` and ``origin`` are given. ``patches`` may instead be an iterable of
    ``(patches_chunk, offsets_chunk)`` pairs (model output as it arrives); the mean of
    all offsets is then unknown, so ``shape`` and ``origin`` are required. ``weight``
    (N, N) or (crop, crop), e.g. :func:`probe_weight`: the image is sum(w·patch)/sum(w)
    over the patches covering each pixel; None weights every cropped pixel equally.
    ``phase_weight`` (complex patches): the image keeps the modulus of the ``weight``
    average and takes its phase from a second average weighted by ``phase_weight``
    (where that one covers the pixel) -- METHOD.md §7 gives the measured reason.
    """
    crop = _check_crop(crop)
    _check_method(method)
    if (shape is None) != (origin is None):
        raise StitchError("give both shape and origin for an explicit canvas, or neither")
    if isinstance(patches, np.ndarray) or offsets is not None:
        if offsets is None:
            raise StitchError("offsets (B, 2) [x, y] are required with an array of patches")
        stack = as_patch_stack(patches)
        off = _as_offsets(offsets, stack.shape[0])
        if shape is None:
            shape, origin = canvas_geometry(off, crop)
        chunks: Iterable[tuple[np.ndarray, np.ndarray]] = [(stack, off)]
    elif shape is None or origin is None:
        raise StitchError(
            "an iterator of (patches, offsets) chunks needs shape=(H, W) and origin=(x0, y0): "
            "the offsets' mean is not known until the last chunk; use canvas_geometry(offsets, "
            "crop) if all offsets are known up front"
        )
    else:
        chunks = patches
    assert shape is not None and origin is not None

    def canvas(w: np.ndarray | None) -> Canvas:
        return Canvas(shape, origin, crop=crop, method=method, chunk_size=chunk_size, weight=w)

    main = canvas(weight)
    phase = canvas(phase_weight) if phase_weight is not None else None
    for item in chunks:
        if not isinstance(item, tuple) or len(item) != 2:
            raise StitchError(
                f"each chunk must be a (patches, offsets) pair, found {type(item).__name__}"
            )
        main.add(item[0], item[1])
        if phase is not None:
            if not np.iscomplexobj(np.asarray(item[0])):
                raise StitchError("phase_weight needs complex patches (real ones have no phase)")
            phase.add(item[0], item[1])
    result = main.result()
    if phase is None:
        return result
    by_phase = phase.result()
    lit = by_phase.covered & (by_phase.image != 0)
    unit = np.ones_like(by_phase.image)
    np.divide(by_phase.image, np.abs(by_phase.image), out=unit, where=lit)
    image = np.where(lit, np.abs(result.image) * unit, result.image).astype(result.image.dtype)
    return Stitched(image=image, origin=result.origin, weights=result.weights)
