"""The ptychopinn application: command line, backend dispatch, demo, reports."""

from importlib.metadata import version as _version

__version__ = _version("ptychopinn-app")
