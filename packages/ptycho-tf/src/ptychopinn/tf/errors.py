"""The error hierarchy of ptychopinn.tf."""

from __future__ import annotations

from ptychopinn.data.errors import TrainingCollapsedError, TrainingStalledWarning

__all__ = [
    "NonFiniteLossError",
    "TFBackendError",
    "TrainingCollapsedError",
    "TrainingStalledWarning",
    "WeightsError",
]


class TFBackendError(ValueError):
    """Invalid input to the TensorFlow backend (data, weights, bundle)."""


class WeightsError(TFBackendError):
    """Portable or native weights do not fit the model (names, shapes, values)."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; names the epoch and the last good checkpoint."""
