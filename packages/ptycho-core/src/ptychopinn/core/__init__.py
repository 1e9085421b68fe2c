"""The backend-neutral contract of ptychopinn (ptycho-core).

One typed :class:`Backend` protocol, one :class:`TrainResult`, one history schema
(:mod:`ptychopinn.core.history`), the errors every backend raises for the same
condition (:mod:`ptychopinn.core.errors`), the shared constants and the generic
workflow (:func:`run_cdi_example`, :func:`stitch_at_group_centres`). Imports no
deep-learning framework: numpy, ptycho-config, ptycho-data and ptycho-stitch only.
"""

from importlib.metadata import version as _version

from ptychopinn.core import bundle, history
from ptychopinn.core.constants import (
    BUNDLE_NAME,
    LAMBDA_FLOOR,
    PORTABLE_MEMBER,
    PROBE_MEMBER,
    SUPPORT_THRESHOLD,
)
from ptychopinn.core.errors import (
    BadInput,
    BadInputError,
    DataError,
    ModelMismatchError,
    NonFiniteLossError,
    PtychoError,
    TrainingCollapsedError,
    TrainingStalledWarning,
    UnsupportedOptionError,
)
from ptychopinn.core.history import History, HistoryError, check_history, loss_terms
from ptychopinn.core.protocol import Backend, EpochHook, available_backends, get_backend
from ptychopinn.core.results import CDIResults, TrainResult
from ptychopinn.core.workflow import (
    bind_run_cdi_example,
    check_data,
    group_input,
    run_cdi_example,
    stitch_at_group_centres,
    stitch_phase_weight,
)

__version__ = _version("ptycho-core")

__all__ = [
    "BUNDLE_NAME",
    "LAMBDA_FLOOR",
    "PORTABLE_MEMBER",
    "PROBE_MEMBER",
    "SUPPORT_THRESHOLD",
    "Backend",
    "BadInput",
    "BadInputError",
    "CDIResults",
    "DataError",
    "EpochHook",
    "History",
    "HistoryError",
    "ModelMismatchError",
    "NonFiniteLossError",
    "PtychoError",
    "TrainResult",
    "TrainingCollapsedError",
    "TrainingStalledWarning",
    "UnsupportedOptionError",
    "__version__",
    "available_backends",
    "bind_run_cdi_example",
    "bundle",
    "check_data",
    "check_history",
    "get_backend",
    "group_input",
    "history",
    "loss_terms",
    "run_cdi_example",
    "stitch_at_group_centres",
    "stitch_phase_weight",
]
