"""TensorFlow / Keras 3 backend of ptychopinn."""

from importlib.metadata import version as _version

__version__ = _version("ptycho-tf")
