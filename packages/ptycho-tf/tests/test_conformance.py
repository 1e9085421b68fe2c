"""The TensorFlow backend passes the backend conformance kit (``ptychopinn.core.testing``)."""

from __future__ import annotations

from ptychopinn.core.testing import BackendConformance
from ptychopinn.tf import TensorFlowBackend


class TestTensorFlowConformance(BackendConformance):
    backend_class = TensorFlowBackend
