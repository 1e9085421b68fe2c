"""Placement agrees with ptychopinn.data's reference operators (skipped without ptycho-data)."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn.stitch import reassemble

physics = pytest.importorskip("ptychopinn.data.physics")


def test_stitching_inverts_reference_extract_at_integer_positions() -> None:
    rng = np.random.default_rng(7)
    obj = rng.uniform(0.2, 1, (80, 80)) * np.exp(1j * rng.uniform(-3, 3, (80, 80)))
    pos = rng.integers(16, 64, size=(120, 2)).astype(np.float64)
    patches = physics.extract(obj, pos, 16)
    s = reassemble(patches, pos, crop=10)
    x0, y0 = (round(v) for v in s.origin)
    truth = obj[y0 : y0 + s.shape[0], x0 : x0 + s.shape[1]]
    np.testing.assert_allclose(s.image[s.covered], truth[s.covered], atol=1e-5)


def test_single_patch_equals_reference_translate_of_the_crop() -> None:
    rng = np.random.default_rng(8)
    patch = rng.standard_normal((1, 16, 16))
    x, y = 30.3, 27.8
    s = reassemble(patch, np.array([[x, y]]), crop=8)
    # Reference: zero canvas with the crop at integer (col0, row0), translated by the rest.
    h, w = s.shape
    canvas = np.zeros((h, w))
    canvas[:8, :8] = patch[0, 4:12, 4:12]
    shift = np.array([x - 4 - s.origin[0], y - 4 - s.origin[1]])
    moved = physics.translate(canvas, shift)
    ones = np.zeros((h, w))
    ones[:8, :8] = 1.0
    support = physics.translate(ones, shift)
    np.testing.assert_allclose(s.weights, np.where(support >= 1e-6, support, 0), atol=1e-9)
    expected = np.where(support >= 1e-6, moved / np.where(support >= 1e-6, support, 1), 0)
    np.testing.assert_allclose(s.image, expected, atol=1e-9)
