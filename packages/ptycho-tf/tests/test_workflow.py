"""predict, bundles (save/load, strictness, safety, cross-backend), entry point, CDI example."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import ptychopinn.core
import ptychopinn.tf
from ptychopinn.config import TrainingConfig, get_backend
from ptychopinn.core.errors import BadInputError, ModelMismatchError
from ptychopinn.data import BundleError, read_bundle, write_bundle
from ptychopinn.data.bundle import save_portable
from ptychopinn.tf import workflow as W
from ptychopinn.tf.errors import TFBackendError, WeightsError
from ptychopinn.tf.model import build_model
from ptychopinn.tf.weights import export_weights


def test_predict_streams_batches(trained, grouped1):
    _, result = trained
    whole = W.predict(result.model, grouped1, batch_size=len(grouped1))
    small = W.predict(result, grouped1, batch_size=7, progress=True)  # a TrainResult works too
    assert whole.shape == (len(grouped1), 64, 64, 1) and whole.dtype == np.complex64
    # rtol: the CPU kernels may round differently per batch size (seen: 1.3e-6 relative
    # on an AVX2-only machine); a streaming error would be of the values' own size
    np.testing.assert_allclose(small, whole, rtol=1e-5, atol=1e-6)
    direct = result.model.diffraction_to_obj([grouped1.X[:4], grouped1.coords_relative[:4]])
    np.testing.assert_allclose(whole[:4], direct.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        W.predict(result.model, grouped1, batch_size=-1)
    with pytest.raises(TypeError, match="PtychoModel"):
        W.predict(object(), grouped1)


def test_predict_refuses_mismatched_or_nan_data(trained, grouped1, grouped2):
    _, result = trained
    with pytest.raises(ModelMismatchError, match="gridsize"):
        W.predict(result.model, grouped2)
    bad = grouped1.subset(np.arange(4))
    bad.coords_relative = bad.coords_relative.copy()
    bad.coords_relative[0] = np.inf
    with pytest.raises(TFBackendError, match="coords_relative"):
        W.predict(result.model, bad)


def test_bundle_round_trip(trained, grouped1, tmp_path):
    _, result = trained
    path = W.save_bundle(result.model, tmp_path / "wts.h5.zip")
    bundle = read_bundle(path)
    m = bundle.manifest
    assert m["backend"] == "tensorflow" and m["N"] == 64 and m["gridsize"] == 1
    assert m["intensity_scale"] == pytest.approx(grouped1.intensity_scale)
    assert m["norm_factor"] == pytest.approx(grouped1.norm_factor)
    assert set(bundle.members) == {"weights.weights.h5", "portable.npz", "probe.npy"}
    assert TrainingConfig.from_dict(m["config"]).nepochs == 2
    probe = np.load(io.BytesIO(bundle.members["probe.npy"]), allow_pickle=False)
    np.testing.assert_array_equal(probe, grouped1.probe)
    loaded = W.load_bundle(path, expect_N=64, expect_gridsize=1)
    a, b = export_weights(result.model), export_weights(loaded)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    np.testing.assert_array_equal(
        W.predict(loaded, grouped1.subset(np.arange(8))),
        W.predict(result.model, grouped1.subset(np.arange(8))),
    )
    with pytest.raises(WeightsError, match="gridsize=1, but gridsize=2"):
        W.load_bundle(path, expect_gridsize=2)
    # Saving over an existing bundle replaces it atomically.
    W.save_bundle(loaded, path)
    assert read_bundle(path).manifest["backend"] == "tensorflow"


def _rewrite(src, dst, manifest_update=None, members_update=None, drop=()):
    bundle = read_bundle(src)
    manifest = {k: v for k, v in bundle.manifest.items() if k not in ("sha256", "format_version")}
    manifest.update(manifest_update or {})
    members = {k: v for k, v in bundle.members.items() if k not in drop}
    members.update(members_update or {})
    return write_bundle(dst, manifest, members)


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    _, result = trained
    return W.save_bundle(result.model, tmp_path_factory.mktemp("bundle") / "wts.h5.zip")


def test_bad_bundles_are_refused(saved, tmp_path):
    with pytest.raises(FileNotFoundError):
        W.load_bundle(tmp_path / "missing.zip")
    raw = saved.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BundleError, match="truncated"):
        W.load_bundle(truncated)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(tampered, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "portable.npz":
                data = data[:-40] + bytes(40)
            dst.writestr(name, data)
    with pytest.raises(BundleError, match="SHA-256"):
        W.load_bundle(tampered)
    pickled = tmp_path / "pickled.zip"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(pickled, "w") as dst:
        manifest = json.loads(src.read("manifest.json"))
        evil = b"\x80\x04\x95" + bytes(20)
        import hashlib

        manifest["sha256"]["probe.npy"] = hashlib.sha256(evil).hexdigest()
        manifest.pop("manifest_sha256", None)  # as before ptycho-data 0.1.3: reach the pickle check
        dst.writestr("manifest.json", json.dumps(manifest))
        for name in src.namelist():
            if name != "manifest.json":
                dst.writestr(name, evil if name == "probe.npy" else src.read(name))
    with pytest.raises(BundleError, match="pickle"):
        W.load_bundle(pickled)


def test_inconsistent_bundles_are_refused(saved, trained, tmp_path):
    _, result = trained
    w = export_weights(result.model)
    w["amp_head.bias"] = w["amp_head.bias"] + 1
    with pytest.raises(BundleError, match=r"disagree on 'amp_head\.bias'"):
        W.load_bundle(
            _rewrite(saved, tmp_path / "a.zip", members_update={"portable.npz": save_portable(w)})
        )
    w = export_weights(result.model)
    w["encoder.0.conv0.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(WeightsError, match=r"encoder\.0\.conv0\.weight"):
        W.load_bundle(
            _rewrite(saved, tmp_path / "b.zip", members_update={"portable.npz": save_portable(w)})
        )
    with pytest.raises(BundleError, match=r"weights\.weights\.h5"):
        W.load_bundle(_rewrite(saved, tmp_path / "c.zip", drop=("weights.weights.h5",)))
    with pytest.raises(BundleError, match="does not fit"):
        W.load_bundle(
            _rewrite(saved, tmp_path / "d.zip", members_update={"weights.weights.h5": b"not hdf5"})
        )
    with pytest.raises(BundleError, match="intensity_scale"):
        W.load_bundle(_rewrite(saved, tmp_path / "e.zip", {"intensity_scale": -1.0}))
    with pytest.raises(BundleError, match="'config'"):
        W.load_bundle(_rewrite(saved, tmp_path / "f.zip", {"config": {"nepochs": "x"}}))
    with pytest.raises(BundleError, match="N=128 disagrees"):
        W.load_bundle(_rewrite(saved, tmp_path / "g.zip", {"N": 128}))


def test_pytorch_bundle_loads_through_portable_weights(saved, grouped1, tmp_path):
    """A bundle written by the PyTorch backend: native safetensors plus portable.npz."""
    torch_like = _rewrite(
        saved,
        tmp_path / "torch.zip",
        {"backend": "pytorch"},
        {"weights.safetensors": b"\x00" * 16},
        drop=("weights.weights.h5",),
    )
    model = W.load_bundle(torch_like)
    assert model.metadata["source_backend"] == "pytorch"
    ref = W.load_bundle(saved)
    np.testing.assert_array_equal(
        W.predict(model, grouped1.subset(np.arange(4))),
        W.predict(ref, grouped1.subset(np.arange(4))),
    )
    only_native = _rewrite(torch_like, tmp_path / "torch2.zip", drop=("portable.npz",))
    with pytest.raises(BundleError, match=r"TensorFlow \('tensorflow'\) and PyTorch \('pytorch'\)"):
        W.load_bundle(only_native)


def test_backend_entry_point(trained, grouped1, tmp_path):
    cfg, result = trained
    backend = get_backend("tensorflow")
    assert backend.name == "tensorflow" and isinstance(backend, ptychopinn.core.Backend)
    w = backend.export_weights(result)
    fresh = build_model(cfg.model, grouped1.probe, grouped1.intensity_scale)
    backend.import_weights(fresh, w)
    np.testing.assert_array_equal(
        backend.predict(fresh, grouped1.subset(np.arange(4))),
        W.predict(result.model, grouped1.subset(np.arange(4))),
    )
    path = backend.save_bundle(fresh, tmp_path / "wts.h5.zip")
    assert backend.load_bundle(path).N == 64


def test_run_cdi_example(scan_small, tiny_config, quiet):
    cfg = tiny_config(gridsize=1, validation_fraction=0.0)
    amp, phase, results = ptychopinn.tf.run_cdi_example(
        scan_small, scan_small, cfg, execution=quiet
    )
    assert results["backend"] == "tensorflow"
    assert amp.shape == phase.shape and amp.ndim == 2
    assert results["patches"].shape == (96, 64, 64, 1)
    assert np.isfinite(results["metrics"]["amplitude"]["ssim"])
    with pytest.raises(TFBackendError, match="ScanData or GroupedData"):
        ptychopinn.tf.run_cdi_example([1, 2], scan_small, cfg)
    assert results["history"] is results["train_result"].history
    assert set(results["history"]) == {"train_loss", "train_nll", "lr", "test_loss", "test_nll"}


def test_errors_are_ptychopinn_core_classes():
    assert TFBackendError is BadInputError and WeightsError is ModelMismatchError
    assert ptychopinn.tf.NonFiniteLossError is ptychopinn.core.NonFiniteLossError
    assert ptychopinn.tf.TrainResult is ptychopinn.core.TrainResult
