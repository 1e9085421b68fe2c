"""Lightning orchestration: determinism, resume, checkpoints, loggers, data loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
    a = train(grouped, None, make_config(tmp_path / "a"), ex, save=False)
    b = train(grouped, None, make_config(tmp_path / "b"), ex, save=False)
    assert _same_weights(a.model, b.model)
    assert a.history["train_loss"] == b.history["train_loss"]
    assert len(a.history["train_loss"]) == 2
    fresh = PtychoLightningModule(make_config(tmp_path / "c").to_dict()).model
    assert not _same_weights(a.model, fresh)


def test_resume_from_last_equals_uninterrupted(grouped, tmp_path, make_config, make_execution):
    ex = make_execution(logger="none")
    full = train(grouped, None, make_config(tmp_path / "full", nepochs=3), ex, save=False)
    part_cfg = make_config(tmp_path / "part", nepochs=2)
    train(grouped, None, part_cfg, ex, save=False)
    resumed = train(grouped, None, make_config(tmp_path / "part", nepochs=3), ex,
                    ckpt_path="last", save=False)  # fmt: skip
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


def test_bf16_mixed_trains(grouped, tmp_path, make_config, make_execution):
    ex = make_execution(precision="bf16-mixed", logger="none", enable_checkpointing=False,
                        gradient_clip_val=1.0, accumulate_grad_batches=2)  # fmt: skip
    res = train(grouped, None, make_config(tmp_path, nepochs=1), ex, save=False)
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
    with pytest.raises(RuntimeError, match="pip install mlflow"):
        build_trainer(make_execution(logger="mlflow"), tmp_path, 1, "train_loss")
    with pytest.raises(RuntimeError, match="pip install tensorboard"):
        build_trainer(make_execution(logger="tensorboard"), tmp_path, 1, "train_loss")
    with pytest.raises(ValueError, match="TensorFlow strategy"):
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
