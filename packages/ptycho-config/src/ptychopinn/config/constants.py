"""Numeric constants of the method that more than one package computes with.

Defined here, in the lowest package, so that the NumPy reference (``ptycho-data``),
stitching (``ptycho-stitch``) and, through ``ptychopinn.core.constants``, both
backends share one definition. Standard library only.
"""

from __future__ import annotations

__all__ = ["SUPPORT_THRESHOLD"]

SUPPORT_THRESHOLD = 1e-6
"""Pixels whose summed (shifted) support is below this are uncovered and set to 0,
never divided: the merge of METHOD.md §3 and the stitching canvas alike."""
