"""The PyTorch backend passes the backend conformance kit (``ptychopinn.core.testing``)."""

from __future__ import annotations

from ptychopinn.core.testing import BackendConformance
from ptychopinn.torch import TorchBackend


class TestTorchConformance(BackendConformance):
    backend_class = TorchBackend
