"""The typed Backend protocol and the registry typed to return it."""

import subprocess
import sys
import types
from importlib import metadata

import pytest
from core_fake_backend import NumpyBackend

import ptychopinn.core
from ptychopinn.config import backend as registry
from ptychopinn.core import Backend, get_backend

FAKE_MODULE = "ptychopinn_core_fake_backends"


@pytest.fixture
def registered(monkeypatch):
    module = types.ModuleType(FAKE_MODULE)
    module.NumpyBackend = NumpyBackend
    module.NotABackend = type("NotABackend", (), {"name": "x", "train": lambda self: None})
    monkeypatch.setitem(sys.modules, FAKE_MODULE, module)
    eps = [
        metadata.EntryPoint("pytorch", f"{FAKE_MODULE}:NumpyBackend", registry.ENTRY_POINT_GROUP),
        metadata.EntryPoint("broken", f"{FAKE_MODULE}:NotABackend", registry.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: eps)


def test_get_backend_returns_a_backend(registered):
    backend = get_backend("torch")
    assert isinstance(backend, NumpyBackend) and isinstance(backend, Backend)


def test_get_backend_refuses_objects_that_are_not_backends(registered):
    with pytest.raises(TypeError, match=r"does not implement ptychopinn\.core\.Backend: missing "):
        get_backend("broken")


def test_protocol_rejects_incomplete_objects():
    assert not isinstance(object(), Backend)
    assert isinstance(NumpyBackend(), Backend)


def test_config_alias_is_this_protocol():
    import ptychopinn.config

    with pytest.warns(DeprecationWarning):
        assert ptychopinn.config.Backend is Backend
    with pytest.warns(DeprecationWarning):
        assert registry.Backend is Backend


def test_import_pulls_in_no_deep_learning_framework():
    """Neither the contract nor its conformance kit (``ptychopinn.core.testing``)."""
    code = (
        "import sys, ptychopinn.core, ptychopinn.core.testing\n"
        "print([m for m in ('torch', 'lightning', 'tensorflow', 'keras') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_api_is_exported():
    for name in ptychopinn.core.__all__:
        assert hasattr(ptychopinn.core, name), name
    assert ptychopinn.core.__version__ == "0.1.0"


def test_constants_are_defined_once():
    import ptychopinn.data.physics as reference

    assert ptychopinn.core.LAMBDA_FLOOR is reference.LAMBDA_FLOOR
    assert ptychopinn.core.SUPPORT_THRESHOLD is reference.SUPPORT_THRESHOLD
    assert ptychopinn.core.BUNDLE_NAME == "wts.h5.zip"
