"""The ``tensorflow`` entry point of ``ptychopinn.backends`` (``ptychopinn.core.Backend``)
and this backend's ``run_cdi_example``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.config import ExecutionConfig, TrainingConfig
from ptychopinn.core import Backend, EpochHook, TrainResult, bind_run_cdi_example
from ptychopinn.data import GroupedData

from . import training, weights, workflow

__all__ = ["TensorFlowBackend", "run_cdi_example"]


class TensorFlowBackend(Backend):
    """TensorFlow / Keras 3 implementation of ``ptychopinn.core.Backend``.

    Stateless; ``run_cdi_example`` is the protocol's generic one.
    """

    name = "tensorflow"

    def train(
        self,
        train: GroupedData,
        test: GroupedData | None,
        config: TrainingConfig,
        execution: ExecutionConfig | None = None,
        *,
        on_epoch_end: EpochHook | None = None,
    ) -> TrainResult[Any]:
        """Train a model; see :func:`ptychopinn.tf.training.train` (``on_epoch_end`` hook too)."""
        return training.train(train, test, config, execution, on_epoch_end=on_epoch_end)

    def predict(self, model: Any, data: GroupedData, batch_size: int | None = None) -> np.ndarray:
        """Object patches (B, N, N, 1) complex64; see :func:`ptychopinn.tf.workflow.predict`."""
        return workflow.predict(model, data, batch_size)

    def save_bundle(self, model: Any, path: str | Path) -> Path:
        """Write ``wts.h5.zip``; see :func:`ptychopinn.tf.workflow.save_bundle`."""
        return workflow.save_bundle(model, path)

    def load_bundle(self, path: str | Path) -> Any:
        """Read a bundle of either backend; see :func:`ptychopinn.tf.workflow.load_bundle`."""
        return workflow.load_bundle(path)

    def export_weights(self, model: Any) -> dict[str, np.ndarray]:
        """Canonical portable weights; see :func:`ptychopinn.tf.weights.export_weights`."""
        return weights.export_weights(workflow._as_model(model))

    def import_weights(self, model: Any, weights_: dict[str, np.ndarray]) -> None:
        """Set canonical portable weights; see :func:`ptychopinn.tf.weights.import_weights`."""
        weights.import_weights(workflow._as_model(model), weights_)


run_cdi_example = bind_run_cdi_example(TensorFlowBackend)
