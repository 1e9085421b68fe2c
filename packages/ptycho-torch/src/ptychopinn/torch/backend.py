"""The ``pytorch`` entry point of ``ptychopinn.backends`` (the ``Backend`` protocol)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import workflow

__all__ = ["TorchBackend"]


class TorchBackend:
    """PyTorch + Lightning implementation of ``ptychopinn.config.backend.Backend``.

    Stateless: every method forwards to :mod:`ptychopinn.torch.workflow`.
    """

    name = "pytorch"

    def train(
        self, train: Any, test: Any, config: Any, execution: Any = None, *, on_epoch_end: Any = None
    ) -> Any:
        """Train on GroupedData; see :func:`ptychopinn.torch.workflow.train` (``on_epoch_end`` too)."""
        return workflow.train(train, test, config, execution, on_epoch_end=on_epoch_end)

    def predict(self, model: Any, data: Any, batch_size: int | None = None) -> np.ndarray:
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

    def import_weights(self, model: Any, weights: dict[str, Any]) -> None:
        """Load canonical portable weights (strict)."""
        workflow.import_weights(model, weights)

    def run_cdi_example(
        self, train: Any, test: Any, config: Any, do_stitching: bool = True
    ) -> tuple[Any, Any, dict[str, Any]]:
        """Train, predict, stitch; ``results['backend'] == 'pytorch'``."""
        return workflow.run_cdi_example(train, test, config, do_stitching)
