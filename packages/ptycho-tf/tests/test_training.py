"""train(): pipeline order, logs, checkpoints, determinism, supervised mode, failures, devices."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ptychopinn.config import ExecutionConfig, ModelConfig
from ptychopinn.core import check_history
from ptychopinn.core.errors import DataError, ModelMismatchError, UnsupportedOptionError
from ptychopinn.data import check_stall
from ptychopinn.tf import training as T
from ptychopinn.tf.errors import NonFiniteLossError, TFBackendError
from ptychopinn.tf.weights import export_weights


def test_dataset_follows_grouped_batches_order(grouped1):
    ds = T.make_dataset(grouped1, 16, shuffle=True, seed=5, epochs=2)
    got = [b["input"].numpy() for b in ds]
    want = [b.X for e in range(2) for b in grouped1.batches(16, shuffle=True, seed=5 + e)]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_train_logs_checkpoints_and_history(trained, grouped1):
    cfg, result = trained
    h = result.history
    assert len(h["train_loss"]) == 2 and len(h["val_loss"]) == 2 and len(h["lr"]) == 2
    # The ptychopinn.core.history schema: the weighted terms only (mae_weight is 0).
    assert set(h) == {
        "train_loss",
        "train_nll",
        "val_loss",
        "val_nll",
        "lr",
        "test_loss",
        "test_nll",
    }
    assert check_history(h) == h
    assert len(h["test_loss"]) == 1 and np.isfinite(h["test_loss"][0])
    assert result.best_checkpoint.name == "best.weights.h5" and result.best_checkpoint.is_file()
    assert result.last_checkpoint.name == "last.weights.h5" and result.last_checkpoint.is_file()
    rows = list(csv.DictReader(open(cfg.output_dir / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert "val_loss" in rows[0]
    assert result.model.metadata["training_config"]["nepochs"] == 2
    assert result.extras["replicas"] == 1
    # The loss moved the weights and the intensity scale is trainable.
    w = export_weights(result.model)
    assert w["log_scale"] != np.float32(np.log(grouped1.intensity_scale))


def test_same_seed_gives_identical_weights(trained, grouped1, tiny_config, quiet):
    cfg, first = trained
    a = export_weights(first.model)
    again = T.train(
        grouped1,
        grouped1.subset(np.arange(8)),
        cfg.replace(output_dir=tiny_config().output_dir),
        quiet,
    )
    b = export_weights(again.model)
    assert again.history["train_loss"] == first.history["train_loss"]
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_supervised_and_optional_losses(grouped2, tiny_config, quiet):
    data = grouped2.subset(np.arange(16))
    sup = tiny_config(
        gridsize=2,
        model=ModelConfig(N=64, gridsize=2, n_filters_scale=1, model_type="supervised"),
        validation_fraction=0.0,
    )
    result = T.train(data, None, sup, quiet)
    assert np.isfinite(result.history["train_loss"][0]) and "train_nll" not in result.history
    assert {"train_amp_mae", "train_phase_mae"} <= set(result.history)
    np.testing.assert_allclose(
        result.history["train_loss"],
        np.add(result.history["train_amp_mae"], result.history["train_phase_mae"]),
        rtol=1e-5,
    )
    no_truth = data.subset(np.arange(16))
    no_truth.Y = None
    with pytest.raises(TFBackendError, match="ground-truth"):
        T.train(no_truth, None, sup, quiet)


def test_xla_training_with_every_loss_term(grouped2, tiny_config):
    cfg = tiny_config(
        gridsize=2,
        mae_weight=0.5,
        realspace_mae_weight=0.1,
        realspace_weight=0.01,
        validation_fraction=0.0,
    )
    ex = ExecutionConfig(
        enable_progress_bar=False, logger="tensorboard", enable_checkpointing=False,
        gradient_clip_val=1.0, early_stop_patience=None, jit_compile=True,
        accumulate_grad_batches=2,
    )  # fmt: skip
    with pytest.warns(UserWarning, match="determinism") as record:
        result = T.train(grouped2.subset(np.arange(16)), None, cfg, ex)
    assert not any("doesn't support `jit_compile" in str(w.message) for w in record)
    assert {"train_nll", "train_mae", "train_realspace_mae", "train_tv"} <= set(result.history)
    assert result.best_checkpoint is None
    assert np.isfinite(result.history["train_loss"][0])
    assert (cfg.output_dir / "tensorboard").is_dir()
    assert np.isfinite(result.history["train_loss"][0])


def test_bad_data_is_refused(grouped1, tiny_config, quiet):
    bad = grouped1.subset(np.arange(8))
    bad.X = bad.X.copy()
    bad.X[0, 0, 0, 0] = np.nan
    # The backend-neutral classes of ptychopinn.core (TFBackendError is their BadInputError).
    with pytest.raises(DataError, match=r"train\.X holds 1 non-finite"):
        T.train(bad, None, tiny_config(), quiet)
    with pytest.raises(ModelMismatchError, match="gridsize"):
        T.train(grouped1, None, tiny_config(gridsize=2), quiet)
    with pytest.raises(DataError, match="GroupedData"):
        T.train({"X": 1}, None, tiny_config(), quiet)
    with pytest.raises(TFBackendError, match="TrainingConfig"):
        T.train(grouped1, None, {"nepochs": 1}, quiet)
    with pytest.raises(DataError, match="no groups"):
        T.check_data(grouped1.subset(np.arange(0)), tiny_config().model)


def test_non_finite_loss_names_epoch_and_keeps_checkpoints(trained, grouped1, quiet):
    cfg, first = trained
    saved = {p: p.read_bytes() for p in (first.last_checkpoint, first.best_checkpoint)}
    blown = grouped1.subset(np.arange(16))
    blown.X = (blown.X * 1e30).astype(np.float32)  # finite input, infinite loss
    with pytest.raises(NonFiniteLossError, match=r"epoch 1 .*last good checkpoint: none") as info:
        T.train(blown, None, cfg.replace(validation_fraction=0.0), quiet)
    assert (info.value.epoch, info.value.step, info.value.last_checkpoint) == (1, 0, None)
    assert isinstance(info.value, RuntimeError) and "train_loss" not in str(info.value)
    for path, data in saved.items():  # the same output_dir: nothing on disk lost
        assert path.read_bytes() == data


def test_execution_options_errors(grouped1, tiny_config):
    with pytest.raises(UnsupportedOptionError, match="mlflow"):
        T.train(grouped1, None, tiny_config(), ExecutionConfig(logger="mlflow"))
    with pytest.raises(TFBackendError, match="only 1 device"):
        T.make_strategy(ExecutionConfig(accelerator="cpu", devices=4))
    with pytest.raises(TFBackendError, match="names device 3"):
        T.make_strategy(ExecutionConfig(accelerator="cpu", devices=[3]))
    with pytest.raises(TFBackendError, match="MultiWorkerMirroredStrategy"):
        T.make_strategy(ExecutionConfig(num_nodes=2))
    with pytest.raises(TFBackendError, match="strategy"):
        T.make_strategy(ExecutionConfig(strategy="deepspeed"))
    with pytest.raises(TFBackendError, match="mps"):
        T.make_strategy(ExecutionConfig(accelerator="mps"))
    assert T.make_strategy(ExecutionConfig(accelerator="cpu", devices=1)).num_replicas_in_sync == 1


_MIRRORED = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    from ptychopinn.config import ExecutionConfig, ModelConfig, TrainingConfig
    from ptychopinn.data import group, simulate
    from ptychopinn.tf.training import train
    from ptychopinn.tf.weights import export_weights
    data = group(simulate("lines", n_images=16, N=64, seed=3), gridsize=1, seed=0)
    out = sys.argv[1]
    cfg = TrainingConfig(model=ModelConfig(N=64, gridsize=1, n_filters_scale=1), nepochs=1,
                         batch_size=8, validation_fraction=0.0, output_dir=out, seed=0)
    res = {}
    for devices in (1, 2):
        ex = ExecutionConfig(accelerator="cpu", devices=devices, enable_progress_bar=False,
                             logger="none", enable_checkpointing=False)
        r = train(data, None, cfg, ex)
        obj = r.model.diffraction_to_obj([data.X, data.coords_relative]).numpy()
        res[devices] = (r.extras["replicas"], export_weights(r.model), r.history["train_loss"], obj)
    assert res[1][0] == 1 and res[2][0] == 2, (res[1][0], res[2][0])
    # Adam turns last-bit gradient differences of near-zero gradients into lr-sized steps,
    # so compare the weights absolutely (2 steps of lr 1e-3) and the outputs relatively.
    wdiff = max(float(np.max(np.abs(res[1][1][k] - res[2][1][k]))) for k in res[1][1])
    odiff = float(np.max(np.abs(res[1][3] - res[2][3])) / np.max(np.abs(res[1][3])))
    print(json.dumps({"weight_diff": wdiff, "output_diff": odiff,
                      "loss1": res[1][2], "loss2": res[2][2]}))
    """
)


def test_mirrored_strategy_on_two_logical_cpus_matches_single_device(tmp_path):
    """Logical devices must exist before TensorFlow initialises: run in a fresh process."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-c", _MIRRORED, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["weight_diff"] < 2.5e-3, report
    assert report["output_diff"] < 1e-2, report
    np.testing.assert_allclose(report["loss1"], report["loss2"], rtol=1e-4)
    assert Path(tmp_path).is_dir()


def test_epoch_means_weight_batches_by_their_size(trained, grouped1):
    """A short last batch counts by its size (as the torch backend logs it), so the reported
    loss over a set does not depend on the batch size."""
    cfg, result = trained
    trainer = T._Trainer(result.model, cfg, name="trainer")
    trainer.compile(optimizer="adam")
    data = grouped1.subset(np.arange(17))
    losses = [
        trainer.evaluate(T.make_dataset(data, bs, shuffle=False), verbose=0, return_dict=True)
        for bs in (16, 17)
    ]
    np.testing.assert_allclose(losses[0]["loss"], losses[1]["loss"], rtol=1e-5)


# ------------------------------------------------------------------ training health
def _constant_output_init(monkeypatch):
    """Every model train() builds starts collapsed: convs zero, sigmoid(30) = 1, π·tanh(20) = π."""
    real = T.build_model

    def collapsed(*args, **kwargs):
        net = real(*args, **kwargs)
        for spec in net.plan.conv_layers():
            layer = net.conv(spec.name)
            layer.kernel.assign(np.zeros(layer.kernel.shape, dtype="float32"))
            layer.bias.assign(np.zeros(layer.bias.shape, dtype="float32"))
        for name, value in (("amp_head", 30.0), ("phase_head", 20.0)):
            bias = net.conv(name).bias
            bias.assign(np.full(bias.shape, value, dtype="float32"))
        return net

    monkeypatch.setattr(T, "build_model", collapsed)


@pytest.mark.parametrize("gridsize", [1, 2])
def test_constant_output_raises_collapse_error(gridsize, request, tiny_config, quiet, monkeypatch):
    from ptychopinn.tf.errors import TrainingCollapsedError

    data = request.getfixturevalue(f"grouped{gridsize}").subset(np.arange(32))
    _constant_output_init(monkeypatch)
    with pytest.raises(TrainingCollapsedError, match="collapsed at epoch 1") as info:
        T.train(data, None, tiny_config(gridsize, nepochs=3), quiet)
    err = info.value
    assert isinstance(err, RuntimeError) and err.epoch == 1
    assert err.verdict.amp_mean == pytest.approx(1.0) and err.verdict.amp_std == 0.0
    assert err.verdict.n_groups == 6 and err.verdict.window == (32, 32)  # the validation groups
    assert err.verdict.channels == gridsize**2
    for fragment in ("learning_rate (now 0.001)", "nll_weight=0", "amp_activation", "batch_size"):
        assert fragment in str(err)


def test_flat_loss_stops_with_a_warning(grouped1, tiny_config, monkeypatch):
    from ptychopinn.tf.errors import TrainingStalledWarning

    _constant_output_init(monkeypatch)
    # probe_big=False and a fixed scale: no weight receives a gradient, the loss is flat
    cfg = tiny_config(
        nepochs=5,
        model=ModelConfig(N=64, n_filters_scale=1, probe_big=False),
        intensity_scale_trainable=False,
    )
    ex = ExecutionConfig(enable_progress_bar=False, accelerator="cpu", logger="none",
                         enable_checkpointing=False, collapse_check=False,
                         early_stop_patience=None, stall_patience=2)  # fmt: skip
    with pytest.warns(TrainingStalledWarning, match="stopped early at epoch 3"):
        res = T.train(grouped1.subset(np.arange(32)), None, cfg, ex)
    assert len(res.history["train_loss"]) == 3
    assert all(isinstance(v, float) for v in res.history["val_loss"])
    assert res.extras["stopped_epoch"] == 3 and "val_loss" in res.extras["stopped_reason"]
    assert "collapse_check" not in res.extras


def test_normal_training_passes_the_health_checks(trained):
    _, result = trained  # 2 epochs with the default checks on
    assert result.extras["stopped_reason"] is None and result.extras["stopped_epoch"] is None
    stats = result.extras["collapse_check"]
    assert not stats["collapsed"] and stats["epoch"] == 2 and stats["n_groups"] == 16
    assert stats["amp_rel_std"] > 1e-3 and stats["phase_std"] > 1e-3
    # the falling loss of those 2 epochs would not count as a stall even at patience 1
    assert not check_stall(result.history["val_loss"], patience=1, rtol=1e-5).stalled


def test_on_epoch_end_hook_sees_the_model_and_can_stop(grouped1, tiny_config, quiet):
    from ptychopinn.tf.workflow import predict

    seen = []

    def hook(epoch, model):
        seen.append((epoch, predict(model, grouped1.subset(np.arange(2))).shape))
        return epoch >= 1  # stop after the second epoch

    res = T.train(grouped1, None, tiny_config(nepochs=5), quiet, on_epoch_end=hook)
    assert [e for e, _ in seen] == [0, 1]
    assert seen[0][1] == (2, grouped1.N, grouped1.N, 1)
    assert len(res.history["train_loss"]) == 2


def test_progress_is_one_logged_line_per_epoch_when_stdout_is_not_a_terminal(
    grouped1, tiny_config, quiet, monkeypatch, caplog, capsys
):
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    caplog.set_level("INFO", logger="ptychopinn.tf.training")
    capsys.readouterr()
    T.train(grouped1, None, tiny_config(nepochs=2), quiet.replace(enable_progress_bar=True))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "loss " in lines[0] and lines[0].endswith(" s)")
    out = capsys.readouterr().out
    assert "\r" not in out and "\x08" not in out and "Epoch 1/2" not in out  # no Keras bar
