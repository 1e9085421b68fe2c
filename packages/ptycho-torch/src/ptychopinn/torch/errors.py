"""The errors of ptychopinn.torch: the backend-neutral ones of ``ptychopinn.core.errors``.

Both backends raise the same classes for the same condition; ``TorchBackendError``,
the name this package used before ptycho-core, is an alias of ``BadInputError``.
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
    "TorchBackendError",
    "TrainingCollapsedError",
    "TrainingStalledWarning",
    "UnsupportedOptionError",
]

TorchBackendError = BadInputError
