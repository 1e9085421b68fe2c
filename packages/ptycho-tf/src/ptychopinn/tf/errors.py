"""The errors of ptychopinn.tf: the backend-neutral ones of ``ptychopinn.core.errors``.

Both backends raise the same classes for the same condition. The names this package
used before ptycho-core are aliases: ``TFBackendError`` is ``BadInputError`` (every
input error of the backend), ``WeightsError`` is ``ModelMismatchError``.
"""

from __future__ import annotations

from ptychopinn.core.errors import (
    BadInputError,
    DataError,
    ModelMismatchError,
    NonFiniteLossError,
    TrainingCollapsedError,
    TrainingStalledWarning,
    UnsupportedOptionError,
)

__all__ = [
    "BadInputError",
    "DataError",
    "ModelMismatchError",
    "NonFiniteLossError",
    "TFBackendError",
    "TrainingCollapsedError",
    "TrainingStalledWarning",
    "UnsupportedOptionError",
    "WeightsError",
]

TFBackendError = BadInputError
WeightsError = ModelMismatchError
