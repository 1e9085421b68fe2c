"""The ``pytorch`` entry point of ``ptychopinn.backends`` (``ptychopinn.core.Backend``)
and this backend's ``run_cdi_example``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ptychopinn.config import ExecutionConfig, TrainingConfig
from ptychopinn.core import Backend, EpochHook, TrainResult, bind_run_cdi_example
from ptychopinn.data import GroupedData

from . import workflow

__all__ = ["TorchBackend", "run_cdi_example"]


class TorchBackend(Backend):
    """PyTorch + Lightning implementation of ``ptychopinn.core.Backend``.

    Stateless: every method forwards to :mod:`ptychopinn.torch.workflow`;
    ``run_cdi_example`` is the protocol's generic one.
    """

    name = "pytorch"

    def train(
        self,
        train: GroupedData,
        test: GroupedData | None,
        config: TrainingConfig,
        execution: ExecutionConfig | None = None,
        *,
        on_epoch_end: EpochHook | None = None,
    ) -> TrainResult[Any]:
        """Train on GroupedData; see :func:`ptychopinn.torch.workflow.train` (``on_epoch_end`` too)."""
        return workflow.train(train, test, config, execution, on_epoch_end=on_epoch_end)

    def predict(self, model: Any, data: GroupedData, batch_size: int | None = None) -> np.ndarray:
        """Object patches (B, N, N, 1) complex64; see :func:`ptychopinn.torch.workflow.predict`."""
        return workflow.predict(model, data, batch_size)

    def save_bundle(self, model: Any, path: str | Path) -> Path:
        """Write ``wts.h5.zip``; see :func:`ptychopinn.torch.workflow.save_bundle`."""
        return workflow.save_bundle(model, path)

    def load_bundle(self, path: str | Path) -> Any:
        """Load a bundle of either backend; see :func:`ptychopinn.torch.workflow.load_bundle`."""
        return workflow.load_bundle(path)

    def export_weights(self, model: Any) -> dict[str, np.ndarray]:
        """Canonical portable weights."""
        return workflow.export_weights(model)

    def import_weights(self, model: Any, weights: Mapping[str, np.ndarray]) -> None:
        """Load canonical portable weights (strict)."""
        workflow.import_weights(model, dict(weights))


run_cdi_example = bind_run_cdi_example(TorchBackend)
