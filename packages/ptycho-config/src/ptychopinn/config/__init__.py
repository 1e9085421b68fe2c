"""Configuration, validation, precedence, the layer plan and the backend registry for ptychopinn."""

from importlib.metadata import version as _version

__version__ = _version("ptycho-config")
