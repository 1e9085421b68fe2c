"""Configuration, validation, precedence, the layer plan and the backend registry for ptychopinn.

Imports only the standard library and PyYAML: importing this package never imports
numpy, torch or tensorflow.
"""

from importlib.metadata import version as _version
from typing import Any

from . import backend as _backend
from .backend import available_backends, get_backend
from .configs import ExecutionConfig, InferenceConfig, ModelConfig, TrainingConfig
from .errors import (
    BackendNotInstalledError,
    BadInput,
    ConfigError,
    ConfigFileError,
    UnknownBackendError,
    UnknownKeyError,
)
from .layers import LayerPlan, LayerSpec, layer_plan
from .loading import SECTIONS, load_config, parse_overrides, save_config, to_file_dict
from .serialization import from_dict, to_dict, to_legacy_dict

__version__ = _version("ptycho-config")

__all__ = [
    "SECTIONS",
    "BackendNotInstalledError",
    "BadInput",
    "ConfigError",
    "ConfigFileError",
    "ExecutionConfig",
    "InferenceConfig",
    "LayerPlan",
    "LayerSpec",
    "ModelConfig",
    "TrainingConfig",
    "UnknownBackendError",
    "UnknownKeyError",
    "__version__",
    "available_backends",
    "from_dict",
    "get_backend",
    "layer_plan",
    "load_config",
    "parse_overrides",
    "save_config",
    "to_dict",
    "to_file_dict",
    "to_legacy_dict",
]


def __getattr__(name: str) -> Any:
    """``Backend`` is a deprecated alias of ``ptychopinn.core.Backend`` (see ``.backend``)."""
    if name == "Backend":
        return _backend.__getattr__(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
