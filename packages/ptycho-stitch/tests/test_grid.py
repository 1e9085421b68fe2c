"""Grid stitching (upstream image/stitching.py semantics)."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn.stitch import StitchError, stitch_grid
from ptychopinn.stitch.grid import grid_border


def raster_patches(obj: np.ndarray, n: int, step: int, side: int, start: int) -> np.ndarray:
    """Patches (side*side, n, n) centred every ``step`` px from ``start``, row-major."""
    out = []
    for r in range(side):
        for c in range(side):
            y, x = start + r * step, start + c * step
            out.append(obj[y - n // 2 : y - n // 2 + n, x - n // 2 : x - n // 2 + n])
    return np.stack(out)


@pytest.mark.parametrize("outer_offset", [8, 12, 16])
def test_tiles_recover_a_raster_scanned_object(outer_offset: int) -> None:
    rng = np.random.default_rng(0)
    obj = rng.random((120, 120)) + 1j * rng.random((120, 120))
    n, t, side = 16, outer_offset // 2, 4
    patches = raster_patches(obj, n, t, side, start=40)
    out = stitch_grid(patches[..., None], outer_offset)
    assert out.shape == (1, side * t, side * t)
    left, _ = grid_border(n, outer_offset)
    # tile 0 starts at patch pixel `left`, i.e. object pixel start - n//2 + left.
    o = 40 - n // 2 + left
    np.testing.assert_array_equal(out[0], obj[o : o + side * t, o : o + side * t])


def test_borders_match_upstream_rounding() -> None:
    assert grid_border(64, 16) == (28, 28)
    assert grid_border(64, 10) == (30, 29)  # (64 - 5) / 2 = 29.5: ceil left, floor right
    patches = np.arange(4 * 64 * 64, dtype=float).reshape(4, 64, 64)
    out = stitch_grid(patches, 10)
    assert out.shape == (1, 10, 10)
    np.testing.assert_array_equal(out[0, :5, :5], patches[0, 30:35, 30:35])


def test_several_images_and_a_single_patch() -> None:
    patches = np.ones((2 * 9, 8, 8))
    patches[9:] = 2
    out = stitch_grid(patches, 8, n_images=2)
    assert out.shape == (2, 12, 12)
    assert np.all(out[0] == 1) and np.all(out[1] == 2)
    assert stitch_grid(np.ones((1, 8, 8)), 16).shape == (1, 8, 8)  # keeps all of N


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.ones((5, 8, 8)), 8), "square raster"),
        ((np.ones((4, 8, 8)), 0), "positive integer"),
        ((np.ones((4, 8, 8)), 2.0), "positive integer"),
        ((np.ones((4, 8, 8)), 40), "keeps no pixels"),
        ((np.ones((4, 8, 8, 4)), 8), "channels"),
    ],
)
def test_errors(args: tuple, match: str) -> None:
    with pytest.raises(StitchError, match=match):
        stitch_grid(*args)
    with pytest.raises(StitchError, match="split evenly"):
        stitch_grid(np.ones((5, 8, 8)), 8, n_images=2)
    with pytest.raises(StitchError, match="n_images"):
        stitch_grid(np.ones((4, 8, 8)), 8, n_images=0)
