"""Workflow surface: predict, bundles, portable weights, backend entry point, bad input."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch

import ptychopinn.core
import ptychopinn.torch
import ptychopinn.torch.training as training_mod
from ptychopinn.config import ModelConfig, TrainingConfig
from ptychopinn.core import Backend, check_history, get_backend
from ptychopinn.data import BundleError, read_bundle, write_bundle
from ptychopinn.data.bundle import save_portable
from ptychopinn.torch import (
    DataError,
    ModelMismatchError,
    NonFiniteLossError,
    PtychoPINN,
    TorchBackend,
    export_weights,
    import_weights,
    load_bundle,
    predict,
    run_cdi_example,
    save_bundle,
    train,
)


def _model(grouped, gridsize=1, seed=0, **kw):
    mc = ModelConfig(N=64, gridsize=gridsize, n_filters_scale=1, **kw)
    return PtychoPINN(mc, grouped.probe, grouped.intensity_scale, grouped.norm_factor, seed=seed)


@pytest.fixture
def bundle(tmp_path, grouped):
    m = _model(grouped, seed=7)
    with torch.no_grad():
        m.log_scale.add_(0.25)
    return m, save_bundle(m, tmp_path / "wts.h5.zip")


def test_predict_streams_and_matches_inference_path(grouped2):
    m = _model(grouped2, gridsize=2)
    out = predict(m, grouped2, batch_size=5)
    assert out.shape == (len(grouped2), 64, 64, 1) and out.dtype == np.complex64
    x = torch.from_numpy(grouped2.X[:3]).permute(0, 3, 1, 2)
    rel = torch.from_numpy(grouped2.coords_relative[:3, 0])
    with torch.no_grad():
        direct = m.diffraction_to_obj(x, rel).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(out[:3], direct, atol=1e-6)
    small = grouped2.subset(np.arange(6))
    np.testing.assert_allclose(predict(m, small, batch_size=64), out[:6], atol=1e-6)
    bf = predict(m, small, precision="bf16-mixed")
    assert np.abs(bf - out[:6]).max() < 0.1


def test_predict_rejects_mismatch_and_nan(grouped, grouped2):
    m = _model(grouped)
    with pytest.raises(ModelMismatchError, match="gridsize"):
        predict(m, grouped2)
    bad = grouped.subset(np.arange(4))
    bad.X = bad.X.copy()
    bad.X[0, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        predict(m, bad)
    with pytest.raises(TypeError):
        predict(object(), grouped)


def test_portable_roundtrip_and_strictness(grouped):
    a, b = _model(grouped, seed=1), _model(grouped, seed=2)
    w = export_weights(a)
    assert w["probe"].dtype == np.complex64 and w["probe"].shape == (64, 64)
    assert w["log_scale"].shape == () and w["encoder.0.conv0.weight"].shape == (32, 1, 3, 3)
    import_weights(b, w)
    assert all(np.array_equal(w[k], v) for k, v in export_weights(b).items())
    with pytest.raises(ModelMismatchError, match="missing"):
        import_weights(b, {k: v for k, v in w.items() if k != "amp_head.bias"})
    bad = dict(w)
    bad["amp_head.bias"] = np.zeros(3, np.float32)
    with pytest.raises(ModelMismatchError, match="shape"):
        import_weights(b, bad)
    bad["amp_head.bias"] = np.full(1, np.nan, np.float32)
    before = export_weights(b)
    with pytest.raises(ModelMismatchError, match="non-finite"):
        import_weights(b, {k: v + 1 if k != "probe" else v for k, v in bad.items()})
    # Atomic: every weight is checked before any is assigned (it copied until the NaN).
    assert all(np.array_equal(before[k], v) for k, v in export_weights(b).items())


def test_bundle_roundtrip(bundle, grouped):
    m, path = bundle
    manifest = read_bundle(path).manifest
    assert manifest["backend"] == "pytorch"
    assert manifest["N"] == 64 and manifest["gridsize"] == 1
    assert manifest["intensity_scale"] == pytest.approx(grouped.intensity_scale, rel=1e-6)
    assert {"weights.safetensors", "portable.npz", "probe.npy"} <= set(read_bundle(path).members)
    loaded = load_bundle(path, expect_N=64, expect_gridsize=1)
    assert all(np.array_equal(v, export_weights(loaded)[k]) for k, v in export_weights(m).items())
    np.testing.assert_array_equal(predict(loaded, grouped), predict(m, grouped))
    with pytest.raises(ModelMismatchError, match="gridsize=1"):
        load_bundle(path, expect_gridsize=2)


def _rewrite(path, out, manifest_update=None, drop=(), add=None):
    b = read_bundle(path)
    manifest = {k: v for k, v in b.manifest.items() if k not in ("sha256", "format_version")}
    manifest.update(manifest_update or {})
    members = {k: v for k, v in b.members.items() if k not in drop}
    members.update(add or {})
    return write_bundle(out, manifest, members)


def test_tensorflow_bundle_loads_through_portable(bundle, tmp_path, grouped):
    m, path = bundle
    tf_path = _rewrite(
        path,
        tmp_path / "tf.zip",
        {"backend": "tensorflow"},
        drop=("weights.safetensors",),
        add={"weights.weights.h5": b"\x89HDF\r\n\x1a\n fake keras weights"},
    )
    loaded = load_bundle(tf_path)
    np.testing.assert_array_equal(predict(loaded, grouped), predict(m, grouped))
    no_portable = _rewrite(path, tmp_path / "tf2.zip", {"backend": "tensorflow"},
                           drop=("weights.safetensors", "portable.npz"))  # fmt: skip
    with pytest.raises(BundleError, match=r"TensorFlow.*PyTorch"):
        load_bundle(no_portable)


def test_native_weights_must_be_finite_and_match_portable(bundle, tmp_path):
    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    _, path = bundle
    state = st_load(read_bundle(path).members["weights.safetensors"])
    name = "amp_head.bias" if "amp_head.bias" in state else sorted(state)[0]
    nan_state = {k: v.clone() for k, v in state.items()}
    nan_state[name].view(-1)[0] = float("nan")
    nan_path = _rewrite(path, tmp_path / "nan.zip", add={"weights.safetensors": st_save(nan_state)})
    with pytest.raises(BundleError, match=rf"tensor {name!r}: expected finite weights"):
        load_bundle(nan_path)
    shifted = {k: v.clone() for k, v in state.items()}
    shifted[name] += 1.0
    off_path = _rewrite(path, tmp_path / "off.zip", add={"weights.safetensors": st_save(shifted)})
    with pytest.raises(BundleError, match=rf"disagree on {name!r}"):
        load_bundle(off_path)


def test_bad_bundles(bundle, tmp_path):
    _, path = bundle
    data = path.read_bytes()
    truncated = tmp_path / "trunc.zip"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError):
        load_bundle(truncated)
    with pytest.raises(FileNotFoundError):
        load_bundle(tmp_path / "missing.zip")
    # A member swapped after writing fails its hash.
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for name in src.namelist():
            blob = src.read(name)
            dst.writestr(name, blob[:-4] + b"oops" if name == "probe.npy" else blob)
    with pytest.raises(BundleError, match="SHA-256"):
        load_bundle(tampered)
    # Pickled code is refused, even when the manifest hashes it correctly.
    pickled = tmp_path / "pickled.zip"
    with zipfile.ZipFile(path) as src:
        manifest = json.loads(src.read("manifest.json"))
        members = {n: src.read(n) for n in src.namelist() if n != "manifest.json"}
    evil = pickle.dumps({"x": 1}, protocol=4)
    members["weights.safetensors"] = evil
    import hashlib

    manifest["sha256"]["weights.safetensors"] = hashlib.sha256(evil).hexdigest()
    manifest.pop("manifest_sha256", None)  # as before ptycho-data 0.1.3: reach the pickle check
    with zipfile.ZipFile(pickled, "w") as dst:
        dst.writestr("manifest.json", json.dumps(manifest))
        for name, blob in members.items():
            dst.writestr(name, blob)
    with pytest.raises(BundleError, match="pickle"):
        load_bundle(pickled)
    # Corrupt safetensors with a valid hash.
    corrupt = _rewrite(path, tmp_path / "corrupt.zip",
                       add={"weights.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}"})  # fmt: skip
    with pytest.raises(BundleError, match="safetensors"):
        load_bundle(corrupt)
    # Wrong weights for the declared config.
    other = PtychoPINN(ModelConfig(N=64, gridsize=2, n_filters_scale=1))
    from safetensors.torch import save as st_save

    wrong = _rewrite(path, tmp_path / "wrong.zip",
                     add={"weights.safetensors": st_save({k: v.contiguous() for k, v in other.state_dict().items()})})  # fmt: skip
    with pytest.raises(ModelMismatchError, match="does not fit"):
        load_bundle(wrong)
    bad_scale = _rewrite(path, tmp_path / "scale.zip", {"intensity_scale": -1.0})
    with pytest.raises(BundleError, match="intensity_scale"):
        load_bundle(bad_scale)
    bad_cfg = _rewrite(path, tmp_path / "cfg.zip", {"config": {"model": {"N": 63}}})
    with pytest.raises(BundleError, match="config"):
        load_bundle(bad_cfg)
    bad_n = _rewrite(path, tmp_path / "n.zip", {"N": 128})
    with pytest.raises(BundleError, match="disagrees"):
        load_bundle(bad_n)
    portable_tf = _rewrite(path, tmp_path / "p.zip", {"backend": "tensorflow"},
                           drop=("weights.safetensors",),
                           add={"portable.npz": save_portable({"log_scale": np.zeros(())})})  # fmt: skip
    with pytest.raises(ModelMismatchError, match="missing"):
        load_bundle(portable_tf)


def test_save_bundle_is_atomic_and_keeps_old_file(bundle, tmp_path, monkeypatch):
    m, path = bundle
    before = path.read_bytes()
    import zipfile

    real = zipfile.ZipFile.writestr

    def boom(self, name, *a, **k):  # fails half-way through the archive
        if name == "portable.npz":
            raise RuntimeError("disk full")
        return real(self, name, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", boom)
    with pytest.raises(RuntimeError):
        save_bundle(m, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wts.h5.zip"]


def test_train_rejects_bad_data(grouped, grouped2, tmp_path, make_config, make_execution):
    bad = grouped.subset(np.arange(16))
    bad.X = bad.X.copy()
    bad.X[1] = np.inf
    with pytest.raises(DataError, match=r"train\.X"):
        train(bad, None, make_config(tmp_path), make_execution())
    with pytest.raises(ModelMismatchError, match="gridsize"):
        train(grouped2, None, make_config(tmp_path), make_execution())
    with pytest.raises(ModelMismatchError, match="test has"):
        train(grouped, grouped2, make_config(tmp_path), make_execution())
    with pytest.raises(DataError, match="GroupedData"):
        train(np.zeros(3), None, make_config(tmp_path), make_execution())


def test_non_finite_loss_stops_and_names_checkpoint(
    grouped, tmp_path, make_config, make_execution, monkeypatch
):
    real = training_mod.compute_loss

    def poisoned(model, out, batch, config):
        terms = real(model, out, batch, config)
        if model.training and getattr(model, "_epoch", 0) >= 1:
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    class EpochMark(training_mod.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            pl_module.model._epoch = trainer.current_epoch

    monkeypatch.setattr(training_mod, "compute_loss", poisoned)
    real_build = training_mod.build_trainer
    monkeypatch.setattr(
        training_mod,
        "build_trainer",
        lambda ex, out, n, mon, cbs: real_build(ex, out, n, mon, [*cbs, EpochMark()]),
    )
    # Epochs are 1-based (as in the TensorFlow backend): the NaN comes in the second.
    with pytest.raises(NonFiniteLossError, match="epoch 2") as info:
        train(grouped, None, make_config(tmp_path, nepochs=3), make_execution(logger="none"))
    assert info.value.epoch == 2 and info.value.step > 0
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert info.value.last_checkpoint == last
    assert str(last) in str(info.value)
    assert last.is_file()
    torch.load(last, weights_only=True)  # still a complete checkpoint


def test_backend_entry_point(grouped):
    backend = get_backend("pytorch")
    assert isinstance(backend, TorchBackend) and backend.name == "pytorch"
    assert isinstance(backend, Backend)
    m = _model(grouped)
    w = backend.export_weights(m)
    backend.import_weights(m, w)
    assert backend.predict(m, grouped, 16).shape == (len(grouped), 64, 64, 1)


def test_run_cdi_example(scan, tmp_path, make_config, make_execution):
    cfg = make_config(tmp_path, nepochs=1, n_groups=16)
    amp, phase, results = run_cdi_example(scan, scan, cfg, True, make_execution())
    assert results["backend"] == "pytorch"
    assert amp.shape == phase.shape and amp.ndim == 2
    assert np.isfinite(amp).all()
    assert results["patches"].shape == (16, 64, 64, 1)
    # As in the TensorFlow backend: metrics against the test object, or why there are none.
    assert ("metrics" in results) != ("metrics_error" in results)
    if "metrics" in results:
        assert -1 <= results["metrics"]["amplitude"]["ssim"] <= 1
    history = results["history"]
    assert check_history(history) == history and "epoch" not in history
    assert {"train_loss", "train_nll", "lr", "test_loss", "test_nll"} <= set(history)
    assert "train_mae" not in history  # mae_weight is 0: neither computed nor logged
    _, _, no_stitch = TorchBackend().run_cdi_example(
        results["test_data"],
        results["test_data"],
        cfg.replace(output_dir=tmp_path / "b"),
        False,
        execution=make_execution(),
    )
    assert "stitched" not in no_stitch
    with pytest.raises(DataError):
        run_cdi_example(object(), scan, cfg)


def test_training_config_carried_into_bundle(grouped, tmp_path, make_config, make_execution):
    cfg = make_config(tmp_path, nepochs=1, backend="tensorflow")
    res = train(grouped, None, cfg, make_execution(logger="none"))
    assert not (tmp_path / "wts.h5.zip").exists()  # train never writes the bundle
    path = save_bundle(res.model, tmp_path / "wts.h5.zip")
    manifest = read_bundle(path).manifest
    restored = TrainingConfig.from_dict(manifest["config"])
    assert restored.backend == "pytorch" and restored.nepochs == 1
    assert io.BytesIO(read_bundle(path).members["probe.npy"]).read(6) == b"\x93NUMPY"


def test_errors_are_ptychopinn_core_classes():
    assert ptychopinn.torch.TorchBackendError is ptychopinn.core.BadInputError
    assert DataError is ptychopinn.core.DataError
    assert ModelMismatchError is ptychopinn.core.ModelMismatchError
    assert NonFiniteLossError is ptychopinn.core.NonFiniteLossError
    assert ptychopinn.torch.TrainResult is ptychopinn.core.TrainResult


def test_ctrl_c_during_fit_stays_a_keyboard_interrupt(tmp_path):
    """Lightning turns Ctrl-C into sys.exit(1) and leaves SIGINT ignored; train does not."""
    import signal

    import lightning.pytorch as pl

    from ptychopinn.torch.workflow import _fit_interruptible

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            if batch_idx == 2:
                raise KeyboardInterrupt  # what SIGINT raises in the main thread
            return (self.w - batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(8, 1)))
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    before = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt, match="interrupted at epoch 1"):
            _fit_interruptible(trainer, Tiny(), train_dataloaders=data)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def test_other_exits_of_fit_pass_through():
    from ptychopinn.torch.workflow import _fit_interruptible

    class Exits:
        interrupted = False

        def fit(self, module, **kwargs):
            raise SystemExit(3)

    with pytest.raises(SystemExit) as info:
        _fit_interruptible(Exits(), None)
    assert info.value.code == 3
