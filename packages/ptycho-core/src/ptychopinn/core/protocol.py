"""The typed ``Backend`` protocol, and the registry typed to return it.

The registry itself (entry-point group ``ptychopinn.backends``, install hints) is
``ptychopinn.config.backend``: it needs only the standard library, and the
configuration names the backend. This module re-exports it with :func:`get_backend`
returning a :class:`Backend`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ptychopinn.config import ExecutionConfig, TrainingConfig
from ptychopinn.config import backend as _registry
from ptychopinn.config.backend import ENTRY_POINT_GROUP, available_backends, install_hint
from ptychopinn.data import GroupedData, ScanData

from .results import CDIResults, TrainResult
from .workflow import run_cdi_example

__all__ = [
    "ENTRY_POINT_GROUP",
    "Backend",
    "EpochHook",
    "available_backends",
    "get_backend",
    "install_hint",
]


#: ``on_epoch_end(epoch, model) -> stop?``: the per-epoch hook of :meth:`Backend.train`.
EpochHook = Callable[[int, Any], bool | None]


@runtime_checkable
class Backend(Protocol):
    """What a backend offers. Arrays are NumPy, channels-last (docs/INTERFACES.md).

    ``model`` is the backend's own model type; a :class:`TrainResult` is accepted
    wherever a model is. A backend class subclasses this protocol explicitly
    (``class TorchBackend(Backend)``): that states its conformance to a type checker
    and gives it the generic ``run_cdi_example``.
    """

    name: str

    def train(
        self,
        train: GroupedData,
        test: GroupedData | None,
        config: TrainingConfig,
        execution: ExecutionConfig | None = None,
        *,
        on_epoch_end: EpochHook | None = None,
    ) -> TrainResult[Any]:
        """Train on grouped data; the history follows ``ptychopinn.core.history``.

        ``on_epoch_end(epoch, model)`` (epoch from 0) is called after every training
        epoch with the model being trained (usable with :meth:`predict`); returning
        True stops training after that epoch. ``train`` never writes the bundle: the
        caller saves it (:meth:`save_bundle`).
        """
        ...

    def predict(self, model: Any, data: GroupedData, batch_size: int | None = None) -> np.ndarray:
        """Object patches (B, N, N, 1) complex64 for grouped data (the inference path)."""
        ...

    def save_bundle(self, model: Any, path: str | Path) -> Path:
        """Write the model bundle (``wts.h5.zip``) to ``path`` atomically; return the path."""
        ...

    def load_bundle(self, path: str | Path) -> Any:
        """Read a model bundle of either backend and return the model."""
        ...

    def export_weights(self, model: Any) -> dict[str, np.ndarray]:
        """Every parameter under its canonical name and layout (``LayerPlan.parameter_shapes``)."""
        ...

    def import_weights(self, model: Any, weights: Mapping[str, np.ndarray]) -> None:
        """Set the model's parameters from canonical names and layouts (strict)."""
        ...

    def run_cdi_example(
        self,
        train: ScanData | GroupedData,
        test: ScanData | GroupedData,
        config: TrainingConfig,
        do_stitching: bool = True,
        execution: ExecutionConfig | None = None,
        stitch_crop: int = 20,
    ) -> tuple[np.ndarray | None, np.ndarray | None, CDIResults]:
        """Train, predict on the test scan, optionally stitch: :func:`ptychopinn.core.run_cdi_example`.

        The one implementation every backend inherits by subclassing this protocol.
        """
        return run_cdi_example(self, train, test, config, do_stitching, execution, stitch_crop)


def get_backend(name: str) -> Backend:
    """Load the backend registered under ``name`` (``ptychopinn.config.get_backend``).

    Raises ``UnknownBackendError`` (a ``ValueError``) for an unknown name,
    ``BackendNotInstalledError`` for a known one that is not installed, and
    ``TypeError`` when the registered object does not implement :class:`Backend`.
    """
    backend = _registry.get_backend(name)
    if not isinstance(backend, Backend):
        missing = [m for m in _PROTOCOL_MEMBERS if not hasattr(backend, m)]
        raise TypeError(
            f"the object registered as backend {name!r} ({type(backend).__name__}) does not "
            f"implement ptychopinn.core.Backend: missing {missing}"
        )
    return backend


_PROTOCOL_MEMBERS = (
    "name",
    "train",
    "predict",
    "save_bundle",
    "load_bundle",
    "export_weights",
    "import_weights",
    "run_cdi_example",
)
