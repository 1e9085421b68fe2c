"""Configuration, validation, precedence, the layer plan and the backend registry for ptychopinn.

Imports only the standard library and PyYAML: importing this package never imports
numpy, torch or tensorflow.
"""

from importlib.metadata import version as _version

from .configs import ExecutionConfig, InferenceConfig, ModelConfig, TrainingConfig
from .errors import (
    BackendNotInstalledError,
    ConfigError,
    ConfigFileError,
    UnknownBackendError,
    UnknownKeyError,
)
from .layers import LayerPlan, LayerSpec, layer_plan

__version__ = _version("ptycho-config")

__all__ = [
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
    "layer_plan",
]
