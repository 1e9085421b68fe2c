"""Errors raised by the PyTorch backend."""

from __future__ import annotations

from pathlib import Path

from ptychopinn.data.errors import TrainingCollapsedError, TrainingStalledWarning

__all__ = [
    "DataError",
    "ModelMismatchError",
    "NonFiniteLossError",
    "TorchBackendError",
    "TrainingCollapsedError",
    "TrainingStalledWarning",
]


class TorchBackendError(ValueError):
    """Base class of this backend's input errors."""


class DataError(TorchBackendError):
    """Input data is unusable (non-finite values, wrong shape)."""


class ModelMismatchError(TorchBackendError):
    """A model, bundle, or weights do not fit the data or configuration (N, gridsize, names)."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; names the epoch and the last good checkpoint."""

    def __init__(self, epoch: int, step: int, last_checkpoint: Path | None) -> None:
        self.epoch = epoch
        self.step = step
        self.last_checkpoint = last_checkpoint
        where = (
            f"the last good checkpoint is {last_checkpoint}"
            if last_checkpoint
            else "no checkpoint was written before it"
        )
        super().__init__(
            f"non-finite training loss at epoch {epoch} (global step {step}); training stopped; "
            f"{where} (files already on disk were left untouched)"
        )
