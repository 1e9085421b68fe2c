"""Lightning orchestration: determinism, resume, checkpoints, loggers, data loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychopinn.core.errors import UnsupportedOptionError
from ptychopinn.torch.training import (
    GroupBatchSampler,
    GroupedDataset,
    PtychoDataModule,
    PtychoLightningModule,
    build_trainer,
)
from ptychopinn.torch.workflow import export_weights, train


def _same_weights(a, b):
    wa, wb = export_weights(a), export_weights(b)
    assert set(wa) == set(wb)
    return all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_batch_order_matches_grouped_data_batches(grouped):
    sampler = GroupBatchSampler(grouped, 8, shuffle=True, seed=5)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        mine = [list(b) for b in sampler]
        theirs = [
            list(b.nn_indices[:, 0]) for b in grouped.batches(8, shuffle=True, seed=5 + epoch)
        ]
        assert [[int(grouped.nn_indices[i, 0]) for i in b] for b in mine] == theirs
    assert len(sampler) == 3


def test_sampler_shards_equally_over_ranks(grouped):
    r0 = list(GroupBatchSampler(grouped, 8, True, 0, rank=0, world_size=2))
    r1 = list(GroupBatchSampler(grouped, 8, True, 0, rank=1, world_size=2))
    assert len(r0) == len(r1) == 1
    assert not set(np.concatenate(r0)) & set(np.concatenate(r1))
    with pytest.raises(ValueError, match="fewer than"):
        GroupBatchSampler(grouped, 64, True, 0, rank=0, world_size=2)


def test_dataset_is_channels_first_with_channels_last_memory(grouped2):
    ds = GroupedDataset(grouped2)
    batch = ds[np.array([0, 3])]
    assert batch["x"].shape == (2, 4, 64, 64)
    assert batch["x"].is_contiguous(memory_format=torch.channels_last)
    assert batch["relative"].shape == (2, 2, 4)
    assert batch["y"].dtype == torch.complex64
    np.testing.assert_array_equal(batch["x"][1, 2].numpy(), grouped2.X[3, :, :, 2])


def test_same_seed_gives_identical_weights(grouped, tmp_path, make_config, make_execution):
    ex = make_execution(logger="none", enable_checkpointing=False)
    a = train(grouped, None, make_config(tmp_path / "a"), ex)
    b = train(grouped, None, make_config(tmp_path / "b"), ex)
    assert _same_weights(a.model, b.model)
    assert a.history["train_loss"] == b.history["train_loss"]
    assert len(a.history["train_loss"]) == 2
    fresh = PtychoLightningModule(make_config(tmp_path / "c").to_dict()).model
    assert not _same_weights(a.model, fresh)


def test_resume_from_last_equals_uninterrupted(grouped, tmp_path, make_config, make_execution):
    ex = make_execution(logger="none")
    full = train(grouped, None, make_config(tmp_path / "full", nepochs=3), ex)
    part_cfg = make_config(tmp_path / "part", nepochs=2)
    train(grouped, None, part_cfg, ex)
    resumed = train(grouped, None, make_config(tmp_path / "part", nepochs=3), ex,
                    ckpt_path="last")  # fmt: skip
    assert _same_weights(full.model, resumed.model)
    assert resumed.history["train_loss"] == full.history["train_loss"]
    assert (tmp_path / "part" / "checkpoints" / "last.ckpt").is_file()
    assert full.best_checkpoint is not None and full.best_checkpoint.is_file()
    with pytest.raises(FileNotFoundError):
        train(grouped, None, make_config(tmp_path / "none"), ex, ckpt_path="last")


def test_checkpoint_reloads_without_arguments(grouped, tmp_path, make_config, make_execution):
    res = train(grouped, grouped, make_config(tmp_path, nepochs=1), make_execution())
    module = PtychoLightningModule.load_from_checkpoint(res.last_checkpoint, weights_only=True)
    assert _same_weights(module.model, res.model)
    assert float(module.model.s0) == pytest.approx(grouped.intensity_scale, rel=1e-6)
    assert float(module.model.norm_factor) == pytest.approx(grouped.norm_factor)
    np.testing.assert_array_equal(module.model.probe.numpy(), grouped.probe)
    assert module.training_config.model.N == 64
    assert "test_loss" in res.history and "val_loss" in res.history
    assert (tmp_path / "logs").is_dir()


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch, make_execution):
    """A save that fails half-way (disk full) leaves the previous checkpoint intact and
    no temporary; the trainer uses this writer for every checkpoint."""
    import errno

    from ptychopinn.torch.training import AtomicCheckpointIO, build_trainer

    io = AtomicCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.ones(3)}, target)
    good = target.read_bytes()

    def full_disk(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        io.save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, target)
    assert target.read_bytes() == good
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]
    monkeypatch.undo()
    trainer = build_trainer(make_execution(), tmp_path, 1, "train_loss")
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_bf16_mixed_trains(grouped, tmp_path, make_config, make_execution):
    ex = make_execution(precision="bf16-mixed", logger="none", enable_checkpointing=False,
                        gradient_clip_val=1.0, accumulate_grad_batches=2)  # fmt: skip
    res = train(grouped, None, make_config(tmp_path, nepochs=1), ex)
    assert np.isfinite(res.history["train_loss"]).all()


def test_no_validation_monitors_train_loss(grouped, tmp_path, make_config, make_execution):
    cfg = make_config(tmp_path, nepochs=1, validation_fraction=0.0)
    res = train(grouped, None, cfg, make_execution(logger="none", early_stop_patience=None))
    assert "val_loss" not in res.history
    assert res.best_checkpoint is not None


def test_loggers_and_strategy_errors(tmp_path, make_execution, monkeypatch):
    import importlib.util

    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        trainer = build_trainer(make_execution(logger="tensorboard"), tmp_path, 1, "train_loss")
        assert type(trainer.logger).__name__ == "TensorBoardLogger"
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda n, *a: None if n in ("mlflow", "tensorboard", "tensorboardX") else real(n, *a),
    )
    # Bad input (exit code 2 in the CLI), the same class as the TensorFlow backend's.
    with pytest.raises(UnsupportedOptionError, match="pip install mlflow"):
        build_trainer(make_execution(logger="mlflow"), tmp_path, 1, "train_loss")
    with pytest.raises(UnsupportedOptionError, match="pip install tensorboard"):
        build_trainer(make_execution(logger="tensorboard"), tmp_path, 1, "train_loss")
    with pytest.raises(UnsupportedOptionError, match="TensorFlow strategy"):
        build_trainer(make_execution(strategy="mirrored"), tmp_path, 1, "train_loss")


def test_datamodule_split_and_loaders(grouped, grouped2, tmp_path, make_config, make_execution):
    dm = PtychoDataModule(grouped, grouped2, make_config(tmp_path), make_execution())
    assert dm.has_validation
    assert len(dm.train_data) + len(dm.val_data) == len(grouped)
    assert len(list(dm.val_dataloader())) == 1
    assert len(list(dm.test_dataloader())) == 3
    dm2 = PtychoDataModule(grouped, None, make_config(tmp_path, validation_fraction=0.0),
                           make_execution())  # fmt: skip
    assert dm2.val_dataloader() == [] and dm2.test_dataloader() == []


# ------------------------------------------------------------------ training health
def _constant_output_init(monkeypatch):
    """Every new PtychoPINN starts collapsed: all convs zero, sigmoid(30) = 1, π·tanh(20) = π."""
    from ptychopinn.torch import model as model_mod

    real = model_mod.PtychoPINN.reset_parameters

    def collapsed(self, seed=0):
        real(self, seed)
        with torch.no_grad():
            for spec in self.plan.conv_layers():
                conv = model_mod._lookup(self, spec.name)
                conv.weight.zero_()
                conv.bias.zero_()
            model_mod._lookup(self, "amp_head").bias.fill_(30.0)
            model_mod._lookup(self, "phase_head").bias.fill_(20.0)

    monkeypatch.setattr(model_mod.PtychoPINN, "reset_parameters", collapsed)


@pytest.mark.parametrize("gridsize", [1, 2])
def test_constant_output_raises_collapse_error(gridsize, request, tmp_path, make_config,
                                               make_execution, monkeypatch):  # fmt: skip
    from ptychopinn.torch.errors import TrainingCollapsedError

    data = request.getfixturevalue("grouped" if gridsize == 1 else "grouped2")
    _constant_output_init(monkeypatch)
    ex = make_execution(logger="none", enable_checkpointing=False)
    cfg = make_config(tmp_path, nepochs=3, gridsize=gridsize)
    with pytest.raises(TrainingCollapsedError, match="collapsed at epoch 1") as info:
        train(data, None, cfg, ex)
    err = info.value
    assert isinstance(err, RuntimeError) and err.epoch == 1
    assert err.verdict.amp_mean == pytest.approx(1.0) and err.verdict.amp_std == 0.0
    assert err.verdict.n_groups == 5 and err.verdict.window == (32, 32)  # the 5 validation groups
    assert err.verdict.channels == gridsize**2
    for fragment in ("learning_rate (now 0.001)", "nll_weight=0", "amp_activation", "batch_size"):
        assert fragment in str(err)


def test_flat_loss_stops_with_a_warning(grouped, tmp_path, make_config, make_execution,
                                        monkeypatch):  # fmt: skip
    from ptychopinn.torch.errors import TrainingStalledWarning

    _constant_output_init(monkeypatch)
    # probe_big=False and a fixed scale: no parameter receives a gradient, the loss is flat
    cfg = make_config(tmp_path, nepochs=5, probe_big=False, intensity_scale_trainable=False)
    ex = make_execution(logger="none", enable_checkpointing=False, collapse_check=False,
                        early_stop_patience=None, stall_patience=2)  # fmt: skip
    with pytest.warns(TrainingStalledWarning, match="stopped early at epoch 3"):
        res = train(grouped, None, cfg, ex)
    assert len(res.history["train_loss"]) == 3
    assert all(isinstance(v, float) for v in res.history["val_loss"])
    assert res.extras["stopped_epoch"] == 3 and "val_loss" in res.extras["stopped_reason"]
    assert "collapse_check" not in res.extras


def test_normal_training_passes_the_health_checks(grouped, tmp_path, make_config, make_execution):
    ex = make_execution(logger="none", enable_checkpointing=False, stall_patience=1)
    res = train(grouped, None, make_config(tmp_path, nepochs=2), ex)
    assert len(res.history["train_loss"]) == 2
    assert res.extras["stopped_reason"] is None and res.extras["stopped_epoch"] is None
    stats = res.extras["collapse_check"]
    assert not stats["collapsed"] and stats["epoch"] == 2
    assert stats["amp_rel_std"] > 1e-3 and stats["phase_std"] > 1e-3


@pytest.mark.parametrize("level", [-99.7, 0.0, 99.7])
def test_plateau_schedule_halves_a_flat_loss_of_either_sign(level):
    """A flat loss is no improvement whatever its sign; lr falls at the lr_patience-th
    flat epoch, as Keras' ReduceLROnPlateau does (it halved +99.7 and kept -99.7 before)."""
    from ptychopinn.config import TrainingConfig

    cfg = TrainingConfig(learning_rate=3e-3, lr_patience=2, lr_factor=0.5, min_lr=1e-5)
    module = PtychoLightningModule(cfg.to_dict())
    setup = module.configure_optimizers()
    opt, sched = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(7):
        sched.step(level)
        lrs.append(opt.param_groups[0]["lr"])
    # epoch 1 sets the best; flat epochs 2-3 -> halve; 4-5 -> halve; 6-7 -> halve
    assert lrs == pytest.approx([3e-3, 3e-3, 1.5e-3, 1.5e-3, 7.5e-4, 7.5e-4, 3.75e-4])


def test_on_epoch_end_hook_sees_the_model_and_can_stop(
    grouped, tmp_path, make_config, make_execution
):
    from ptychopinn.torch.model import PtychoPINN
    from ptychopinn.torch.workflow import predict

    seen = []

    def hook(epoch, model):
        assert isinstance(model, PtychoPINN)
        seen.append((epoch, predict(model, grouped.subset(slice(0, 2))).shape))
        return epoch >= 1  # stop after the second epoch

    cfg = make_config(tmp_path, nepochs=5)
    res = train(grouped, None, cfg, make_execution(logger="none", early_stop_patience=None),
                on_epoch_end=hook)  # fmt: skip
    assert [e for e, _ in seen] == [0, 1]
    assert seen[0][1] == (2, grouped.N, grouped.N, 1)
    assert len(res.history["train_loss"]) == 2


def test_progress_is_one_logged_line_per_epoch_when_stdout_is_not_a_terminal(
    tmp_path, make_execution, monkeypatch, caplog
):
    from types import SimpleNamespace

    from ptychopinn.torch.training import EpochLines

    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    trainer = build_trainer(
        make_execution(enable_progress_bar=True, logger="none"), tmp_path, 3, "train_loss"
    )
    assert trainer.progress_bar_callback is None  # no carriage-return bar in a pipe
    lines = [c for c in trainer.callbacks if isinstance(c, EpochLines)]
    assert len(lines) == 1
    caplog.set_level("INFO", logger="ptychopinn.torch.training")
    fake = SimpleNamespace(
        is_global_zero=True,
        current_epoch=1,
        callback_metrics={"train_loss": torch.tensor(0.5), "val_loss": torch.tensor(0.25)},
    )
    lines[0].on_train_epoch_start(fake, None)
    lines[0].on_train_epoch_end(fake, None)
    assert "epoch 2/3: train_loss 0.5, val_loss 0.25 (" in caplog.text
    # A terminal keeps Lightning's bar; no progress at all adds neither.
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    bar = build_trainer(make_execution(enable_progress_bar=True, logger="none"), tmp_path, 3, "x")
    assert bar.progress_bar_callback is not None
    assert not any(isinstance(c, EpochLines) for c in bar.callbacks)
    off = build_trainer(make_execution(enable_progress_bar=False, logger="none"), tmp_path, 3, "x")
    assert off.progress_bar_callback is None
    assert not any(isinstance(c, EpochLines) for c in off.callbacks)
