"""Neighbour grouping and normalisation into channels-last GroupedData (METHOD.md §2, §4)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, fields
from itertools import combinations
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from ptychopinn.data.photons import pattern_counts, photon_count
from ptychopinn.data.physics import extract, intensity_scale_closed_form
from ptychopinn.data.probe import normalise_probe
from ptychopinn.data.scan import ScanData

__all__ = ["GroupedData", "group", "group_for_config", "neighbour_groups"]

_MAX_COMBINATIONS = 100_000


@dataclass
class GroupedData:
    """Grouped, normalised, channels-last arrays for training and inference (B groups, C members)."""

    X: np.ndarray  # (B, N, N, C) float32 normalised amplitude
    diffraction: np.ndarray  # (B, N, N, C) float32 raw amplitude
    Y: np.ndarray | None  # (B, N, N, C) complex64 ground-truth patches
    coords_nn: np.ndarray  # (B, 1, 2, C) float32 absolute [x, y]
    coords_offsets: np.ndarray  # (B, 1, 2, 1) float32 group centre
    coords_relative: np.ndarray  # (B, 1, 2, C) float32 = -(coords_nn - coords_offsets)
    nn_indices: np.ndarray  # (B, C) int64 scan indices
    probe: np.ndarray  # (N, N) complex64 normalised probe
    norm_factor: float  # X = diffraction * norm_factor
    intensity_scale: float  # s0
    object: np.ndarray | None = None  # (H, W) complex64

    def __post_init__(self) -> None:
        """Check that every per-group array agrees on B, N and C."""
        b, n, n2, c = self.X.shape
        expected = {
            "diffraction": (b, n, n, c),
            "coords_nn": (b, 1, 2, c),
            "coords_offsets": (b, 1, 2, 1),
            "coords_relative": (b, 1, 2, c),
            "nn_indices": (b, c),
            "probe": (n, n),
        }
        if self.Y is not None:
            expected["Y"] = (b, n, n, c)
        if n != n2:
            raise ValueError(f"GroupedData.X must be (B, N, N, C), got {self.X.shape}")
        for name, shape in expected.items():
            got = getattr(self, name).shape
            if got != shape:
                raise ValueError(f"GroupedData.{name} must have shape {shape}, got {got}")

    def __len__(self) -> int:
        """Number of groups B."""
        return int(self.X.shape[0])

    @property
    def N(self) -> int:
        """Patch side N."""
        return int(self.X.shape[1])

    @property
    def gridsize(self) -> int:
        """Group side: C = gridsize²."""
        return math.isqrt(self.X.shape[3])

    def subset(self, indices: np.ndarray | slice) -> GroupedData:
        """Return the groups ``indices`` (K,) (or a slice) as a new GroupedData."""
        idx = indices if isinstance(indices, slice) else np.asarray(indices, dtype=np.int64)
        per_group = {
            "X",
            "diffraction",
            "Y",
            "coords_nn",
            "coords_offsets",
            "coords_relative",
            "nn_indices",
        }
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[idx] if f.name in per_group and value is not None else value
        return GroupedData(**values)

    def batch_order(self, shuffle: bool = True, seed: int = 0) -> np.ndarray:
        """Return the group order (B,) used by :meth:`batches` (a seeded permutation if shuffled)."""
        if shuffle:
            return np.random.default_rng(seed).permutation(len(self))
        return np.arange(len(self))

    def batches(
        self, batch_size: int, shuffle: bool = True, seed: int = 0
    ) -> Iterator[GroupedData]:
        """Yield consecutive batches of ``batch_size`` groups (the last may be smaller), seeded order."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = self.batch_order(shuffle, seed)
        for start in range(0, len(order), batch_size):
            yield self.subset(order[start : start + batch_size])

    def split(self, fraction: float, seed: int = 0) -> tuple[GroupedData, GroupedData]:
        """Split into (rest, held-out) with round(fraction·B) held-out groups; both keep index order."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"fraction must be in [0, 1), got {fraction}")
        n_held = round(fraction * len(self))
        perm = np.random.default_rng(seed).permutation(len(self))
        return self.subset(np.sort(perm[n_held:])), self.subset(np.sort(perm[:n_held]))


def _order_members(members: np.ndarray, x: np.ndarray, y: np.ndarray, gridsize: int) -> np.ndarray:
    """Order each group's members (B, C) row-major: sort by y, cut into rows, sort each row by x."""
    b, c = members.shape
    by_y = np.take_along_axis(members, np.argsort(y[members], axis=1, kind="stable"), axis=1)
    rows = by_y.reshape(b, gridsize, gridsize)
    by_x = np.take_along_axis(rows, np.argsort(x[rows], axis=2, kind="stable"), axis=2)
    return by_x.reshape(b, c)


def neighbour_groups(
    x: np.ndarray,
    y: np.ndarray,
    gridsize: int = 1,
    n_groups: int | None = None,
    neighbor_count: int = 4,
    seed: int | np.random.Generator = 0,
) -> np.ndarray:
    """Return member indices (B, C) of neighbour groups for positions x, y (M,) px.

    Seeds are drawn without replacement (all points when n_groups is None or
    >= M); each group is its seed plus C-1 of its ``neighbor_count`` nearest
    neighbours (KD-tree), ordered row-major. n_groups > M with C > 1
    oversamples with distinct member combinations per seed.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    m = x.shape[0]
    c = gridsize * gridsize
    rng = np.random.default_rng(seed)
    if gridsize < 1:
        raise ValueError(f"gridsize must be >= 1, got {gridsize}")
    if n_groups is not None and n_groups < 1:
        raise ValueError(f"n_groups must be >= 1 or None, got {n_groups}")
    if m < c:
        raise ValueError(f"gridsize {gridsize} needs at least {c} scan points, got {m}")
    if gridsize == 1:
        if n_groups is None or n_groups >= m:
            return np.arange(m, dtype=np.int64)[:, None]
        return np.sort(rng.choice(m, size=n_groups, replace=False)).astype(np.int64)[:, None]
    k = neighbor_count
    if k < c - 1:
        raise ValueError(
            f"neighbor_count={k} is smaller than gridsize**2 - 1 = {c - 1}: cannot form groups"
        )
    if k > m - 1:
        raise ValueError(f"neighbor_count={k} needs at least {k + 1} scan points, got {m}")
    oversample = n_groups is not None and n_groups > m
    if n_groups is None or n_groups >= m:
        seeds = np.arange(m)
    else:
        seeds = np.sort(rng.choice(m, size=n_groups, replace=False))
    tree = cKDTree(np.column_stack([x, y]))
    _, idx = tree.query(np.column_stack([x[seeds], y[seeds]]), k=k + 1)
    # drop the seed itself (it need not come first when positions coincide)
    not_self = idx != seeds[:, None]
    keep = np.argsort(~not_self, axis=1, kind="stable")[:, :k]
    neigh = np.take_along_axis(idx, keep, axis=1)  # (S, K)
    if not oversample:
        pick = np.argsort(rng.random(neigh.shape), axis=1)[:, : c - 1]
        chosen = np.take_along_axis(neigh, pick, axis=1)
        members = np.concatenate([seeds[:, None], chosen], axis=1)
    else:
        n_comb = math.comb(k, c - 1)
        if n_comb > _MAX_COMBINATIONS:
            raise ValueError(
                f"oversampling with neighbor_count={k}, gridsize={gridsize} enumerates {n_comb} "
                "combinations per point; lower neighbor_count"
            )
        if n_groups > m * n_comb:
            raise ValueError(
                f"n_groups={n_groups} exceeds the {m * n_comb} distinct groups available "
                f"({m} points x {n_comb} combinations of {k} neighbours)"
            )
        combos = np.array(list(combinations(range(k), c - 1)), dtype=np.int64)  # (n_comb, C-1)
        reps = math.ceil(n_groups / m)
        per_seed = np.argsort(rng.random((m, n_comb)), axis=1)[:, :reps]  # (M, reps)
        flat = rng.choice(m * reps, size=n_groups, replace=False)
        seed_of, rep_of = np.sort(flat) // reps, np.sort(flat) % reps
        chosen = np.take_along_axis(neigh[seed_of], combos[per_seed[seed_of, rep_of]], axis=1)
        members = np.concatenate([seed_of[:, None], chosen], axis=1)
    return _order_members(members.astype(np.int64), x, y, gridsize)


def group(
    scan: ScanData,
    gridsize: int = 1,
    n_groups: int | None = None,
    neighbor_count: int = 4,
    seed: int = 0,
    n_subsample: int | None = None,
    probe_scale: float = 4.0,
    nphotons: float | None = None,
    intensity_scale: float | None = None,
    calibrate_probe: bool = False,
) -> GroupedData:
    """Group a scan into GroupedData (B, N, N, C) per METHOD.md §4.

    ``n_subsample`` first keeps a seeded random subset of that many points.
    X = diffraction · norm_factor with mean_{B,C} Σ_HW X² = (N/2)². The probe is
    normalised with ``probe_scale``. ``intensity_scale`` defaults to
    sqrt(nphotons)/(N/2) with the photon count of :func:`~ptychopinn.data.photons.photon_count`
    (``nphotons`` when given, else ``scan.metadata["nphotons"]``, else the mean
    counts per pattern, with a ``PhotonCountWarning``). Ground-truth patches are taken at each member's own position.

    ``calibrate_probe`` (opt-in): when the true object is known (simulation), rescale the
    normalised probe so that the noise-free forward model of the true patches carries
    the same mean energy as X, mean Σ|P·Y|² = (N/2)². Then s0·diffract(P·Y) reproduces
    the measured counts at the closed-form s0, which is METHOD §4's dataset-derived
    intensity scale expressed through the probe. Without it a dark object (the
    simulated ``lines`` have mean |O|² ≈ 0.06) would need amplitudes above the
    sigmoid's range until ``log_scale`` had grown by log 2, and short training runs
    start far from the data. Off by default until it is shown to speed up training
    (it did not rescue the short demo runs). Real data (no object) is never calibrated.
    """
    rng = np.random.default_rng(seed)
    base = np.arange(scan.n_positions)
    if n_subsample is not None:
        if n_subsample < 1:
            raise ValueError(f"n_subsample must be >= 1, got {n_subsample}")
        if n_subsample < scan.n_positions:
            base = np.sort(rng.choice(scan.n_positions, size=n_subsample, replace=False))
    x, y = scan.xcoords[base], scan.ycoords[base]
    members = base[neighbour_groups(x, y, gridsize, n_groups, neighbor_count, rng)]  # (B, C)
    n = scan.N
    b, c = members.shape
    energy = pattern_counts(scan.diffraction)  # (M,)
    mean_energy = float(np.mean(energy[members]))
    if not np.isfinite(mean_energy) or mean_energy <= 0:
        raise ValueError("the selected diffraction patterns are all zero; cannot normalise")
    factor = math.sqrt((n / 2) ** 2 / mean_energy)
    # Every point once, in order (gridsize 1 on a whole scan): views, not copies, of the
    # scan's arrays, so memory for large scans does not double (GroupedData never writes them).
    identity = c == 1 and b == scan.n_positions and bool(np.all(members[:, 0] == np.arange(b)))

    def take(a: np.ndarray) -> np.ndarray:
        return a[:, None] if identity else a[members]

    diffraction = np.moveaxis(take(scan.diffraction), 1, 3)  # (B, N, N, C)
    X = np.multiply(diffraction, np.float32(factor), dtype=np.float32)  # no extra copy
    xy = np.stack([scan.xcoords[members], scan.ycoords[members]], axis=1)[:, None]  # (B,1,2,C)
    offsets = xy.mean(axis=3, keepdims=True)
    relative = -(xy - offsets)
    if scan.Y is not None:
        Y: np.ndarray | None = np.moveaxis(take(scan.Y), 1, 3)
    elif scan.object is not None:
        pos = np.stack([scan.xcoords[members].ravel(), scan.ycoords[members].ravel()], axis=1)
        Y = np.moveaxis(extract(scan.object, pos, n).reshape(b, c, n, n), 1, 3)
    else:
        Y = None
    if intensity_scale is None:
        intensity_scale = intensity_scale_closed_form(photon_count(scan, nphotons, energy).value, n)
    probe = normalise_probe(scan.probe, probe_scale)
    if calibrate_probe and Y is not None:
        model_energy = float(
            np.mean(np.sum(np.abs(probe[None, :, :, None] * Y) ** 2, axis=(1, 2), dtype=np.float64))
        )
        if np.isfinite(model_energy) and model_energy > 0:
            probe = (probe * np.float32(math.sqrt((n / 2) ** 2 / model_energy))).astype(
                np.complex64
            )
    return GroupedData(
        X=X,
        diffraction=diffraction,
        Y=Y,
        coords_nn=xy.astype(np.float32),
        coords_offsets=offsets.astype(np.float32),
        coords_relative=relative.astype(np.float32),
        nn_indices=members.astype(np.int64),
        probe=probe,
        norm_factor=factor,
        intensity_scale=float(intensity_scale),
        object=scan.object,
    )


def group_for_config(
    scan: ScanData,
    model: Any,
    sampling: Any,
    nphotons: float | None = None,
    seed: int | None = None,
    intensity_scale: float | None = None,
) -> GroupedData:
    """Group ``scan`` as configured: ``model`` a ModelConfig, ``sampling`` a Training/InferenceConfig.

    One place that maps the configuration onto :func:`group` (gridsize and probe_scale
    from the model; n_groups, neighbor_count, n_subsample and seed from the sampling
    config), shared by both backends and the application. ``nphotons`` and
    ``intensity_scale`` go to :func:`group` (inference passes the trained model's s0,
    so no photon count is needed there).
    """
    return group(
        scan,
        gridsize=model.gridsize,
        n_groups=sampling.n_groups,
        neighbor_count=sampling.neighbor_count,
        seed=sampling.seed if seed is None else seed,
        n_subsample=sampling.n_subsample,
        probe_scale=model.probe_scale,
        nphotons=nphotons,
        intensity_scale=intensity_scale,
    )
