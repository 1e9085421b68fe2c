"""TensorFlow / Keras 3 backend of ptychopinn.

Public surface (imported lazily, so ``import ptychopinn.tf`` alone does not start
TensorFlow): :func:`train`, :class:`TrainResult`, :func:`predict`,
:func:`save_bundle`, :func:`load_bundle`, :func:`export_weights`,
:func:`import_weights`, :func:`run_cdi_example`, :func:`build_model`,
:class:`PtychoModel` and :class:`TensorFlowBackend`.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import version as _version
from typing import Any

__version__ = _version("ptycho-tf")

_EXPORTS = {
    "train": "training",
    "TrainResult": "training",
    "check_data": "training",
    "predict": "workflow",
    "save_bundle": "workflow",
    "load_bundle": "workflow",
    "run_cdi_example": "backend",
    "export_weights": "weights",
    "import_weights": "weights",
    "build_model": "model",
    "PtychoModel": "model",
    "TensorFlowBackend": "backend",
    "BadInputError": "errors",
    "DataError": "errors",
    "ModelMismatchError": "errors",
    "NonFiniteLossError": "errors",
    "TFBackendError": "errors",
    "UnsupportedOptionError": "errors",
    "WeightsError": "errors",
    "TrainingCollapsedError": "errors",
    "TrainingStalledWarning": "errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ptychopinn.tf' has no attribute {name!r}")
    return getattr(import_module(f"ptychopinn.tf.{module}"), name)
