"""The method's shared constants, each defined once.

``SUPPORT_THRESHOLD`` is owned by ``ptychopinn.config.constants`` (the lowest package:
the NumPy reference and ptycho-stitch both compute with it, and stitch cannot see
ptycho-data), ``LAMBDA_FLOOR`` by the NumPy reference ``ptychopinn.data.physics``;
both are re-exported here for the backends. The bundle's names are owned here.
"""

from __future__ import annotations

from ptychopinn.config.constants import SUPPORT_THRESHOLD
from ptychopinn.data.physics import LAMBDA_FLOOR

__all__ = [
    "BUNDLE_NAME",
    "LAMBDA_FLOOR",
    "PORTABLE_MEMBER",
    "PROBE_MEMBER",
    "SUPPORT_THRESHOLD",
]

#: File name of a model bundle inside a training output directory.
BUNDLE_NAME = "wts.h5.zip"
#: Bundle member with every parameter under its canonical name and layout.
PORTABLE_MEMBER = "portable.npz"
#: Bundle member with the normalised probe (N, N) complex64.
PROBE_MEMBER = "probe.npy"
