"""Stitching of patches into object images, alignment and image-quality metrics for ptychopinn.

Public surface: :func:`reassemble`, :class:`Canvas`, :class:`Stitched`,
:func:`canvas_geometry`, :func:`stitch_grid`, :func:`evaluate` (:func:`evaluate_if_possible`) and the metric and
alignment helpers re-exported below. See the package README for conventions.
"""

from importlib.metadata import version as _version

from ptychopinn.stitch.alignment import (
    apply_shift,
    overlay,
    register,
    remove_phase_plane,
    scale_amplitude,
)
from ptychopinn.stitch.canvas import (
    SUPPORT_THRESHOLD,
    Canvas,
    Stitched,
    canvas_geometry,
    reassemble,
)
from ptychopinn.stitch.errors import StitchError
from ptychopinn.stitch.evaluation import evaluate, evaluate_if_possible, measure
from ptychopinn.stitch.grid import stitch_grid
from ptychopinn.stitch.metrics import (
    FRCResult,
    frc,
    mae,
    ms_ssim,
    mse,
    psnr,
    psnr_legacy,
    ssim,
)

__version__ = _version("ptycho-stitch")

__all__ = [
    "SUPPORT_THRESHOLD",
    "Canvas",
    "FRCResult",
    "StitchError",
    "Stitched",
    "__version__",
    "apply_shift",
    "canvas_geometry",
    "evaluate",
    "evaluate_if_possible",
    "frc",
    "mae",
    "measure",
    "ms_ssim",
    "mse",
    "overlay",
    "psnr",
    "psnr_legacy",
    "reassemble",
    "register",
    "remove_phase_plane",
    "scale_amplitude",
    "ssim",
    "stitch_grid",
]
