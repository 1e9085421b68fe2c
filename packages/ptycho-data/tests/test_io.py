"""NPZ and ptychodus product files, with fuzzing over malformed inputs."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptychopinn.data import (
    DataContractError,
    ScanData,
    infer_probe_size,
    load,
    load_npz,
    load_product,
    product_from_scan,
    save_npz,
    save_product,
    simulate,
)


def _arrays(m: int = 6, n: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "diffraction": rng.uniform(0, 2, (m, n, n)).astype(np.float32),
        "probeGuess": np.ones((n, n), dtype=np.complex64),
        "xcoords": rng.uniform(10, 20, m),
        "ycoords": rng.uniform(10, 20, m),
    }


def _write(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def test_alias_defaults_and_optional(tmp_path: Path) -> None:
    a = _arrays()
    a["diff3d"] = a.pop("diffraction")
    a["objectGuess"] = np.ones((30, 30), dtype=np.complex64)
    a["Y"] = np.ones((6, 8, 8, 1), dtype=np.complex64)
    s = load_npz(_write(tmp_path / "a.npz", **a))
    np.testing.assert_array_equal(s.diffraction, a["diff3d"])
    np.testing.assert_array_equal(s.xcoords_start, a["xcoords"])
    assert not s.scan_index.any() and s.Y.shape == (6, 8, 8)
    assert s.metadata["source"].endswith("a.npz")


def test_legacy_layouts_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    a = _arrays()
    stack = a["diffraction"]
    with caplog.at_level(logging.INFO, logger="ptychopinn.data.io"):
        s = load_npz(
            _write(tmp_path / "hwm.npz", **{**a, "diffraction": np.transpose(stack, (1, 2, 0))})
        )
        np.testing.assert_array_equal(s.diffraction, stack)
        s = load_npz(_write(tmp_path / "sq.npz", **{**a, "diffraction": stack[..., None]}))
        np.testing.assert_array_equal(s.diffraction, stack)
    assert "legacy (H, W, M)" in caplog.text and "squeezing" in caplog.text


def test_intensity_conversion_and_warning(tmp_path: Path) -> None:
    a = _arrays()
    counts = np.random.default_rng(1).poisson(500, size=(6, 8, 8))
    path = _write(tmp_path / "i.npz", **{**a, "diffraction": counts})
    with pytest.warns(UserWarning, match="measurement='intensity'"):
        load_npz(path)
    s = load_npz(path, measurement="intensity")
    np.testing.assert_allclose(s.diffraction, np.sqrt(counts), rtol=1e-6)
    marked = _write(
        tmp_path / "m.npz", **{**a, "diffraction": counts, "measurement": np.array("intensity")}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(load_npz(marked).diffraction, np.sqrt(counts), rtol=1e-6)
    with pytest.raises(DataContractError, match="measurement"):
        load_npz(path, measurement="phase")
    with pytest.raises(DataContractError, match="non-negative"):
        load_npz(
            _write(tmp_path / "n.npz", **{**a, "diffraction": -np.ones((6, 8, 8))}),
            measurement="intensity",
        )


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"diffraction": None}, "diffraction"),
        ({"xcoords": None}, "xcoords"),
        ({"probeGuess": None}, "probeGuess"),
        ({"probeGuess": np.ones((4, 4))}, "probeGuess"),
        ({"diffraction": np.ones((6, 8, 9))}, "diffraction"),
        ({"diffraction": np.ones((5, 8, 8))}, "diffraction"),
        ({"diffraction": np.ones((6, 8, 8)) + 1j}, "diffraction"),
        ({"diffraction": np.full((6, 8, 8), np.nan)}, "diffraction"),
        ({"diffraction": np.ones((6, 0, 0))}, "diffraction"),
        ({"xcoords": np.zeros((0,))}, "xcoords"),
        ({"ycoords": np.zeros(3)}, "ycoords"),
        ({"xcoords": np.ones((6, 2))}, "xcoords"),
        ({"metadata": np.array("not json")}, "metadata"),
        ({"metadata": np.array("[1]")}, "metadata"),
    ],
)
def test_malformed_npz_names_key(tmp_path: Path, change: dict, key: str) -> None:
    a = {k: v for k, v in {**_arrays(), **change}.items() if v is not None}
    path = _write(tmp_path / "bad.npz", **a)
    with pytest.raises(DataContractError) as info:
        load_npz(path)
    assert "bad.npz" in str(info.value) and key in str(info.value)
    assert "expected" in str(info.value) and "found" in str(info.value)


def test_pickled_and_non_npz(tmp_path: Path) -> None:
    a = _arrays()
    np.savez(tmp_path / "p.npz", **{**a, "xcoords": np.array([object()] * 6, dtype=object)})
    with pytest.raises(DataContractError, match="pickled"):
        load_npz(tmp_path / "p.npz")
    (tmp_path / "t.npz").write_text("hello")
    with pytest.raises(DataContractError, match="zip"):
        load_npz(tmp_path / "t.npz")
    with pytest.raises(DataContractError):
        load_npz(tmp_path / "missing.npz")
    good = _write(tmp_path / "g.npz", **a).read_bytes()
    (tmp_path / "trunc.npz").write_bytes(good[: len(good) - 200])
    with pytest.raises(DataContractError, match=r"trunc\.npz"):
        load_npz(tmp_path / "trunc.npz")


def test_infer_probe_size(tmp_path: Path) -> None:
    a = _arrays(n=16)
    assert infer_probe_size(_write(tmp_path / "a.npz", **a)) == 16
    no_probe = {k: v for k, v in a.items() if k != "probeGuess"}
    assert infer_probe_size(_write(tmp_path / "b.npz", **no_probe)) == 16
    hwm = {**no_probe, "diff3d": np.ones((16, 16, 6))}
    hwm.pop("diffraction")
    assert infer_probe_size(_write(tmp_path / "c.npz", **hwm)) == 16
    with pytest.raises(DataContractError):
        infer_probe_size(_write(tmp_path / "d.npz", x=np.ones(3)))
    s = simulate("lines", n_images=4, N=16, seed=0)
    assert infer_probe_size(save_product(s, tmp_path / "p.h5")) == 16
    with h5py.File(tmp_path / "e.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(DataContractError):
        infer_probe_size(tmp_path / "e.h5")
    (tmp_path / "junk").write_bytes(b"junk")
    with pytest.raises(DataContractError):
        infer_probe_size(tmp_path / "junk")


def test_h5_product_exact_names_and_round_trip(tmp_path: Path) -> None:
    s = simulate("lines", n_images=12, N=16, nphotons=1e6, seed=0)
    path = save_product(
        s, tmp_path / "prod.h5", name="run", object_pixel_width_m=5e-8, loss_values=[3.0, 2.0]
    )
    with h5py.File(path, "r") as f:
        for key in (
            "name",
            "comments",
            "detector_object_distance_m",
            "probe_energy_eV",
            "exposure_time_s",
            "probe_photon_count",
            "mass_attenuation_m2_kg",
            "tomography_angle_deg",
        ):
            assert key in f.attrs
        assert f.attrs["format_id"] == "ptychodus.product.hdf5"
        assert set(f["probe"].attrs) >= {"pixel_width_m", "pixel_height_m"}
        assert set(f["object"].attrs) >= {
            "center_x_m",
            "center_y_m",
            "pixel_width_m",
            "pixel_height_m",
        }
        for ds in (
            "object_layer_spacing_m",
            "probe_position_indexes",
            "probe_position_x_m",
            "probe_position_y_m",
            "loss_values",
            "loss_epochs",
        ):
            assert ds in f
        np.testing.assert_array_equal(f["probe_position_indexes"][()], np.arange(12))
        assert f["raw_data/diffraction"].attrs["axis_canonical"] == "NHW"
        assert f["raw_data/probeGuess"].id == f["probe"].id  # hard link
        w = f["object"].shape[1]
        np.testing.assert_allclose(f["probe_position_x_m"][()], (s.xcoords - w / 2) * 5e-8)
    prod = load_product(path)
    x, y = prod.positions_px()
    np.testing.assert_allclose(x, s.xcoords, rtol=1e-12)
    np.testing.assert_allclose(y, s.ycoords, rtol=1e-12)
    np.testing.assert_array_equal(prod.loss_values, [3.0, 2.0])
    assert prod.metadata["name"] == "run" and prod.metadata["probe_photon_count"] == 1e6
    back = load(path)
    np.testing.assert_array_equal(back.diffraction, s.diffraction)
    np.testing.assert_array_equal(back.object, s.object)
    assert back.metadata["nphotons"] == 1e6


def test_npz_product_round_trip_and_opr(tmp_path: Path) -> None:
    s = simulate("points", n_images=5, N=16, seed=1)
    prod = product_from_scan(s, object_center_x_m=1e-6)
    prod.opr_weights = np.ones((1, 1))
    path = save_product(prod, tmp_path / "prod.npz")
    keys = set(np.load(path).files)
    assert {
        "probe_pixel_width_m",
        "object_center_x_m",
        "object_pixel_height_m",
        "probe_position_x_m",
        "opr_weights",
        "loss_values",
        "name",
    } <= keys
    back = load_product(path)
    np.testing.assert_allclose(back.positions_px()[0], s.xcoords)
    assert back.opr_weights.shape == (1, 1)
    with pytest.raises(DataContractError, match="raw"):
        load(path)
    h5 = save_product(prod, tmp_path / "o.h5", include_raw=False)
    with h5py.File(h5, "r") as f:
        assert "opr_weights" in f["probe"].attrs and "opr_weights" not in f
    with pytest.raises(DataContractError, match="raw"):
        load(h5)


def test_product_without_object_and_legacy_costs(tmp_path: Path) -> None:
    scan = ScanData(
        xcoords=[10.0, 20.0],
        ycoords=[10.0, 12.0],
        diffraction=np.ones((2, 8, 8)),
        probe=np.ones((8, 8)),
    )
    prod = product_from_scan(scan)
    assert prod.object.shape[0] >= 17 and prod.object.shape[1] >= 25
    path = save_product(scan, tmp_path / "s.h5")
    with h5py.File(path, "a") as f:
        f["costs"] = f["loss_values"][()]
        del f["loss_values"], f["loss_epochs"]
    assert load_product(path).loss_values.size == 0
    np.testing.assert_allclose(load(path).xcoords, [10.0, 20.0])


def _h5(path: Path, mutate) -> Path:
    s = simulate("grf", n_images=4, N=8, seed=0)
    save_product(s, path)
    with h5py.File(path, "a") as f:
        mutate(f)
    return path


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda f: f.attrs.__delitem__("name"), "name"),
        (lambda f: f.__delitem__("probe_position_x_m"), "probe_position_x_m"),
        (lambda f: f["probe"].attrs.__delitem__("pixel_width_m"), "pixel_width_m"),
        (lambda f: f["object"].attrs.__setitem__("pixel_width_m", -1.0), "object_pixel_width_m"),
        (lambda f: f["object"].attrs.__setitem__("center_x_m", "abc"), "center_x_m"),
        (
            lambda f: (
                f.__delitem__("probe_position_y_m"),
                f.create_dataset("probe_position_y_m", data=np.ones(2)),
            ),
            "probe_position",
        ),
        (
            lambda f: (
                f.__delitem__("probe_position_indexes"),
                f.create_dataset("probe_position_indexes", data=np.ones(4)),
            ),
            "probe_position_indexes",
        ),
        (lambda f: f["probe_position_x_m"].__setitem__(0, np.nan), "probe_position_x_m"),
        (
            lambda f: (f.__delitem__("object"), f.create_dataset("object", data=np.ones(3))),
            "object",
        ),
        (lambda f: (f.__delitem__("probe"), f.create_dataset("probe", data=np.ones(3))), "probe"),
        (lambda f: f["raw_data"].__delitem__("xcoords"), "raw_data/xcoords"),
        (
            lambda f: (
                f["raw_data"].__delitem__("_metadata"),
                f["raw_data"].create_dataset("_metadata", data="[1]"),
            ),
            "_metadata",
        ),
    ],
)
def test_malformed_h5_names_key(tmp_path: Path, mutate, key: str) -> None:
    path = _h5(tmp_path / "bad.h5", mutate)
    with pytest.raises(DataContractError) as info:
        load(path)
    assert key in str(info.value) and "bad.h5" in str(info.value)


def test_malformed_npz_product(tmp_path: Path) -> None:
    path = save_product(simulate("grf", n_images=3, N=8, seed=0), tmp_path / "p.npz")
    content = dict(np.load(path))
    np.savez(tmp_path / "q.npz", **{k: v for k, v in content.items() if k != "object_center_y_m"})
    with pytest.raises(DataContractError, match="object_center_y_m"):
        load_product(tmp_path / "q.npz")
    np.savez(tmp_path / "r.npz", **{**content, "probe_pixel_width_m": np.ones(3)})
    with pytest.raises(DataContractError, match="probe_pixel_width_m"):
        load_product(tmp_path / "r.npz")
    (tmp_path / "s.npz").write_text("x")
    with pytest.raises(DataContractError):
        load_product(tmp_path / "s.npz")
    with pytest.raises(DataContractError):
        load(tmp_path / "s.npz")


# ----------------------------------------------------------------------------- fuzzing

_shapes = st.lists(st.integers(0, 5), min_size=0, max_size=4).map(tuple)
_dtypes = st.sampled_from([np.float32, np.float64, np.int16, np.complex64, np.bool_, "U3"])
_keys = st.sampled_from(
    [
        "diffraction",
        "diff3d",
        "probeGuess",
        "objectGuess",
        "xcoords",
        "ycoords",
        "scan_index",
        "xcoords_start",
        "Y",
        "metadata",
        "measurement",
        "nphotons",
    ]
)


@st.composite
def _npz_members(draw: st.DrawFn) -> dict[str, np.ndarray]:
    members = {}
    for key in draw(st.lists(_keys, max_size=8, unique=True)):
        shape, dtype = draw(_shapes), draw(_dtypes)
        fill = draw(st.sampled_from([0, 1, -1, 1e6, np.nan, np.inf]))
        if dtype == "U3":
            members[key] = np.full(shape, "abc")
        else:
            with np.errstate(invalid="ignore"):
                members[key] = np.full(shape, fill).astype(dtype)
    return members


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(members=_npz_members(), cut=st.one_of(st.none(), st.integers(0, 400)))
def test_fuzz_npz_only_data_contract_error(tmp_path: Path, members: dict, cut: int | None) -> None:
    path = tmp_path / "fuzz.npz"
    np.savez(path, **members)
    if cut is not None:
        path.write_bytes(path.read_bytes()[:cut])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for loader in (load_npz, load, load_product, infer_probe_size):
            try:
                loader(path)
            except DataContractError:
                pass


_h5_keys = st.sampled_from(
    [
        "probe",
        "object",
        "probe_position_indexes",
        "probe_position_x_m",
        "probe_position_y_m",
        "loss_values",
        "raw_data/diffraction",
        "raw_data/xcoords",
        "raw_data/ycoords",
        "object_layer_spacing_m",
    ]
)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    drop=st.lists(_h5_keys, max_size=3, unique=True),
    replace=st.lists(st.tuples(_h5_keys, _shapes, _dtypes), max_size=3),
    cut=st.one_of(st.none(), st.integers(0, 3000)),
)
def test_fuzz_h5_only_data_contract_error(
    tmp_path: Path, drop: list, replace: list, cut: int | None
) -> None:
    path = tmp_path / "fuzz.h5"
    save_product(simulate("grf", n_images=3, N=8, seed=0), path)
    with h5py.File(path, "a") as f:
        for key in drop:
            if key in f:
                del f[key]
        for key, shape, dtype in replace:
            if key in f:
                del f[key]
            data = np.full(shape, "abc") if dtype == "U3" else np.ones(shape, dtype=dtype)
            f.create_dataset(key, data=data.astype("S3") if dtype == "U3" else data)
    if cut is not None:
        path.write_bytes(path.read_bytes()[:cut])
    for loader in (load_product, load, infer_probe_size):
        try:
            loader(path)
        except DataContractError:
            pass


def test_h5_product_reads_ptychodus_17_root_names(tmp_path: Path) -> None:
    """ptychodus 1.7 writes photon_energy_eV / mass_attenuation_m2_per_kg; both are read."""
    s = simulate("lines", n_images=8, N=16, nphotons=1e6, seed=1)
    path = save_product(s, tmp_path / "prod.h5", object_pixel_width_m=5e-8)
    with h5py.File(path, "r+") as f:
        assert f.attrs["photon_energy_eV"] == f.attrs["probe_energy_eV"]
        energy = float(f.attrs["probe_energy_eV"])
        del f.attrs["probe_energy_eV"]
        del f.attrs["mass_attenuation_m2_kg"]
        f.attrs["photon_energy_eV"] = energy + 1.0
    prod = load_product(path)
    assert prod.metadata["probe_energy_eV"] == energy + 1.0
    assert "mass_attenuation_m2_kg" in prod.metadata


def test_save_npz_legacy_key_round_trips(tmp_path: Path) -> None:
    s = simulate("lines", n_images=6, N=16, nphotons=1e6, seed=5)
    path = save_npz(s, tmp_path / "legacy.npz", diffraction_key="diff3d")
    with np.load(path) as f:
        assert "diff3d" in f.files and "diffraction" not in f.files
    np.testing.assert_array_equal(load_npz(path).diffraction, s.diffraction)
    with pytest.raises(ValueError, match="diffraction_key"):
        save_npz(s, tmp_path / "x.npz", diffraction_key="diff")
