"""Probe tools, ScanData validation and neighbour grouping."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn.data import (
    DataContractError,
    GroupedData,
    ScanData,
    group,
    group_for_config,
    neighbour_groups,
    physics,
    simulate,
)
from ptychopinn.data.probe import default_probe, normalise_probe


def _scan(m: int = 30, n: int = 8, with_object: bool = True, seed: int = 0) -> ScanData:
    rng = np.random.default_rng(seed)
    obj = (rng.normal(size=(48, 48)) + 1j * rng.normal(size=(48, 48))).astype(np.complex64)
    return ScanData(
        xcoords=rng.uniform(8, 40, m),
        ycoords=rng.uniform(8, 40, m),
        diffraction=rng.uniform(0, 3, (m, n, n)),
        probe=default_probe(n),
        object=obj if with_object else None,
        metadata={"nphotons": 1e4},
    )


def test_default_probe_shape_and_radius() -> None:
    p = default_probe(64)
    assert p.shape == (64, 64) and p.dtype == np.complex64
    assert not np.iscomplex(p).any()
    radius = np.sqrt((np.abs(p) > 0.5).sum() / np.pi)
    assert 0.15 * 64 < radius < 0.19 * 64
    with pytest.raises(ValueError):
        default_probe(2)


def test_defocused_probe_breaks_the_twin_symmetry() -> None:
    flat, curved = default_probe(64), default_probe(64, defocus=1.0)
    np.testing.assert_allclose(np.abs(curved), np.abs(flat), atol=1e-6)
    t = np.arange(64) - 31.5
    r2 = (t[:, None] ** 2 + t[None, :] ** 2) / 16**2
    inside = np.abs(flat) > 0.5
    np.testing.assert_allclose(np.angle(curved * np.exp(-1j * np.pi * r2))[inside], 0.0, atol=1e-5)
    # the conjugate twin of the field is no longer the field itself
    assert np.abs(np.conj(curved[::-1, ::-1]) - curved).max() > 0.5
    assert np.abs(np.conj(flat[::-1, ::-1]) - flat).max() < 1e-6
    with pytest.raises(ValueError, match="defocus"):
        default_probe(64, defocus=float("nan"))


def test_normalise_probe() -> None:
    p = default_probe(32) * 7
    q = normalise_probe(p, probe_scale=4.0)
    assert np.mean(np.abs(q * physics.probe_mask(32))) == pytest.approx(0.25, rel=1e-5)
    with pytest.raises(ValueError):
        normalise_probe(np.zeros((8, 8)))
    with pytest.raises(ValueError):
        normalise_probe(np.ones((8, 4)))
    with pytest.raises(ValueError):
        normalise_probe(p, probe_scale=0)


def test_scandata_validation() -> None:
    s = _scan()
    assert s.diffraction.dtype == np.float32 and s.xcoords.dtype == np.float64
    assert s.scan_index.dtype == np.int64 and not s.scan_index.any()
    np.testing.assert_array_equal(s.xcoords_start, s.xcoords)
    assert s.N == 8 and s.n_positions == 30
    sub = s.subset([3, 1])
    np.testing.assert_array_equal(sub.diffraction, s.diffraction[[3, 1]])
    good = dict(xcoords=[1.0], ycoords=[2.0], diffraction=np.ones((1, 4, 4)), probe=np.ones((4, 4)))
    ScanData(**good)
    bad_cases = [
        {"xcoords": [1.0, 2.0]},
        {"diffraction": np.ones((1, 4, 5))},
        {"diffraction": -np.ones((1, 4, 4))},
        {"diffraction": np.ones((1, 4, 4)) * np.nan},
        {"diffraction": np.ones((1, 4, 4)) + 0j},
        {"diffraction": np.ones((4, 4))},
        {"probe": np.ones((8, 8))},
        {"probe": np.full((4, 4), np.inf)},
        {"scan_index": [0.5]},
        {"object": np.ones(3)},
        {"Y": np.ones((2, 4, 4))},
        {"xcoords": np.array(["a"])},
        {"xcoords_start": [np.nan]},
        {"metadata": "nope"},
    ]
    for change in bad_cases:
        with pytest.raises(DataContractError) as info:
            ScanData(**{**good, **change})
        assert "expected" in str(info.value) and "found" in str(info.value)


def test_group_members_row_major_and_offsets() -> None:
    s = _scan(m=40)
    g = group(s, gridsize=2, neighbor_count=4, seed=3, calibrate_probe=True)
    assert len(g) == 40 and g.X.shape == (40, 8, 8, 4) and g.gridsize == 2 and g.N == 8
    xs = g.coords_nn[:, 0, 0, :]
    ys = g.coords_nn[:, 0, 1, :]
    # rows sorted by y: both members of row 0 are above both of row 1; each row sorted by x
    assert np.all(np.maximum(ys[:, 0], ys[:, 1]) <= np.minimum(ys[:, 2], ys[:, 3]) + 1e-5)
    assert np.all(xs[:, 0] <= xs[:, 1]) and np.all(xs[:, 2] <= xs[:, 3])
    np.testing.assert_allclose(g.coords_offsets[..., 0], g.coords_nn.mean(axis=3), rtol=1e-6)
    np.testing.assert_allclose(g.coords_relative, -(g.coords_nn - g.coords_offsets), atol=1e-5)
    # seed is a member and neighbours are among its 4 nearest
    tree_d = np.hypot(s.xcoords[:, None] - s.xcoords[None], s.ycoords[:, None] - s.ycoords[None])
    for b in range(40):
        assert b in g.nn_indices[b]
        near = set(np.argsort(tree_d[b])[:5])
        assert set(g.nn_indices[b]) <= near
    # X normalisation and raw diffraction
    assert np.mean(np.sum(g.X.astype(np.float64) ** 2, axis=(1, 2))) == pytest.approx(
        16.0, rel=1e-5
    )
    np.testing.assert_allclose(g.X, g.diffraction * g.norm_factor, rtol=1e-6)
    np.testing.assert_array_equal(g.diffraction[5, :, :, 2], s.diffraction[g.nn_indices[5, 2]])
    # ground truth at each member's own position (not mirrored)
    b, c = 7, 1
    member = g.nn_indices[b, c]
    want = physics.extract(s.object, np.array([[s.xcoords[member], s.ycoords[member]]]), 8)[0]
    np.testing.assert_allclose(g.Y[b, :, :, c], want, atol=1e-5)
    assert g.intensity_scale == pytest.approx(np.sqrt(1e4) / 4)
    # the probe is calibrated against the known object: mean Σ|P·Y|² = (N/2)²
    energy = np.mean(np.sum(np.abs(g.probe[None, :, :, None] * g.Y) ** 2, axis=(1, 2)))
    assert energy == pytest.approx(16.0, rel=1e-4)


def test_group_probe_normalisation_without_calibration() -> None:
    s = simulate("lines", n_images=40, N=8, nphotons=1e4, seed=2)
    g = group(s, gridsize=2, seed=0)
    assert np.mean(np.abs(g.probe * physics.probe_mask(8))) == pytest.approx(0.25, rel=1e-5)
    real = ScanData(s.xcoords, s.ycoords, s.diffraction, s.probe)  # no object: plain normalisation
    np.testing.assert_allclose(group(real, gridsize=2, seed=0).probe, g.probe, rtol=1e-6)


def test_group_seeded_and_options() -> None:
    s = _scan(m=50, with_object=False)
    a = group(s, gridsize=2, n_groups=20, seed=1)
    b = group(s, gridsize=2, n_groups=20, seed=1)
    np.testing.assert_array_equal(a.nn_indices, b.nn_indices)
    assert len(a) == 20 and a.Y is None
    assert len(np.unique(a.nn_indices[:, :].ravel())) > 4
    c = group(s, gridsize=2, n_groups=20, seed=2)
    assert not np.array_equal(a.nn_indices, c.nn_indices)
    g1 = group(s, gridsize=1, n_groups=10, seed=0, intensity_scale=3.0)
    assert g1.X.shape == (10, 8, 8, 1) and g1.intensity_scale == 3.0
    assert np.all(g1.coords_relative == 0)
    assert len(group(s, gridsize=1, n_groups=500)) == 50
    sub = group(s, gridsize=1, n_subsample=12, nphotons=100.0)
    assert len(sub) == 12 and sub.intensity_scale == pytest.approx(10 / 4)
    s.Y = np.ones((50, 8, 8), dtype=np.complex64)
    assert group(s, gridsize=1).Y.shape == (50, 8, 8, 1)


def test_group_oversampling_distinct_per_seed() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 100, 30), rng.uniform(0, 100, 30)
    idx = neighbour_groups(x, y, gridsize=2, n_groups=100, neighbor_count=5, seed=0)
    assert idx.shape == (100, 4)
    from collections import Counter

    counts = Counter(tuple(sorted(r)) for r in idx.tolist())
    # distinct within each seed, so one member set can come from at most C different seeds
    assert max(counts.values()) <= 4
    with pytest.raises(ValueError, match="exceeds"):
        neighbour_groups(x, y, gridsize=2, n_groups=10_000, neighbor_count=3, seed=0)
    with pytest.raises(ValueError, match="combinations"):
        neighbour_groups(np.arange(40.0), np.zeros(40), gridsize=3, n_groups=100, neighbor_count=30)


def test_group_duplicate_positions_exclude_seed() -> None:
    x = np.zeros(6)
    y = np.zeros(6)
    idx = neighbour_groups(x, y, gridsize=2, neighbor_count=3, seed=0)
    assert all(len(set(r)) == 4 for r in idx.tolist())


def test_group_errors() -> None:
    s = _scan(m=10)
    with pytest.raises(ValueError, match="neighbor_count"):
        group(s, gridsize=2, neighbor_count=2)
    with pytest.raises(ValueError, match="at least"):
        group(s, gridsize=4)
    with pytest.raises(ValueError, match="neighbor_count"):
        group(s, gridsize=2, neighbor_count=20)
    with pytest.raises(ValueError):
        group(s, gridsize=0)
    with pytest.raises(ValueError):
        group(s, n_groups=0)
    with pytest.raises(ValueError):
        group(s, n_subsample=0)
    zero = ScanData(
        xcoords=[1.0], ycoords=[1.0], diffraction=np.zeros((1, 4, 4)), probe=default_probe(4)
    )
    with pytest.raises(ValueError, match="zero"):
        group(zero)


def test_grouped_subset_batches_split() -> None:
    g = group(_scan(m=37), gridsize=2, seed=0)
    order = np.concatenate([bt.nn_indices for bt in g.batches(8, shuffle=True, seed=5)])
    again = np.concatenate([bt.nn_indices for bt in g.batches(8, shuffle=True, seed=5)])
    np.testing.assert_array_equal(order, again)
    np.testing.assert_array_equal(order, g.nn_indices[np.random.default_rng(5).permutation(37)])
    sizes = [len(bt) for bt in g.batches(8, shuffle=False)]
    assert sizes == [8, 8, 8, 8, 5]
    np.testing.assert_array_equal(next(iter(g.batches(4, shuffle=False))).X, g.X[:4])
    with pytest.raises(ValueError):
        next(iter(g.batches(0)))
    train, val = g.split(0.2, seed=1)
    assert len(train) + len(val) == 37 and len(val) == 7
    both = np.concatenate([train.nn_indices, val.nn_indices])
    np.testing.assert_array_equal(np.unique(both, axis=0), np.unique(g.nn_indices, axis=0))
    assert sorted(map(tuple, both.tolist())) == sorted(map(tuple, g.nn_indices.tolist()))
    with pytest.raises(ValueError):
        g.split(1.0)
    assert len(g.subset(slice(0, 3))) == 3
    with pytest.raises(ValueError, match="coords_nn"):
        GroupedData(**{**g.__dict__, "coords_nn": g.coords_nn[:, :, :, :2]})
    with pytest.raises(ValueError, match="X"):
        GroupedData(**{**g.__dict__, "X": g.X[:, :, :4]})


def test_group_for_config_maps_the_configuration() -> None:
    from ptychopinn.config import ModelConfig, TrainingConfig

    s = simulate("lines", n_images=40, N=64, nphotons=1e6, seed=4)
    training = TrainingConfig(
        model=ModelConfig(gridsize=2, probe_scale=2.0), n_groups=12, neighbor_count=5, seed=7
    )
    got = group_for_config(s, training.model, training, nphotons=1e6)
    want = group(
        s, gridsize=2, n_groups=12, neighbor_count=5, seed=7, probe_scale=2.0, nphotons=1e6
    )
    np.testing.assert_array_equal(got.nn_indices, want.nn_indices)
    np.testing.assert_array_equal(got.probe, want.probe)
    assert got.intensity_scale == want.intensity_scale
    other = group_for_config(s, training.model, training, nphotons=1e6, seed=8)
    assert not np.array_equal(other.nn_indices, got.nn_indices)


def test_whole_scan_gridsize_1_shares_memory_and_matches_a_copying_subset() -> None:
    """Every point once, in order: diffraction and Y are views of the scan (no second copy
    of a large scan); a subset still copies. Values are the same either way."""
    scan = simulate("lines", n_images=40, N=16, object_size=48, seed=1)
    whole = group(scan, gridsize=1)
    assert np.shares_memory(whole.diffraction, scan.diffraction)
    assert np.shares_memory(whole.Y, scan.Y)
    part = group(scan, gridsize=1, n_groups=39, seed=0)
    assert not np.shares_memory(part.diffraction, scan.diffraction)
    rows = part.nn_indices[:, 0]
    np.testing.assert_array_equal(part.diffraction, whole.diffraction[rows])
    np.testing.assert_array_equal(part.Y, whole.Y[rows])
    energy = np.sum(np.square(scan.diffraction.astype(np.float64)), axis=(1, 2))
    factor = np.sqrt((16 / 2) ** 2 / energy.mean())
    np.testing.assert_allclose(whole.norm_factor, factor, rtol=1e-12)
    np.testing.assert_allclose(whole.X, scan.diffraction[..., None] * np.float32(factor), rtol=1e-6)
