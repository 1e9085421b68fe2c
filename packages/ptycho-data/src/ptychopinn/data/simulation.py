"""Synthetic training data: objects, scan patterns and the seeded forward model (METHOD.md §4)."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ptychopinn.data.physics import diffract, extract, intensity_scale_from_data, poisson_observe
from ptychopinn.data.probe import default_probe
from ptychopinn.data.scan import ScanData

__all__ = ["OBJECT_KINDS", "grid_positions", "make_object", "random_positions", "simulate"]

OBJECT_KINDS = ("lines", "grf", "points", "diagonals")
_CHUNK = 1024


def _draw_segments(size: int, n_lines: int, rng: np.random.Generator) -> np.ndarray:
    """Return a (size, size) float64 canvas with ``n_lines`` random 1-px segments."""
    canvas = np.zeros((size, size))
    ends = rng.uniform(0, size - 1, size=(n_lines, 4))
    length = math.ceil(size * math.sqrt(2)) + 1
    t = np.linspace(0.0, 1.0, length)
    rows = np.rint(ends[:, 0:1] + (ends[:, 2:3] - ends[:, 0:1]) * t).astype(np.int64)
    cols = np.rint(ends[:, 1:2] + (ends[:, 3:4] - ends[:, 1:2]) * t).astype(np.int64)
    canvas[rows.ravel(), cols.ravel()] = 1.0
    return canvas


def _normalise(a: np.ndarray) -> np.ndarray:
    """Map an array to [0, 1] (min 0, max 1; constant arrays become zeros)."""
    a = a - a.min()
    peak = a.max()
    return a / peak if peak > 0 else a


def make_object(
    kind: str, size: int, seed: int | np.random.Generator = 0, phase: bool = True
) -> np.ndarray:
    """Return a synthetic (size, size) complex64 object of ``kind`` in OBJECT_KINDS, amplitude in [0, 1].

    Phase (when ``phase``): π·tanh((A − max/2)/(3·mean)).
    """
    rng = np.random.default_rng(seed)
    if size < 8:
        raise ValueError(f"object size must be >= 8 px, got {size}")
    if kind == "lines":
        n_lines = max(4, size // 8)
        amp = sum(
            ndimage.gaussian_filter(_draw_segments(size, n_lines, rng), sigma)
            for sigma in (1.0, 5.0, 10.0)
        )
    elif kind == "grf":
        ky = np.fft.fftfreq(size)[:, None]
        kx = np.fft.fftfreq(size)[None, :]
        k = np.hypot(kx, ky)
        k[0, 0] = np.inf
        noise = np.fft.fft2(rng.normal(size=(size, size)))
        amp = np.real(np.fft.ifft2(noise * k**-0.4))
    elif kind == "points":
        canvas = np.zeros((size, size))
        n_points = max(8, size * size // 200)
        canvas[rng.integers(0, size, n_points), rng.integers(0, size, n_points)] = 1.0
        amp = ndimage.gaussian_filter(canvas, 1.0)
    elif kind == "diagonals":
        period = max(4, size // 16)
        rr, cc = np.mgrid[0:size, 0:size]
        offset = rng.integers(0, period)
        stripes = (((rr + cc + offset) % period) < 2) | (((rr - cc + offset) % period) < 2)
        amp = ndimage.gaussian_filter(stripes.astype(np.float64), 1.0)
    else:
        raise ValueError(f"object kind must be one of {OBJECT_KINDS}, got {kind!r}")
    amp = _normalise(np.asarray(amp, dtype=np.float64))
    if phase and amp.mean() > 0:
        phi = np.pi * np.tanh((amp - amp.max() / 2) / (3 * amp.mean()))
    else:
        phi = np.zeros_like(amp)
    return (amp * np.exp(1j * phi)).astype(np.complex64)


def random_positions(n: int, N: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Return (n, 2) [x, y] positions uniform inside a buffer of N/2 from the edges of a size² object."""
    lo, hi = N / 2, size - N / 2
    if hi <= lo:
        raise ValueError(f"object size {size} leaves no room for {N}x{N} patches")
    return rng.uniform(lo, hi, size=(n, 2))


def grid_positions(n: int, N: int, step: float, size: int | None = None) -> tuple[np.ndarray, int]:
    """Return the first n points (n, 2) [x, y] of a row-major square grid with ``step`` px and the object size."""
    side = math.ceil(math.sqrt(n))
    needed = math.ceil((side - 1) * step + N) + 2
    size = needed if size is None else size
    if size < needed:
        raise ValueError(
            f"a {side}x{side} grid with step {step} needs object_size >= {needed}, got {size}"
        )
    origin = (size - (side - 1) * step) / 2
    yy, xx = np.divmod(np.arange(n), side)
    return np.column_stack([origin + xx * step, origin + yy * step]).astype(np.float64), size


def simulate(
    object: str | np.ndarray = "lines",
    n_images: int = 2000,
    N: int = 64,
    object_size: int | None = None,
    nphotons: float = 1e9,
    seed: int = 0,
    scan: str = "random",
    step: float | None = None,
    jitter: float = 0.0,
    probe: np.ndarray | None = None,
    phase: bool = True,
    poisson: bool = True,
) -> ScanData:
    """Simulate a seeded scan: extract → illuminate → diffract → Poisson at ``nphotons`` per pattern.

    ``object``: a kind in OBJECT_KINDS or a (H, W) complex array. ``scan``:
    'random' (uniform inside an N/2 buffer) or 'grid' (``step`` px, default N/4);
    ``jitter`` adds Gaussian noise (px std) to positions. Returns ScanData with
    amplitude sqrt(counts) (M, N, N) float32, objectGuess, ground-truth patches
    Y (M, N, N) and metadata nphotons/intensity_scale.
    """
    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    if nphotons <= 0:
        raise ValueError(f"nphotons must be > 0, got {nphotons}")
    rng = np.random.default_rng(seed)
    if scan == "grid":
        positions, size = grid_positions(
            n_images, N, step if step is not None else N / 4, object_size
        )
    elif scan == "random":
        size = object_size if object_size is not None else (N * 6 if isinstance(object, str) else 0)
        positions = None
    else:
        raise ValueError(f"scan must be 'random' or 'grid', got {scan!r}")
    if isinstance(object, str):
        obj = make_object(object, size, rng, phase=phase)
        kind = object
    else:
        obj = np.asarray(object).astype(np.complex64)
        if obj.ndim != 2:
            raise ValueError(f"object must be a kind name or a (H, W) array, got shape {obj.shape}")
        kind = "array"
        size = min(obj.shape)
    if positions is None:
        positions = random_positions(n_images, N, size, rng)
    if jitter > 0:
        positions = np.clip(
            positions + rng.normal(scale=jitter, size=positions.shape), N / 2, size - N / 2
        )
    probe = default_probe(N) if probe is None else np.asarray(probe).astype(np.complex64)
    if probe.shape != (N, N):
        raise ValueError(f"probe must be ({N}, {N}), got {probe.shape}")
    Y = np.empty((n_images, N, N), dtype=np.complex64)
    energy = np.empty(n_images)
    for start in range(0, n_images, _CHUNK):
        sl = slice(start, start + _CHUNK)
        Y[sl] = extract(obj, positions[sl], N)
        energy[sl] = np.sum(np.abs(Y[sl] * probe) ** 2, axis=(1, 2), dtype=np.float64)
    if not np.mean(energy) > 0:
        raise ValueError("the illuminated object is zero everywhere; cannot scale to nphotons")
    scale = intensity_scale_from_data(nphotons, np.sqrt(energy)[:, None, None], axes=(1, 2))
    diffraction = np.empty((n_images, N, N), dtype=np.float32)
    for start in range(0, n_images, _CHUNK):
        sl = slice(start, start + _CHUNK)
        amp = diffract(Y[sl] * (probe * np.float32(scale)), axes=(1, 2))
        diffraction[sl] = poisson_observe(amp, rng) if poisson else amp
    return ScanData(
        xcoords=positions[:, 0],
        ycoords=positions[:, 1],
        diffraction=diffraction,
        probe=probe,
        object=obj,
        metadata={
            "nphotons": float(nphotons),
            "intensity_scale": float(scale),
            "units": "pixels",
            "provenance": f"ptychopinn.data.simulate(object={kind!r}, scan={scan!r}, seed={seed})",
            "measurement": "amplitude",
        },
        Y=Y,
    )
