"""The application's NumPy test backend passes the backend conformance kit."""

from __future__ import annotations

from app_numpy_backend import NumpyBackend

from ptychopinn.core.testing import BackendConformance


class TestNumpyBackendConformance(BackendConformance):
    backend_class = NumpyBackend
