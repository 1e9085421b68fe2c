"""The backend registry: unknown names, uninstalled backends, loading, no stray imports."""

import importlib.util
import subprocess
import sys
import types
import warnings
from importlib import metadata

import pytest

from ptychopinn.config import (
    BackendNotInstalledError,
    BadInput,
    UnknownBackendError,
    available_backends,
    get_backend,
)
from ptychopinn.config import backend as registry

GROUP = "ptychopinn.backends"


def fake_entry_points(monkeypatch, **targets):
    eps = [metadata.EntryPoint(name, value, GROUP) for name, value in targets.items()]
    monkeypatch.setattr(
        registry.metadata, "entry_points", lambda group: [e for e in eps if e.group == group]
    )


class DummyBackend:
    name = "dummy"

    def train(self, train, test, config, execution=None):
        return "trained"

    def predict(self, model, data, batch_size=None):
        return data

    def save_bundle(self, model, path):
        return path

    def load_bundle(self, path):
        return path

    def export_weights(self, model):
        return {}

    def import_weights(self, model, weights):
        return None

    def run_cdi_example(self, train, test, config, do_stitching=True):
        return None, None, {"backend": self.name}


DUMMY_INSTANCE = DummyBackend()
FAKE_MODULE = "ptychopinn_fake_backends"


@pytest.fixture
def fake_module(monkeypatch):
    """An importable module holding the dummy backends (the test module's own name may not be)."""
    module = types.ModuleType(FAKE_MODULE)
    module.DummyBackend = DummyBackend
    module.DUMMY_INSTANCE = DUMMY_INSTANCE
    monkeypatch.setitem(sys.modules, FAKE_MODULE, module)
    return FAKE_MODULE


def test_unknown_name_is_a_value_error_listing_valid_names(monkeypatch):
    fake_entry_points(monkeypatch)
    with pytest.raises(ValueError) as info:
        get_backend("nope")
    assert isinstance(info.value, UnknownBackendError)
    assert "unknown backend 'nope'" in str(info.value)
    assert "valid backends: pytorch, tensorflow" in str(info.value)


def test_unknown_name_suggests_the_closest(monkeypatch, fake_module):
    fake_entry_points(monkeypatch, extra=f"{fake_module}:DummyBackend")
    with pytest.raises(UnknownBackendError, match="did you mean 'pytorch'") as info:
        get_backend("pytorh")
    assert "valid backends: extra, pytorch, tensorflow" in str(info.value)


def test_get_backend_nope_in_the_real_environment():
    with pytest.raises(ValueError, match="unknown backend 'nope'"):
        get_backend("nope")


@pytest.mark.parametrize(
    ("name", "display", "dist", "extra"),
    [
        ("pytorch", "PyTorch", "ptycho-torch", "torch"),
        ("torch", "PyTorch", "ptycho-torch", "torch"),
        ("tensorflow", "TensorFlow", "ptycho-tf", "tf"),
        ("TF", "TensorFlow", "ptycho-tf", "tf"),
    ],
)
def test_known_but_not_installed_is_a_runtime_error_with_install_command(
    monkeypatch, name, display, dist, extra
):
    fake_entry_points(monkeypatch)  # no backend registered
    with pytest.raises(RuntimeError) as info:
        get_backend(name)
    message = str(info.value)
    assert isinstance(info.value, BackendNotInstalledError)
    assert f"{display} backend selected" in message
    assert f"pip install {dist}" in message
    assert f"uv add {dist}" in message
    assert f"pip install 'ptychopinn-app[{extra}]'" in message


def test_registered_but_import_fails_is_a_runtime_error(monkeypatch):
    fake_entry_points(monkeypatch, pytorch="ptychopinn_no_such_module.backend:TorchBackend")
    with pytest.raises(RuntimeError, match="PyTorch backend selected") as info:
        get_backend("pytorch")
    assert "pip install ptycho-torch" in str(info.value)
    assert "ModuleNotFoundError" in str(info.value)
    assert isinstance(info.value.__cause__, ImportError)


def test_third_party_backend_import_failure(monkeypatch):
    fake_entry_points(monkeypatch, jax="ptychopinn_no_such_module:JaxBackend")
    with pytest.raises(BackendNotInstalledError, match="backend 'jax' is registered but importing"):
        get_backend("jax")


def test_a_class_is_instantiated_and_an_object_is_returned_as_is(monkeypatch, fake_module):
    fake_entry_points(
        monkeypatch,
        pytorch=f"{fake_module}:DummyBackend",
        tensorflow=f"{fake_module}:DUMMY_INSTANCE",
    )
    torch_backend = get_backend("pytorch")
    assert isinstance(torch_backend, DummyBackend)
    assert get_backend("tensorflow") is DUMMY_INSTANCE
    assert available_backends() == ("pytorch", "tensorflow")


def test_available_backends_does_not_import_them(monkeypatch):
    fake_entry_points(monkeypatch, pytorch="ptychopinn_no_such_module:X")
    assert available_backends() == ("pytorch",)


def test_registry_errors_are_bad_input():
    # The application maps the BadInput marker to exit code 2.
    assert issubclass(BackendNotInstalledError, BadInput)
    assert issubclass(BackendNotInstalledError, RuntimeError)
    assert issubclass(UnknownBackendError, BadInput) and issubclass(UnknownBackendError, ValueError)


def test_backend_protocol_is_a_deprecated_alias_of_ptycho_core():
    import ptychopinn.config as config

    with pytest.warns(DeprecationWarning, match=r"ptychopinn\.core\.Backend"):
        if importlib.util.find_spec("ptychopinn.core") is None:
            with pytest.raises(ImportError, match="install ptycho-core"):
                config.Backend  # noqa: B018
        else:
            from ptychopinn.core import Backend

            assert config.Backend is Backend
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not hasattr(config, "NoSuchName")
        assert not hasattr(registry, "NoSuchName")


def test_get_backend_imports_only_the_backend_asked_for():
    code = (
        "import sys\n"
        "from importlib import metadata\n"
        "from ptychopinn.config import backend as b\n"
        "EP = metadata.EntryPoint\n"
        "eps = [EP('pytorch', 'json:JSONDecoder', b.ENTRY_POINT_GROUP),\n"
        "       EP('tensorflow', 'tomllib:loads', b.ENTRY_POINT_GROUP)]\n"
        "b.metadata.entry_points = lambda group: eps\n"
        "b.get_backend('pytorch')\n"
        "print('json' in sys.modules, 'tomllib' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "False"]
