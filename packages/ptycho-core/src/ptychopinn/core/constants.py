"""The method's shared constants, each defined once.

The numeric constants of the physics are owned by the NumPy reference
(``ptychopinn.data.physics``, the lowest package that computes with them) and
re-exported here for the backends; the bundle's names are owned here.
"""

from __future__ import annotations

from ptychopinn.data.physics import LAMBDA_FLOOR, SUPPORT_THRESHOLD

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
