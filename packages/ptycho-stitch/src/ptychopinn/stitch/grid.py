"""Grid stitching of patches on a regular raster (upstream ``image/stitching.py`` semantics)."""

from __future__ import annotations

import math

import numpy as np

from ptychopinn.stitch.canvas import as_patch_stack
from ptychopinn.stitch.errors import StitchError


def grid_border(n: int, outer_offset: int) -> tuple[int, int]:
    """(left, right) pixels clipped from each side of an N-pixel patch: (N - outer_offset/2)/2."""
    border = (n - outer_offset / 2) / 2
    return math.ceil(border), math.floor(border)


def stitch_grid(patches: np.ndarray, outer_offset: int, n_images: int = 1) -> np.ndarray:
    """Tile raster-ordered patches (n_images*s*s, N, N[, 1]) -> (n_images, s*t, s*t), t = outer_offset/2.

    Each patch keeps its central ``outer_offset/2`` x ``outer_offset/2`` pixels (left
    border ceil((N - outer_offset/2)/2), right border floor of it, as upstream) and the
    kept tiles are laid side by side; patches are row-major within each image. Works for
    any gridsize, including 1: only the raster spacing matters.
    """
    stack = as_patch_stack(patches)
    if isinstance(outer_offset, bool) or not isinstance(outer_offset, int | np.integer):
        raise StitchError(f"outer_offset must be a positive integer, found {outer_offset!r}")
    if outer_offset <= 0:
        raise StitchError(f"outer_offset must be a positive integer, found {outer_offset!r}")
    if isinstance(n_images, bool) or not isinstance(n_images, int | np.integer) or n_images < 1:
        raise StitchError(f"n_images must be a positive integer, found {n_images!r}")
    b, n = stack.shape[0], stack.shape[1]
    if b % n_images:
        raise StitchError(f"{b} patches cannot be split evenly into {n_images} images")
    per_image = b // n_images
    side = math.isqrt(per_image)
    if side * side != per_image or side == 0:
        raise StitchError(
            f"each image needs a square raster of patches, found {per_image} patches per image"
        )
    left, right = grid_border(n, int(outer_offset))
    if left < 0 or n - right <= left:
        raise StitchError(
            f"outer_offset={outer_offset} keeps no pixels of N={n} patches "
            f"(kept width (N - 2*border) must be in 1..N)"
        )
    tiles = stack[:, left : n - right, left : n - right]
    t = tiles.shape[1]
    out = tiles.reshape(n_images, side, side, t, t).transpose(0, 1, 3, 2, 4)
    return np.ascontiguousarray(out.reshape(n_images, side * t, side * t))
