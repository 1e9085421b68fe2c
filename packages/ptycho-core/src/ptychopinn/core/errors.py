"""The errors every backend raises for the same condition, under one root.

``PtychoError`` is the root. Errors that mean "the caller's input cannot be used"
derive from :class:`BadInputError`, which carries the ``ptychopinn.config.BadInput``
marker the application maps to exit code 2; they are also ``ValueError``\\ s, as the
backends' input errors always were. Everything else (a training run that failed) is
exit code 1.

The training-health errors of ``ptychopinn.data.health`` (``TrainingCollapsedError``,
``TrainingStalledWarning``) stay in ptycho-data, where the policy lives, and are
re-exported here.
"""

from __future__ import annotations

from pathlib import Path

from ptychopinn.config.errors import BadInput
from ptychopinn.data.errors import TrainingCollapsedError, TrainingStalledWarning

__all__ = [
    "BadInput",
    "BadInputError",
    "DataError",
    "ModelMismatchError",
    "NonFiniteLossError",
    "PtychoError",
    "TrainingCollapsedError",
    "TrainingStalledWarning",
    "UnsupportedOptionError",
]


class PtychoError(Exception):
    """Root of the errors a ptychopinn backend raises (``ptychopinn.core`` hierarchy)."""


class BadInputError(PtychoError, BadInput, ValueError):
    """The data, weights, bundle or options given to a backend cannot be used (exit 2)."""


class DataError(BadInputError):
    """Input data is unusable: not GroupedData/ScanData, empty, non-finite values."""


class ModelMismatchError(BadInputError):
    """A model, bundle or weights do not fit the data or the configuration (N, gridsize,
    parameter names, shapes, values). Both backends raise this one class (the TensorFlow
    backend's ``WeightsError`` is an alias of it)."""


class UnsupportedOptionError(BadInputError):
    """A valid configuration option this backend cannot honour (a logger, a strategy, a
    device); the message names the option, the value and what this backend supports."""


class NonFiniteLossError(PtychoError, RuntimeError):
    """Training produced a NaN or infinite loss and stopped.

    ``epoch`` is 1-based; ``step`` the number of optimisation steps taken before the bad
    one (0-based index of the bad step); ``last_checkpoint`` the last good checkpoint on
    disk (None when none was written). Files already on disk are left untouched.
    ``detail`` adds what the backend measured (e.g. the batch's loss values).
    """

    def __init__(
        self,
        epoch: int,
        step: int,
        last_checkpoint: Path | None,
        detail: str | None = None,
    ) -> None:
        self.epoch = int(epoch)
        self.step = int(step)
        self.last_checkpoint = Path(last_checkpoint) if last_checkpoint is not None else None
        self.detail = detail
        where = (
            f"the last good checkpoint is {self.last_checkpoint}"
            if self.last_checkpoint is not None
            else "last good checkpoint: none (no checkpoint was written before it)"
        )
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"non-finite training loss at epoch {self.epoch} (global step {self.step}){extra}; "
            f"training stopped; {where} (files already on disk were left untouched)"
        )
