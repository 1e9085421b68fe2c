"""PyTorch + Lightning backend of ptychopinn.

Public surface (the same as the TensorFlow backend's): :func:`train`, :func:`predict`,
:func:`save_bundle`, :func:`load_bundle`, :func:`export_weights`,
:func:`import_weights`, :func:`run_cdi_example`, the network :class:`PtychoPINN`
and the :class:`TorchBackend` entry point. Lightning is imported only by
:func:`train` (``ptychopinn.torch.training``).
"""

from importlib.metadata import version as _version

from .backend import TorchBackend, run_cdi_example
from .errors import (
    BadInputError,
    DataError,
    ModelMismatchError,
    NonFiniteLossError,
    TorchBackendError,
    TrainingCollapsedError,
    TrainingStalledWarning,
    UnsupportedOptionError,
)
from .model import PtychoPINN
from .workflow import (
    TrainResult,
    export_weights,
    import_weights,
    load_bundle,
    predict,
    save_bundle,
    train,
)

__version__ = _version("ptycho-torch")

__all__ = [
    "BadInputError",
    "DataError",
    "ModelMismatchError",
    "NonFiniteLossError",
    "PtychoPINN",
    "TorchBackend",
    "TorchBackendError",
    "TrainResult",
    "TrainingCollapsedError",
    "TrainingStalledWarning",
    "UnsupportedOptionError",
    "__version__",
    "export_weights",
    "import_weights",
    "load_bundle",
    "predict",
    "run_cdi_example",
    "save_bundle",
    "train",
]
