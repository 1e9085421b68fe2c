"""``ptychopinn.core.bundle``: manifest, members, strict loading, portable-weight checks.

A NumPy :class:`BundleFormat` (test code) stands in for a backend: what is tested here
is the part written once for both backends.
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from ptychopinn.config import ModelConfig, TrainingConfig, layer_plan
from ptychopinn.core import BUNDLE_NAME, ModelMismatchError
from ptychopinn.core.bundle import (
    BundleFormat,
    LoadedBundle,
    build_manifest,
    check_native_matches_portable,
    manifest_float,
    npy_bytes,
    open_model_bundle,
    package_versions,
    validate_portable,
    write_model_bundle,
)
from ptychopinn.data import BundleError, load_portable, read_bundle, save_portable, write_bundle

CONFIG = TrainingConfig(model=ModelConfig(N=64, n_filters_scale=1), backend="pytorch")
SHAPES = layer_plan(CONFIG.model).parameter_shapes()


def _weights(offset: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {k: (rng.normal(size=s) + offset).astype(np.float32) for k, s in SHAPES.items()}
    out["probe"] = (out["probe"] + 1j).astype(np.complex64)
    out["log_scale"] = np.asarray(np.log(3.0), np.float32)
    return out


class Model:
    def __init__(self, config: TrainingConfig, s0: float, nf: float) -> None:
        self.config, self.s0, self.nf = config, s0, nf
        self.weights = {k: np.zeros(s, np.float32) for k, s in SHAPES.items()}


class NumpyFormat(BundleFormat[Model]):
    backend = "pytorch"  # poses as one of the two, to exercise the cross-backend rules
    native_member = "weights.npz"

    def versions(self) -> dict[str, str]:
        return package_versions({"numpy": np.__version__})

    def manifest_values(self, model: Model) -> tuple[TrainingConfig, float, float]:
        return model.config, model.s0, model.nf

    def native_bytes(self, model: Model) -> bytes:
        return save_portable(model.weights)

    def build(self, loaded: LoadedBundle) -> Model:
        args, kwargs = loaded.model_arguments()
        assert args[0] == loaded.config.model and args[1] is None
        assert kwargs["seed"] == loaded.config.seed
        return Model(loaded.config, loaded.intensity_scale, loaded.norm_factor)

    def load_native(self, model: Model, data: bytes, path) -> None:
        model.weights = load_portable(data)

    def export_weights(self, model: Model) -> dict[str, np.ndarray]:
        return dict(model.weights)

    def import_weights(self, model: Model, weights) -> None:
        model.weights = validate_portable(weights, SHAPES, model="test")


def _model() -> Model:
    m = Model(CONFIG, 2.5, 0.75)
    m.weights = _weights()
    return m


def test_save_writes_the_manifest_and_members(tmp_path):
    path = NumpyFormat().save(_model(), tmp_path / BUNDLE_NAME)
    bundle = read_bundle(path)
    m = bundle.manifest
    assert m["backend"] == "pytorch" and m["N"] == 64 and m["gridsize"] == 1
    assert m["intensity_scale"] == 2.5 and m["norm_factor"] == 0.75
    assert m["intensity_scale_trained"] == pytest.approx(3.0, rel=1e-6)
    assert TrainingConfig.from_dict(m["config"]) == CONFIG
    assert m["layer_plan"] == layer_plan(CONFIG.model).to_dict()
    assert {"numpy", "ptycho-core", "ptycho-data", "ptycho-config"} <= set(m["package_versions"])
    assert set(bundle.members) == {"weights.npz", "portable.npz", "probe.npy"}
    portable = load_portable(bundle.members["portable.npz"])
    np.testing.assert_array_equal(portable["probe"], _weights()["probe"])
    probe = np.load(io.BytesIO(bundle.members["probe.npy"]), allow_pickle=False)
    np.testing.assert_array_equal(probe, _weights()["probe"])


def test_round_trip_and_own_native_cross_check(tmp_path):
    fmt = NumpyFormat()
    path = fmt.save(_model(), tmp_path / BUNDLE_NAME)
    loaded = fmt.load(path, expect_N=64, expect_gridsize=1)
    assert (loaded.s0, loaded.nf) == (2.5, 0.75) and loaded.config == CONFIG
    for k, v in _weights().items():
        np.testing.assert_array_equal(loaded.weights[k], v)
    # native weights that disagree with portable.npz: refused, naming both members
    bundle = read_bundle(path)
    members = dict(bundle.members, **{"weights.npz": save_portable(_weights(1.0))})
    bad = write_bundle(tmp_path / "bad.zip", bundle.manifest, members)
    with pytest.raises(BundleError, match=r"'weights\.npz' and 'portable\.npz' disagree"):
        fmt.load(bad)
    with pytest.raises(ModelMismatchError, match="N=64, but N=128 was expected"):
        fmt.load(path, expect_N=128)


def test_another_backends_bundle_loads_through_portable_only(tmp_path):
    manifest = build_manifest(backend="tensorflow", config=CONFIG, intensity_scale=1.0,
                              intensity_scale_trained=1.0, norm_factor=1.0, versions={})  # fmt: skip
    path = write_model_bundle(
        tmp_path / "tf.zip", manifest, "weights.weights.h5", b"keras", _weights(2.0)
    )
    loaded = open_model_bundle(path, backend="pytorch", native_member="weights.npz")
    assert loaded.native is None and loaded.backend == "tensorflow"
    np.testing.assert_array_equal(
        NumpyFormat().load(path).weights["log_scale"], _weights(2.0)["log_scale"]
    )
    bare = write_bundle(tmp_path / "bare.zip", manifest, {"weights.weights.h5": b"keras"})
    with pytest.raises(
        BundleError, match=r"'tensorflow' bundle without 'portable\.npz'.*PyTorch backend"
    ):
        open_model_bundle(bare, backend="pytorch", native_member="weights.npz")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("config"), "manifest has no 'config'"),
        (lambda m: m.update(config={"nepochs": -1}), "manifest 'config' is invalid"),
        (lambda m: m.update(N=128), "manifest N=128 disagrees with its config"),
        (lambda m: m.update(intensity_scale="big"), "'intensity_scale' is missing or not a number"),
        (lambda m: m.update(norm_factor=0.0), "'norm_factor' must be finite and > 0, got 0.0"),
    ],
)
def test_bad_manifests_name_the_key(tmp_path, change, message):
    path = NumpyFormat().save(_model(), tmp_path / BUNDLE_NAME)
    bundle = read_bundle(path)
    manifest = json.loads(json.dumps(bundle.manifest))
    change(manifest)
    bad = write_bundle(tmp_path / "bad.zip", manifest, bundle.members)
    with pytest.raises(BundleError, match=message):
        NumpyFormat().load(bad)


def test_own_bundle_without_native_member_and_missing_file(tmp_path):
    path = NumpyFormat().save(_model(), tmp_path / BUNDLE_NAME)
    bundle = read_bundle(path)
    members = {k: v for k, v in bundle.members.items() if k != "weights.npz"}
    bad = write_bundle(tmp_path / "bad.zip", bundle.manifest, members)
    with pytest.raises(BundleError, match=r"member 'weights\.npz' is missing"):
        NumpyFormat().load(bad)
    with pytest.raises(FileNotFoundError):
        NumpyFormat().load(tmp_path / "absent.zip")


def test_validate_portable_checks_everything_before_returning():
    w = _weights()
    checked = validate_portable(w, SHAPES, model="N=64")
    assert set(checked) == set(SHAPES)
    name = next(k for k in SHAPES if k.endswith(".weight"))
    cases = [
        ({k: v for k, v in w.items() if k != name}, f"missing \\['{name}'\\]"),
        ({**w, "extra": np.zeros(1)}, "unexpected \\['extra'\\]"),
        ({**w, name: np.zeros(3, np.float32)}, f"'{name}': expected shape"),
        ({**w, name: w[name].astype(np.complex64)}, "must be real"),
        ({**w, name: np.full_like(w[name], np.inf)}, "non-finite"),
        ({**w, name: np.array(["x"] * w[name].size).reshape(w[name].shape)}, "expected numbers"),
    ]
    for weights, message in cases:
        with pytest.raises(ModelMismatchError, match=message):
            validate_portable(weights, SHAPES, model="N=64")
    assert "extra" not in validate_portable(
        {**w, "extra": np.zeros(1)}, SHAPES, model="x", strict=False
    )


def test_small_helpers(tmp_path):
    assert manifest_float({"s": "2.5"}, "s", "f.zip") == 2.5
    with pytest.raises(BundleError, match=r"f\.zip: manifest key 's' must be finite"):
        manifest_float({"s": float("nan")}, "s", "f.zip")
    assert npy_bytes(np.arange(3))[:6] == b"\x93NUMPY"
    with pytest.raises(ValueError):
        npy_bytes(np.array([object()], dtype=object))
    check_native_matches_portable({"a": np.ones(2)}, {"a": np.ones(2)}, "f", "n")
    with pytest.raises(BundleError, match="disagree on 'a'"):
        check_native_matches_portable({}, {"a": np.ones(2)}, "f", "n")
    path = NumpyFormat().save(_model(), tmp_path / BUNDLE_NAME)
    with zipfile.ZipFile(path) as z:
        assert "manifest.json" in z.namelist()
