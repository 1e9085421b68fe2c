"""Seeded simulation and its round trip through NPZ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptychopinn.data import OBJECT_KINDS, group, load_npz, make_object, physics, save_npz, simulate
from ptychopinn.data.simulation import grid_positions


@pytest.mark.parametrize("kind", OBJECT_KINDS)
def test_objects_in_range_and_seeded(kind: str) -> None:
    a = make_object(kind, 64, seed=1)
    assert a.shape == (64, 64) and a.dtype == np.complex64
    amp = np.abs(a)
    assert amp.min() >= 0 and amp.max() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_array_equal(a, make_object(kind, 64, seed=1))
    flat = make_object(kind, 64, seed=1, phase=False)
    assert np.all(np.angle(flat) == 0)


def test_make_object_errors() -> None:
    with pytest.raises(ValueError):
        make_object("stars", 64)
    with pytest.raises(ValueError):
        make_object("lines", 4)


def test_simulate_physics_and_seed() -> None:
    s = simulate("grf", n_images=40, N=16, nphotons=1e5, seed=3)
    assert s.diffraction.shape == (40, 16, 16) and s.Y.shape == (40, 16, 16)
    assert s.metadata["nphotons"] == 1e5
    assert np.all(s.xcoords >= 8) and np.all(s.xcoords <= s.object.shape[1] - 8)
    counts = s.diffraction.astype(np.float64) ** 2
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)
    assert counts.sum(axis=(1, 2)).mean() == pytest.approx(1e5, rel=0.02)
    # noiseless forward model matches the reference operators exactly
    clean = simulate("grf", n_images=40, N=16, nphotons=1e5, seed=3, poisson=False)
    np.testing.assert_array_equal(clean.Y, s.Y)
    pos = np.column_stack([clean.xcoords, clean.ycoords])
    Y = physics.extract(clean.object, pos, 16)
    np.testing.assert_allclose(clean.Y, Y, atol=1e-6)
    amp = physics.diffract((Y * clean.probe)[..., None])[..., 0] * clean.metadata["intensity_scale"]
    np.testing.assert_allclose(clean.diffraction, amp, rtol=1e-4, atol=1e-3)
    again = simulate("grf", n_images=40, N=16, nphotons=1e5, seed=3)
    np.testing.assert_array_equal(again.diffraction, s.diffraction)
    other = simulate("grf", n_images=40, N=16, nphotons=1e5, seed=4)
    assert not np.array_equal(other.diffraction, s.diffraction)


def test_simulate_grid_jitter_array_and_errors() -> None:
    g = simulate("diagonals", n_images=9, N=16, scan="grid", step=4, seed=0)
    np.testing.assert_allclose(np.diff(np.unique(g.xcoords)), 4)
    assert len(np.unique(g.ycoords)) == 3
    j = simulate("points", n_images=9, N=16, scan="grid", step=4, jitter=0.5, seed=0)
    assert not np.allclose(j.xcoords, g.xcoords)
    arr = simulate(np.ones((40, 40)), n_images=5, N=16, seed=0, probe=np.ones((16, 16)))
    assert arr.object.shape == (40, 40)
    for bad in (
        {"n_images": 0},
        {"nphotons": 0},
        {"scan": "spiral"},
        {"probe": np.ones((8, 8))},
        {"object": np.ones(5)},
        {"object": np.zeros((40, 40))},
    ):
        with pytest.raises(ValueError):
            simulate(**{"n_images": 4, "N": 16, **bad})
    with pytest.raises(ValueError):
        grid_positions(100, 16, 4, size=20)
    with pytest.raises(ValueError):
        simulate("lines", n_images=4, N=16, object_size=12)


def test_simulated_npz_round_trip_and_group(tmp_path: Path) -> None:
    s = simulate("lines", n_images=30, N=16, nphotons=1e6, seed=0)
    path = save_npz(s, tmp_path / "sim")
    assert path.name == "sim.npz"
    t = load_npz(path)
    for name in (
        "diffraction",
        "xcoords",
        "ycoords",
        "xcoords_start",
        "ycoords_start",
        "scan_index",
        "probe",
        "object",
        "Y",
    ):
        a, b = getattr(s, name), getattr(t, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert {k: v for k, v in t.metadata.items() if k != "source"} == s.metadata
    g = group(t, gridsize=2, seed=0)
    assert g.intensity_scale == pytest.approx(np.sqrt(1e6) / 8)
