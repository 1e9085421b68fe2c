"""What the backends return: :class:`TrainResult` and the ``run_cdi_example`` results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypedDict, TypeVar

import numpy as np

from ptychopinn.data import GroupedData

from .history import History

__all__ = ["CDIResults", "TrainResult"]

ModelT = TypeVar("ModelT")


@dataclass
class TrainResult(Generic[ModelT]):
    """What every backend's ``train`` returns.

    ``model`` holds the weights after the last epoch (the backend's own model type);
    ``history`` follows :mod:`ptychopinn.core.history` (``train_loss``, ``val_loss``,
    ``test_loss``, ``lr``, named loss terms); ``output_dir`` received logs and
    checkpoints; ``best_checkpoint``/``last_checkpoint`` are the native checkpoints
    (None without checkpointing). ``train`` never writes the bundle: the caller saves
    ``model`` with the backend's ``save_bundle``.
    ``extras`` holds backend details; both backends set ``stopped_reason``,
    ``stopped_epoch`` and (with ``collapse_check``) ``collapse_check``.
    """

    model: ModelT
    history: History
    output_dir: Path
    best_checkpoint: Path | None = None
    last_checkpoint: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class CDIResults(TypedDict, total=False):
    """The ``results`` of ``run_cdi_example``.

    ``backend`` (the backend's name), ``patches`` (B, N, N, 1) complex64 object
    patches of the test data, ``history``, ``train_result``, ``test_data`` (the
    grouped test data); with stitching ``stitched`` (a ``ptychopinn.stitch.Stitched``)
    and, when the test data carries its object, ``metrics``
    (``ptychopinn.stitch.evaluate``) or ``metrics_error`` (why there are none).
    """

    backend: str
    patches: np.ndarray
    history: History
    train_result: TrainResult[Any]
    test_data: GroupedData
    stitched: Any
    metrics: dict[str, Any]
    metrics_error: str
