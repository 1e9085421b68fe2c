"""Data contracts, file formats, simulation, grouping and the NumPy reference physics for ptychopinn."""

from importlib.metadata import version as _version

__version__ = _version("ptycho-data")
