"""Stitching of patches into object images, alignment and image-quality metrics for ptychopinn.

Public surface: :func:`reassemble`, :class:`Canvas`, :class:`Stitched`,
:func:`canvas_geometry`, :func:`probe_weight`, :func:`stitch_grid`, :func:`evaluate` (:func:`align`,
:func:`evaluate_aligned`, :func:`evaluate_if_possible`) and the metric and alignment
helpers re-exported below. See the package README for conventions.
"""

from importlib.metadata import version as _version

from ptychopinn.stitch.alignment import (
    Alignment,
    align,
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
    probe_weight,
    reassemble,
)
from ptychopinn.stitch.errors import StitchError
from ptychopinn.stitch.evaluation import (
    PHASE_THRESHOLD,
    evaluate,
    evaluate_aligned,
    evaluate_if_possible,
    measure,
)
from ptychopinn.stitch.grid import stitch_grid
from ptychopinn.stitch.metrics import (
    FRCResult,
    apodise,
    frc,
    mae,
    ms_ssim,
    mse,
    psnr,
    psnr_legacy,
    ssim,
    window_2d,
)

__version__ = _version("ptycho-stitch")

__all__ = [
    "PHASE_THRESHOLD",
    "SUPPORT_THRESHOLD",
    "Alignment",
    "Canvas",
    "FRCResult",
    "StitchError",
    "Stitched",
    "__version__",
    "align",
    "apodise",
    "apply_shift",
    "canvas_geometry",
    "evaluate",
    "evaluate_aligned",
    "evaluate_if_possible",
    "frc",
    "mae",
    "measure",
    "ms_ssim",
    "mse",
    "overlay",
    "probe_weight",
    "psnr",
    "psnr_legacy",
    "reassemble",
    "register",
    "remove_phase_plane",
    "scale_amplitude",
    "ssim",
    "stitch_grid",
    "window_2d",
]
