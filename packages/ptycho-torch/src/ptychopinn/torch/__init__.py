"""PyTorch + Lightning backend of ptychopinn."""

from importlib.metadata import version as _version

__version__ = _version("ptycho-torch")
