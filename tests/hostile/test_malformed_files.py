"""Hostile input files: each must give one line naming file, key, expected and found
(exit 2), or be read correctly; never a silently wrong answer."""

from __future__ import annotations

import numpy as np
import pytest


def _scan_arrays(m: int = 12, n: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    """The keys of a minimal upstream NPZ: amplitude (M, N, N), probe, positions."""
    rng = np.random.default_rng(seed)
    return {
        "diffraction": rng.uniform(0.5, 2.0, (m, n, n)).astype(np.float32),
        "probeGuess": np.ones((n, n), np.complex64),
        "xcoords": rng.uniform(20, 40, m),
        "ycoords": rng.uniform(20, 40, m),
    }


# ---------------------------------------------------------------- measurement key (#17.1)


def test_convert_honours_the_files_measurement_key(inproc, tmp_path):
    from ptychopinn.data import load

    arrays = _scan_arrays()
    intensity = arrays["diffraction"].astype(np.float64) ** 2
    np.savez(
        tmp_path / "counts.npz", **{**arrays, "diffraction": intensity}, measurement="intensity"
    )
    result = inproc("convert", "counts.npz", "amp.npz")
    assert result.returncode == 0, result.stderr
    converted = load(tmp_path / "amp.npz").diffraction
    # train reads the source through the same loader: both commands agree on the file.
    np.testing.assert_allclose(converted, load(tmp_path / "counts.npz").diffraction)
    np.testing.assert_allclose(converted, arrays["diffraction"], rtol=1e-6)


def test_convert_explicit_measurement_against_the_files_key_is_refused(inproc, tmp_path):
    arrays = _scan_arrays()
    np.savez(tmp_path / "counts.npz", **arrays, measurement="intensity")
    line = inproc("convert", "counts.npz", "amp.npz", "--measurement", "amplitude").one_error_line()
    assert "counts.npz" in line and "'measurement'" in line
    assert "'amplitude'" in line and "'intensity'" in line
    assert not (tmp_path / "amp.npz").exists()


def test_convert_explicit_measurement_for_a_file_that_says_nothing(inproc, tmp_path):
    from ptychopinn.data import load

    arrays = _scan_arrays()
    np.savez(tmp_path / "counts.npz", **{**arrays, "diffraction": arrays["diffraction"] ** 2})
    result = inproc("convert", "counts.npz", "amp.npz", "--measurement", "intensity")
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(
        load(tmp_path / "amp.npz").diffraction, arrays["diffraction"], rtol=1e-6
    )


# ---------------------------------------------------------- ambiguous (H, W, M) stack (#17.2)


def test_stack_with_as_many_positions_as_pixels_is_refused_not_guessed(inproc, tmp_path):
    arrays = _scan_arrays(m=16, n=16)
    np.savez(tmp_path / "square.npz", **arrays)
    line = inproc("convert", "square.npz", "out.npz").one_error_line()
    assert "square.npz" in line and "'diffraction'" in line
    assert "(16, 16, 16)" in line and "diffraction_layout" in line


@pytest.mark.parametrize("where", ["key", "metadata"])
def test_declared_legacy_layout_is_transposed(tmp_path, where):
    import json

    from ptychopinn.data import load_npz

    arrays = _scan_arrays(m=16, n=16)
    legacy = np.transpose(arrays["diffraction"], (1, 2, 0))  # (H, W, M)
    extra = (
        {"diffraction_layout": "HWM"}
        if where == "key"
        else {"metadata": json.dumps({"diffraction_layout": "HWM"})}
    )
    np.savez(tmp_path / "legacy.npz", **{**arrays, "diffraction": legacy}, **extra)
    scan = load_npz(tmp_path / "legacy.npz")
    np.testing.assert_array_equal(scan.diffraction, arrays["diffraction"])
    assert "diffraction_layout" not in scan.metadata


def test_square_stack_written_by_save_npz_reads_back(tmp_path):
    from ptychopinn.data import ScanData, load_npz, save_npz

    arrays = _scan_arrays(m=16, n=16)
    scan = ScanData(
        xcoords=arrays["xcoords"],
        ycoords=arrays["ycoords"],
        diffraction=arrays["diffraction"],
        probe=arrays["probeGuess"],
    )
    back = load_npz(save_npz(scan, tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.diffraction, scan.diffraction)


# --------------------------------------------------- zero signal, bad photon counts (#17.6)


@pytest.mark.parametrize(
    ("change", "key", "found"),
    [
        ({"probeGuess": np.zeros((16, 16), np.complex64)}, "'probeGuess'", "all zeros"),
        ({"diffraction": np.zeros((12, 16, 16), np.float32)}, "'diffraction'", "all zeros"),
        ({"nphotons": np.float64("nan")}, "'nphotons'", "nan"),
        ({"nphotons": np.float64("inf")}, "'nphotons'", "inf"),
        ({"nphotons": np.float64(-5.0)}, "'nphotons'", "-5.0"),
        ({"nphotons": np.zeros(3)}, "'nphotons'", "shape (3,)"),
        ({"metadata": '{"nphotons": -1}'}, "'metadata.nphotons'", "-1.0"),
    ],
    ids=["zero-probe", "zero-diffraction", "nan", "inf", "negative", "array", "metadata"],
)
def test_values_that_cannot_be_trained_on_name_file_and_key(inproc, tmp_path, change, key, found):
    np.savez(tmp_path / "bad.npz", **{**_scan_arrays(), **change})
    for command in (["train", "--train-data", "bad.npz"], ["convert", "bad.npz", "out.npz"]):
        line = inproc(*command).one_error_line()
        assert "bad.npz" in line and key in line and "expected" in line and found in line


def test_product_raw_data_with_zero_diffraction_names_the_dataset(tmp_path):
    import h5py

    from ptychopinn.data import DataContractError, ScanData, load, save_product

    arrays = _scan_arrays()
    scan = ScanData(
        xcoords=arrays["xcoords"],
        ycoords=arrays["ycoords"],
        diffraction=arrays["diffraction"],
        probe=arrays["probeGuess"],
    )
    path = save_product(scan, tmp_path / "p.h5")
    with h5py.File(path, "a") as f:
        del f["raw_data/diffraction"]
        f["raw_data/diffraction"] = np.zeros((12, 16, 16), np.float32)
    with pytest.raises(DataContractError, match=r"p\.h5, key 'raw_data/diffraction'.*all zeros"):
        load(path)
