"""Lightning orchestration: the LightningModule, the DataModule and the Trainer factory.

Everything the run needs is passed in (``TrainingConfig``, ``ExecutionConfig``,
``GroupedData``); nothing is read from global state.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

import torch
from ptychopinn.config import ExecutionConfig, TrainingConfig
from ptychopinn.core.history import LR, History, epoch_line, loss_terms, record_epoch
from ptychopinn.data.files import atomic_write
from ptychopinn.data.grouping import GroupedData
from ptychopinn.data.health import (
    MAX_CHECK_GROUPS,
    CollapseVerdict,
    check_collapse,
    check_stall,
    fixed_batch_indices,
    result_extras,
)
from torch.utils.data import DataLoader, Dataset, Sampler

from . import physics
from .errors import (
    DataError,
    NonFiniteLossError,
    TrainingCollapsedError,
    TrainingStalledWarning,
    UnsupportedOptionError,
)
from .model import ForwardOutput, PtychoPINN

__all__ = [
    "EpochHook",
    "EpochLines",
    "GroupBatchSampler",
    "GroupedDataset",
    "HealthCallback",
    "HistoryCallback",
    "PtychoDataModule",
    "PtychoLightningModule",
    "build_trainer",
    "compute_loss",
]


# --------------------------------------------------------------------------- data
class GroupedDataset(Dataset):
    """Batch-indexed view of ``GroupedData``: ``ds[indices]`` returns one channels-first batch.

    Items: ``x`` (b, C, N, N) float32 (channels-last memory), ``relative`` (b, 2, C)
    float32 and, when ground truth exists, ``y`` (b, C, N, N) complex64.
    """

    def __init__(self, data: GroupedData) -> None:
        self.X = torch.from_numpy(np.ascontiguousarray(data.X, dtype=np.float32))
        self.relative = torch.from_numpy(
            np.ascontiguousarray(data.coords_relative[:, 0], dtype=np.float32)
        )
        self.Y = (
            torch.from_numpy(np.ascontiguousarray(data.Y, dtype=np.complex64))
            if data.Y is not None
            else None
        )

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitem__(self, indices: Any) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        batch = {
            "x": self.X[idx].permute(0, 3, 1, 2),
            "relative": self.relative[idx],
        }
        if self.Y is not None:
            batch["y"] = self.Y[idx].permute(0, 3, 1, 2)
        return batch


class GroupBatchSampler(Sampler[np.ndarray]):
    """Yields index batches in ``GroupedData.batch_order(shuffle, seed + epoch)`` order.

    This is the order ``GroupedData.batches(batch_size, shuffle, seed + epoch)`` gives,
    so a backend that walks ``batches`` with the same seeds sees the same batches.
    With several processes, rank r takes batches r, r + W, ... and every rank
    gets the same count (trailing batches that cannot be shared are dropped).
    """

    def __init__(
        self,
        data: GroupedData,
        batch_size: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        n_batches = math.ceil(len(data) / batch_size)
        if world_size > n_batches:
            raise DataError(
                f"{len(data)} groups make {n_batches} batches of {batch_size}, fewer than the "
                f"{world_size} processes; lower batch_size or the number of devices"
            )

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of every epoch."""
        self.epoch = epoch

    def _all_batches(self) -> list[np.ndarray]:
        order = self.data.batch_order(self.shuffle, self.seed + self.epoch)
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size) // self.world_size

    def __iter__(self) -> Iterator[np.ndarray]:
        batches = self._all_batches()
        per_rank = len(batches) // self.world_size
        yield from batches[self.rank :: self.world_size][:per_rank]


class PtychoDataModule(pl.LightningDataModule):
    """Train / validation / test loaders over ``GroupedData``.

    The validation set is ``train.split(validation_fraction, seed)``'s held-out part
    (none when it rounds to zero groups); ``test`` is the test set.
    """

    def __init__(
        self,
        train: GroupedData,
        test: GroupedData | None,
        config: TrainingConfig,
        execution: ExecutionConfig,
    ) -> None:
        super().__init__()
        self.config = config
        self.execution = execution
        n_val = round(config.validation_fraction * len(train))
        if n_val > 0 and n_val < len(train):
            self.train_data, self.val_data = train.split(config.validation_fraction, config.seed)
        else:
            self.train_data, self.val_data = train, None
        self.test_data = test

    @property
    def has_validation(self) -> bool:
        """True when a validation split exists."""
        return self.val_data is not None and len(self.val_data) > 0

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _loader(self, data: GroupedData, shuffle: bool, shard: bool) -> DataLoader:
        rank, world = self._rank() if shard else (0, 1)
        sampler = GroupBatchSampler(
            data, self.config.batch_size, shuffle, self.config.seed, rank, world
        )
        ex = self.execution
        return DataLoader(
            GroupedDataset(data),
            sampler=sampler,
            batch_size=None,
            num_workers=ex.num_workers,
            pin_memory=ex.pin_memory,
            persistent_workers=ex.persistent_workers,
            generator=torch.Generator().manual_seed(self.config.seed),
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled (seed + epoch), sharded over processes."""
        return self._loader(self.train_data, shuffle=True, shard=True)

    def val_dataloader(self) -> DataLoader | list:
        """Validation in index order on every process (metrics are identical across ranks)."""
        if not self.has_validation:
            return []
        assert self.val_data is not None
        return self._loader(self.val_data, shuffle=False, shard=False)

    def test_dataloader(self) -> DataLoader | list:
        """The test set in index order."""
        if self.test_data is None or len(self.test_data) == 0:
            return []
        return self._loader(self.test_data, shuffle=False, shard=False)


# --------------------------------------------------------------------------- loss
def compute_loss(
    model: PtychoPINN,
    out: ForwardOutput,
    batch: dict[str, torch.Tensor],
    config: TrainingConfig,
) -> dict[str, torch.Tensor]:
    """Loss terms of METHOD.md §6 for one batch; ``loss`` is the weighted total.

    pinn: ``nll_weight · PoissonNLL(pred, s0·X) + mae_weight · |pred - s0·X|``
    + ``realspace_mae_weight · |O - Y|`` (when Y exists) + ``realspace_weight · TV(O)``.
    supervised: ``|A - |Y|| + |φ - arg Y|`` against the ground-truth patches.
    """
    terms: dict[str, torch.Tensor] = {}
    y = batch.get("y")
    if config.model.model_type == "supervised":
        if y is None:
            raise DataError("model_type='supervised' needs ground-truth patches (GroupedData.Y)")
        y = y[:, : out.amp.shape[1]]
        terms["amp_mae"] = (out.amp - y.abs()).abs().mean()
        terms["phase_mae"] = (out.phase - y.angle()).abs().mean()
        terms["loss"] = terms["amp_mae"] + terms["phase_mae"]
        return terms
    target = batch["x"].float() * model.s0
    total = torch.zeros((), dtype=torch.float32, device=target.device)
    # The terms computed and logged: one policy for both backends (zero weight: neither).
    wanted = loss_terms(config, has_truth=y is not None)
    if "nll" in wanted:
        terms["nll"] = physics.poisson_nll(out.pred_amp, target)
        total = total + config.nll_weight * terms["nll"]
    if "mae" in wanted:
        terms["mae"] = (out.pred_amp - target).abs().mean()
        total = total + config.mae_weight * terms["mae"]
    if "realspace_mae" in wanted and y is not None:
        terms["realspace_mae"] = (out.obj - y[:, : out.obj.shape[1]]).abs().mean()
        total = total + config.realspace_mae_weight * terms["realspace_mae"]
    if "tv" in wanted:
        o = out.obj
        tv = (o[..., 1:, :] - o[..., :-1, :]).abs().mean() + (
            o[..., :, 1:] - o[..., :, :-1]
        ).abs().mean()
        terms["tv"] = tv
        total = total + config.realspace_weight * tv
    terms["loss"] = total
    return terms


# ------------------------------------------------------------------------- module
class PtychoLightningModule(pl.LightningModule):
    """LightningModule around :class:`PtychoPINN` that carries its whole configuration.

    ``config`` is ``TrainingConfig.to_dict()``; with the probe, ``s0``, the
    normalisation factor and ``log_scale`` in the state dict,
    ``PtychoLightningModule.load_from_checkpoint(path, weights_only=True)`` needs
    nothing else.
    """

    def __init__(
        self, config: dict[str, Any], intensity_scale: float = 1.0, norm_factor: float = 1.0
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.training_config = TrainingConfig.from_dict(config)
        tc = self.training_config
        self.model = PtychoPINN(
            tc.model,
            None,
            intensity_scale,
            norm_factor,
            probe_trainable=tc.probe_trainable,
            intensity_scale_trainable=tc.intensity_scale_trainable,
            seed=tc.seed,
        )
        self.model.training_config = tc
        self.compiled: torch.nn.Module | None = None

    def set_probe(self, probe: np.ndarray) -> None:
        """Copy the normalised (N, N) probe into the model."""
        with torch.no_grad():
            self.model.probe.copy_(torch.as_tensor(np.asarray(probe), dtype=torch.complex64))

    def forward(self, x: torch.Tensor, relative: torch.Tensor) -> ForwardOutput:
        """The training path of the wrapped model."""
        net = self.compiled if self.compiled is not None else self.model
        return net(x, relative)

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        out = self(batch["x"], batch["relative"])
        terms = compute_loss(self.model, out, batch, self.training_config)
        loss = terms["loss"]
        if stage == "train" and not torch.isfinite(loss.detach()):
            raise NonFiniteLossError(
                int(self.current_epoch) + 1, int(self.global_step), self._last_checkpoint()
            )
        n = batch["x"].shape[0]
        sync = self.trainer.world_size > 1
        for name, value in terms.items():
            key = f"{stage}_loss" if name == "loss" else f"{stage}_{name}"
            self.log(
                key,
                value.detach(),
                on_step=False,
                on_epoch=True,
                batch_size=n,
                sync_dist=sync,
                prog_bar=name == "loss",
            )
        return loss

    def _last_checkpoint(self) -> Path | None:
        cb = self.trainer.checkpoint_callback if self._trainer is not None else None
        path = getattr(cb, "last_model_path", "") or getattr(cb, "best_model_path", "")
        return Path(path) if path and Path(path).exists() else None

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """One optimisation step; a non-finite loss stops training with NonFiniteLossError."""
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Validation loss (the monitored ``val_loss``)."""
        return self._step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Test-set loss."""
        return self._step(batch, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        """Adam + ReduceLROnPlateau on the monitored loss (METHOD.md §6)."""
        tc = self.training_config
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=tc.learning_rate)
        # Read as Keras reads it, so both backends schedule alike: an improvement is a
        # drop of more than 1e-4 (absolute), and the rate falls at the lr_patience-th
        # epoch without one (torch counts patience + 1 bad epochs, relative thresholds).
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode="min",
            factor=tc.lr_factor,
            patience=max(tc.lr_patience - 1, 0),
            threshold=1e-4,
            threshold_mode="abs",
            min_lr=tc.min_lr,
        )
        monitor = getattr(self, "monitor", "train_loss")
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "monitor": monitor, "interval": "epoch"},
        }


# ------------------------------------------------------------------------ trainer
class EpochHook(Callback):
    """Calls a caller's ``on_epoch_end(epoch, model)`` (epoch from 0, the wrapped
    :class:`PtychoPINN`) after every training epoch; a True return stops training."""

    def __init__(self, hook: Callable[[int, Any], bool | None]) -> None:
        self.hook = hook

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Call the hook; stop the trainer when it returns True."""
        if self.hook(int(trainer.current_epoch), pl_module.model):
            trainer.should_stop = True


class HistoryCallback(Callback):
    """Per-epoch history of the logged losses and the learning rate (saved in checkpoints),
    under the ``ptychopinn.core.history`` names."""

    def __init__(self) -> None:
        self.history: History = {}

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Record every epoch-level metric once per epoch."""
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        if trainer.optimizers:
            metrics[LR] = float(trainer.optimizers[0].param_groups[0]["lr"])
        record_epoch(self.history, metrics)

    def state_dict(self) -> dict[str, Any]:
        """The history so far (restored on resume)."""
        return {"history": {k: list(v) for k, v in self.history.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the history of a resumed run."""
        self.history = {k: list(v) for k, v in state_dict.get("history", {}).items()}


class HealthCallback(Callback):
    """Collapse and stall checks after every training epoch (policy: ``ptychopinn.data.health``).

    Collapse: the network of the inference path (amplitude and phase of every channel,
    before merging; eval mode, float32) on a fixed batch of at most 16 groups of the
    datamodule's validation data (training data without a split) -- one small forward
    pass per epoch; a constant object raises
    :class:`TrainingCollapsedError` naming the epoch, the measured spread and what to
    try. Stall: ``monitor`` moved by at most ``stall_tolerance`` (relative) over
    ``stall_patience`` epochs -- training stops after this epoch with a
    :class:`TrainingStalledWarning`, and ``stopped_reason``/``stopped_epoch`` say why.
    Decisions are reduced over processes, so every rank stops together.
    """

    def __init__(
        self,
        monitor: str,
        *,
        collapse_check: bool = True,
        stall_patience: int | None = None,
        stall_tolerance: float = 1e-5,
        max_groups: int = MAX_CHECK_GROUPS,
    ) -> None:
        self.monitor = monitor
        self.collapse_check = collapse_check
        self.stall_patience = stall_patience
        self.stall_tolerance = stall_tolerance
        self.max_groups = max_groups
        self.losses: list[float] = []
        self.stopped_reason: str | None = None
        self.stopped_epoch: int | None = None
        self.last_collapse: CollapseVerdict | None = None
        self._batch: dict[str, torch.Tensor] | None = None

    @classmethod
    def from_execution(cls, execution: ExecutionConfig, monitor: str) -> HealthCallback | None:
        """The callback ``execution`` asks for (None when both checks are off)."""
        if not execution.collapse_check and execution.stall_patience is None:
            return None
        return cls(
            monitor,
            collapse_check=execution.collapse_check,
            stall_patience=execution.stall_patience,
            stall_tolerance=execution.stall_tolerance,
        )

    def extras(self) -> dict[str, Any]:
        """``TrainResult.extras`` entries (see ``ptychopinn.data.health.result_extras``)."""
        return result_extras(self.stopped_reason, self.stopped_epoch, self.last_collapse)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Fix the probe batch: evenly spaced groups of the validation (else training) data."""
        self._batch = None
        if not self.collapse_check:
            return
        dm = trainer.datamodule
        data = getattr(dm, "val_data", None)
        if not isinstance(data, GroupedData) or len(data) == 0:
            data = getattr(dm, "train_data", None)
        if not isinstance(data, GroupedData) or len(data) == 0:
            return  # no GroupedData to look at (custom loaders): nothing to check
        sub = data.subset(fixed_batch_indices(len(data), self.max_groups))
        batch = GroupedDataset(sub)[np.arange(len(sub))]
        self._batch = {"x": batch["x"]}

    def _collapse(self, pl_module: pl.LightningModule, epoch: int) -> CollapseVerdict | None:
        if self._batch is None:
            return None
        net = pl_module.model
        device = pl_module.device
        was_training = net.training
        net.eval()
        try:
            with torch.no_grad(), torch.autocast(device_type=device.type, enabled=False):
                amp, phase = net.network(net.scaled_input(self._batch["x"].to(device)))
        finally:
            net.train(was_training)
        return check_collapse(
            amp.permute(0, 2, 3, 1).cpu().numpy(),
            phase.permute(0, 2, 3, 1).cpu().numpy(),
            epoch,
            config=pl_module.training_config,
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Run both checks on the epoch just finished (1-based in the messages)."""
        epoch = int(trainer.current_epoch) + 1
        verdict = self._collapse(pl_module, epoch)
        if verdict is not None:
            self.last_collapse = verdict
            if trainer.strategy.reduce_boolean_decision(verdict.collapsed, all=False):
                if verdict.collapsed:
                    raise verdict.error()
                raise TrainingCollapsedError(
                    f"training collapsed at epoch {epoch} on another process; "
                    "see that process's message",
                    epoch=epoch,
                )
        if self.stall_patience is None:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        self.losses.append(float(value))
        stall = check_stall(
            self.losses,
            epoch,
            patience=self.stall_patience,
            rtol=self.stall_tolerance,
            monitor=self.monitor,
            config=pl_module.training_config,
        )
        if trainer.strategy.reduce_boolean_decision(stall.stalled, all=False):
            self.stopped_reason = stall.message or f"stalled at epoch {epoch} on another process"
            self.stopped_epoch = epoch
            trainer.should_stop = True
            if trainer.is_global_zero:
                warnings.warn(self.stopped_reason, TrainingStalledWarning, stacklevel=2)

    def state_dict(self) -> dict[str, Any]:
        """The monitored losses so far (restored on resume)."""
        return {"losses": list(self.losses)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the monitored losses of a resumed run."""
        self.losses = [float(v) for v in state_dict.get("losses", [])]


def _logger(execution: ExecutionConfig, output_dir: Path) -> Any:
    """The logger chosen by ``execution.logger``; optional ones are imported only when chosen."""
    kind = execution.logger
    if kind == "none":
        return False
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(save_dir=str(output_dir), name="logs")
    if kind == "tensorboard":
        if importlib.util.find_spec("tensorboard") is None and (
            importlib.util.find_spec("tensorboardX") is None
        ):
            raise UnsupportedOptionError(
                "ExecutionConfig.logger='tensorboard' needs the tensorboard package; install it "
                "with `pip install tensorboard` or choose logger='csv'"
            )
        from lightning.pytorch.loggers import TensorBoardLogger

        return TensorBoardLogger(save_dir=str(output_dir), name="logs")
    if kind == "mlflow":
        if importlib.util.find_spec("mlflow") is None:
            raise UnsupportedOptionError(
                "ExecutionConfig.logger='mlflow' needs the mlflow package; install it with "
                "`pip install mlflow` or choose logger='csv'"
            )
        from lightning.pytorch.loggers import MLFlowLogger

        return MLFlowLogger(tracking_uri=(output_dir / "mlruns").resolve().as_uri())
    raise UnsupportedOptionError(
        f"ExecutionConfig.logger={kind!r}: expected csv, tensorboard, mlflow or none"
    )


def _strategy(execution: ExecutionConfig) -> Any:
    if execution.strategy == "mirrored":
        raise UnsupportedOptionError(
            "ExecutionConfig.strategy='mirrored' is a TensorFlow strategy; the PyTorch backend "
            "supports auto, single_device, ddp, ddp_spawn, fsdp and deepspeed"
        )
    return execution.strategy


logger = logging.getLogger(__name__)


class EpochLines(Callback):
    """One log line per finished epoch (``logging``, INFO): the progress report where the
    console is not a terminal, instead of Lightning's bar, whose every step would be a
    carriage-return frame in a piped file."""

    def __init__(self, max_epochs: int) -> None:
        self.max_epochs = max_epochs
        self._started = time.perf_counter()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        scalars = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if getattr(v, "numel", lambda: 1)() == 1
        }
        seconds = time.perf_counter() - self._started
        logger.info(epoch_line(trainer.current_epoch + 1, self.max_epochs, scalars, seconds))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written through a temporary file beside the target and a
    rename (``ptychopinn.data.files.atomic_write``): a full disk or a kill during the
    save leaves the previous checkpoint (or none), never a truncated one that looks
    valid. Lightning's own save renames from the system temporary folder, which across
    file systems is a copy that can stop half-way."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(
                f"{type(self).__name__}.save_checkpoint takes no storage_options, "
                f"found {storage_options!r}"
            )
        with atomic_write(Path(path)) as tmp:
            torch.save(checkpoint, tmp)


def build_trainer(
    execution: ExecutionConfig,
    output_dir: Path,
    max_epochs: int,
    monitor: str,
    extra_callbacks: list[Callback] | None = None,
) -> pl.Trainer:
    """A Trainer configured only from ``execution`` (plus where to write and how long to run).

    Checkpoints go to ``output_dir/checkpoints`` (best on ``monitor`` and ``last.ckpt``);
    a :class:`HealthCallback` runs the collapse/stall checks ``execution`` asks for.
    """
    callbacks: list[Callback] = list(extra_callbacks or [])
    # Lightning's bar writes to stdout; where that is not a terminal, one line per epoch.
    progress_bar = execution.enable_progress_bar and sys.stdout.isatty()
    if execution.enable_progress_bar and not progress_bar:
        callbacks.append(EpochLines(max_epochs))
    health = HealthCallback.from_execution(execution, monitor)
    if health is not None:
        callbacks.append(health)
    if execution.enable_checkpointing:
        callbacks.append(
            ModelCheckpoint(
                dirpath=str(output_dir / "checkpoints"),
                filename="best-{epoch:03d}",
                monitor=monitor,
                mode="min",
                save_top_k=1,
                save_last=True,
            )
        )
    if execution.early_stop_patience is not None:
        callbacks.append(
            EarlyStopping(
                monitor=monitor,
                patience=execution.early_stop_patience,
                mode="min",
                check_finite=False,
            )
        )
    devices: Any = execution.devices
    if isinstance(devices, tuple):
        devices = list(devices)
    return pl.Trainer(
        accelerator=execution.accelerator,
        devices=devices,
        num_nodes=execution.num_nodes,
        strategy=_strategy(execution),
        precision=execution.precision,
        deterministic=execution.deterministic,
        gradient_clip_val=execution.gradient_clip_val,
        gradient_clip_algorithm=execution.gradient_clip_algorithm,
        accumulate_grad_batches=execution.accumulate_grad_batches,
        logger=_logger(execution, output_dir),
        enable_progress_bar=progress_bar,
        enable_checkpointing=execution.enable_checkpointing,
        enable_model_summary=False,
        max_epochs=max_epochs,
        default_root_dir=str(output_dir),
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        log_every_n_steps=1,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
    )
