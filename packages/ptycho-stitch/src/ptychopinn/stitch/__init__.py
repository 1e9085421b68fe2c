"""Stitching of patches into object images, alignment and image-quality metrics for ptychopinn."""

from importlib.metadata import version as _version

__version__ = _version("ptycho-stitch")
