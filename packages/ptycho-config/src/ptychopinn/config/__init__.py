"""Configuration, validation, precedence, the layer plan and the backend registry for ptychopinn.

Imports only the standard library and PyYAML: importing this package never imports
numpy, torch or tensorflow.
"""

from importlib.metadata import version as _version

from .backend import Backend, available_backends, get_backend
from .configs import ExecutionConfig, InferenceConfig, ModelConfig, TrainingConfig
from .errors import (
    BackendNotInstalledError,
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
    "Backend",
    "BackendNotInstalledError",
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
