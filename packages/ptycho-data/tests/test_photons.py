"""The photon-count policy (``ptychopinn.data.photons``): given > metadata > mean counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ptychopinn.data import (
    DataContractError,
    PhotonCount,
    PhotonCountWarning,
    ScanData,
    group,
    pattern_counts,
    photon_count,
    physics,
    simulate,
)
from ptychopinn.data.probe import default_probe


def _scan(metadata: dict[str, object], m: int = 12, n: int = 8) -> ScanData:
    rng = np.random.default_rng(1)
    return ScanData(
        xcoords=rng.uniform(8, 24, m),
        ycoords=rng.uniform(8, 24, m),
        diffraction=rng.uniform(0, 3, (m, n, n)),
        probe=default_probe(n),
        metadata=metadata,
    )


def test_pattern_counts_is_sum_of_squared_amplitudes_in_chunks() -> None:
    amp = np.random.default_rng(0).uniform(0, 5, (7, 4, 4)).astype(np.float32)
    want = np.sum(amp.astype(np.float64) ** 2, axis=(1, 2))
    np.testing.assert_allclose(pattern_counts(amp, chunk=3), want, rtol=1e-12)
    ints = np.full((2, 3, 3), 60000, dtype=np.uint16)  # would overflow in uint16
    np.testing.assert_allclose(pattern_counts(ints), [9 * 60000.0**2] * 2)


def test_given_count_wins_over_metadata_even_at_1e9() -> None:
    """1e9 typed by a user is a value, not "unset" (the old default)."""
    scan = _scan({"nphotons": 1e4})
    assert photon_count(scan, 1e9) == PhotonCount(1e9, "given")
    assert photon_count(scan) == PhotonCount(1e4, "metadata")


def test_mean_counts_fallback_warns_and_names_the_source() -> None:
    scan = _scan({"source": "beamline.npz"})
    want = float(np.mean(np.sum(scan.diffraction.astype(np.float64) ** 2, axis=(1, 2))))
    with pytest.warns(PhotonCountWarning, match=r"beamline\.npz.*mean measured counts") as rec:
        got = photon_count(scan)
    assert got.source == "mean counts" and got.value == pytest.approx(want, rel=1e-12)
    assert f"{want:.6g}" in str(rec[0].message)
    assert "mean measured counts" in got.describe()


def test_precomputed_counts_are_used_not_recomputed() -> None:
    scan = _scan({})
    with pytest.warns(PhotonCountWarning):
        got = photon_count(scan, counts=np.full(scan.n_positions, 50.0))
    assert got == PhotonCount(50.0, "mean counts")


def test_no_warning_when_the_count_is_known() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        photon_count(_scan({"nphotons": 5.0}))
        photon_count(_scan({}), 5.0)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "many"])
def test_bad_counts_name_the_key(bad: object) -> None:
    with pytest.raises(DataContractError, match=r"f\.npz, key 'nphotons'.*> 0"):
        photon_count(_scan({"source": "f.npz"}), bad)  # type: ignore[arg-type]
    with pytest.raises(DataContractError, match=r"key 'metadata\.nphotons'.*> 0"):
        photon_count(_scan({"nphotons": bad}))


def test_all_zero_patterns_are_refused() -> None:
    scan = _scan({})
    zero = ScanData(scan.xcoords, scan.ycoords, np.zeros_like(scan.diffraction), scan.probe)
    with pytest.raises(DataContractError, match=r"diffraction.*counts"):
        photon_count(zero)


def test_group_uses_the_policy() -> None:
    """A scan simulated at 1e6 photons gets s0 = sqrt(1e6)/(N/2) without being told."""
    s = simulate("lines", n_images=30, N=8, nphotons=1e6, seed=2)
    assert group(s, seed=0).intensity_scale == pytest.approx(
        physics.intensity_scale_closed_form(1e6, 8)
    )
    assert group(s, seed=0, nphotons=1e4).intensity_scale == pytest.approx(1e2 / 4)
    bare = _scan({})
    with pytest.warns(PhotonCountWarning):
        g = group(bare, seed=0)
    mean = float(np.mean(pattern_counts(bare.diffraction)))
    assert g.intensity_scale == pytest.approx(np.sqrt(mean) / 4)
