"""Which backend a command uses when none is asked for: the installed one, else the default.

The registry is faked at its source (``importlib.metadata.entry_points`` for the group
``ptychopinn.backends``), so ptycho-config's registry, ``environment.backend_statuses`` and
the CLI all see the same fake installation; jobs run on the NumPy test backend.
"""

from __future__ import annotations

import importlib.metadata
import json

import pytest

import ptychopinn.app
import ptychopinn.core
from ptychopinn.app import environment
from ptychopinn.config import BackendNotInstalledError

GROUP = "ptychopinn.backends"
VALUES = {
    "tensorflow": "ptychopinn.tf.backend:TensorFlowBackend",
    "pytorch": "ptychopinn.torch.backend:TorchBackend",
}


@pytest.fixture
def installed(monkeypatch):
    """installed(*names): make exactly these backends look registered."""

    def fake(*names: str) -> None:
        real = importlib.metadata.entry_points
        eps = importlib.metadata.EntryPoints(
            importlib.metadata.EntryPoint(n, VALUES.get(n, f"x.{n}:B"), GROUP) for n in names
        )

        def entry_points(**params):
            if params.get("group") == GROUP:
                return eps
            return real(**params)

        monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)

    return fake


@pytest.fixture
def requested(numpy_backend, monkeypatch):
    """The backend names the jobs ask ptychopinn.core.get_backend for (NumPy backend answers)."""
    names: list[str] = []
    inner = ptychopinn.core.get_backend

    def get_backend(name):
        names.append(name)
        return inner(name)

    monkeypatch.setattr(ptychopinn.core, "get_backend", get_backend)
    return names


def test_choose_backend_rules():
    assert environment.choose_backend(["pytorch"]) == environment.BackendChoice(
        "pytorch", "the only installed backend"
    )
    assert environment.choose_backend(["tensorflow"]).name == "tensorflow"
    both = environment.choose_backend(["pytorch", "tensorflow"])
    assert both.name == environment.DEFAULT_BACKEND == "tensorflow"
    assert "default" in both.reason and "pytorch and tensorflow" in both.reason
    # Third-party backends only: the first by name, said so.
    other = environment.choose_backend(["zeta", "alpha"])
    assert other.name == "alpha" and "first by name" in other.reason


def test_no_backend_error_names_both_install_commands():
    with pytest.raises(BackendNotInstalledError) as err:
        environment.choose_backend([])
    message = str(err.value)
    assert "pip install 'ptychopinn-app[torch]'" in message
    assert "pip install 'ptychopinn-app[tf]'" in message


def test_choose_backend_reads_the_registry(installed):
    installed("pytorch")
    assert environment.choose_backend().name == "pytorch"
    installed()
    with pytest.raises(BackendNotInstalledError):
        environment.choose_backend()


@pytest.mark.parametrize(
    ("names", "default", "why"),
    [
        (["pytorch"], "pytorch", "the only installed backend"),
        (["tensorflow"], "tensorflow", "the only installed backend"),
        (["tensorflow", "pytorch"], "tensorflow", "is the default"),
    ],
)
def test_info_shows_the_default_and_why(inproc, installed, names, default, why):
    installed(*names)
    data = json.loads(inproc("info", "--no-devices", "--json").stdout)
    assert data["default_backend"]["name"] == default
    assert why in data["default_backend"]["reason"]
    assert {n for n, e in data["backends"].items() if e["installed"]} == set(names)
    text = inproc("info", "--no-devices").stdout
    assert f"default backend: {default} (" in text


def test_info_without_backends(inproc, installed):
    installed()
    result = inproc("info", "--no-devices")
    assert result.returncode == 0
    assert "default backend: none (no ptychopinn backend is installed" in result.stdout
    assert "tensorflow: not installed (install: pip install 'ptychopinn-app[tf]')" in result.stdout
    assert "pytorch: not installed (install: pip install 'ptychopinn-app[torch]')" in result.stdout


def test_demo_without_backends_is_one_line_naming_both_installs(inproc, installed):
    installed()
    line = inproc("demo", "-o", "d", "--nepochs", "1").one_error_line()
    assert "ptychopinn-app[torch]" in line and "ptychopinn-app[tf]" in line


def test_train_uses_the_only_installed_backend(inproc, installed, requested, tiny_data, tmp_path):
    installed("pytorch")
    result = inproc(
        "train", "--train-data", tiny_data["train"], "--nepochs", "1", "-o", "run"
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert set(requested) == {"pytorch"}
    assert "backend: pytorch (the only installed backend)" in result.stderr
    assert "backend: pytorch" in (tmp_path / "run" / "config.yaml").read_text()


def test_train_explicit_backend_wins(inproc, installed, requested, tiny_data, tmp_path):
    installed("pytorch")
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  backend: tensorflow\n")
    args = ("train", "--train-data", tiny_data["train"], "--nepochs", "1")
    assert inproc(*args, "-o", "a", "--config", config).returncode == 0
    assert inproc(*args, "-o", "b", "--set", "training.backend=tensorflow").returncode == 0
    assert inproc(*args, "-o", "c", "--backend", "tensorflow").returncode == 0
    assert set(requested) == {"tensorflow"}
    # A config file that sets no backend leaves the choice to what is installed.
    config.write_text("training:\n  nepochs: 1\n")
    requested.clear()
    assert inproc(*args, "-o", "d", "--config", config).returncode == 0
    assert set(requested) == {"pytorch"}


def test_demo_uses_the_only_installed_backend(inproc, installed, requested, monkeypatch):
    from ptychopinn.app import demo

    seen = {}

    def run_demo(backend, **kwargs):
        seen["backend"] = backend
        raise RuntimeError("stop here")

    monkeypatch.setattr(demo, "run_demo", run_demo)
    installed("pytorch")
    result = inproc("demo", "-o", "d")
    assert seen == {"backend": "pytorch"} and result.returncode == 1
    installed("pytorch", "tensorflow")
    inproc("demo", "-o", "d")
    assert seen == {"backend": "tensorflow"}


def test_infer_falls_back_when_the_bundles_backend_is_missing(
    inproc, installed, requested, numpy_backend, tiny_data, tmp_path
):
    numpy_backend.name = "tensorflow"  # the bundle says it was trained with TensorFlow
    args = ("train", "--train-data", tiny_data["train"], "--nepochs", "1", "-o", "m")
    assert inproc(*args, "--backend", "tensorflow").returncode == 0
    installed("pytorch")
    requested.clear()
    result = inproc("infer", "--model", tmp_path / "m" / "wts.h5.zip", "--data", tiny_data["test"])
    assert result.returncode == 0, result.stderr
    assert requested == ["pytorch"]
    assert "backend tensorflow is not installed; using pytorch" in result.stderr
    # Installed: the bundle's own backend is used.
    installed("pytorch", "tensorflow")
    requested.clear()
    out = inproc("infer", "--model", tmp_path / "m" / "wts.h5.zip", "--data", tiny_data["test"])
    assert out.returncode == 0 and requested == ["tensorflow"]


def test_upstream_ptychopinn_distribution_can_sit_beside_ours(tmp_path, monkeypatch, inproc):
    """Upstream PtychoPINN's pyproject is named `ptychopinn` (top-level `ptycho`); ours is
    `ptychopinn-app`, so both have their own metadata and our command reports its own."""
    import importlib
    import sys

    site = tmp_path / "site"
    info = site / "ptychopinn-2.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ptychopinn\nVersion: 2.0.0\n")
    (info / "top_level.txt").write_text("ptycho\n")
    (site / "ptycho").mkdir()
    (site / "ptycho" / "__init__.py").write_text("UPSTREAM = True\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    assert importlib.metadata.version("ptychopinn") == "2.0.0"
    assert importlib.metadata.version("ptychopinn-app") == ptychopinn.app.__version__
    assert importlib.import_module("ptycho").UPSTREAM is True
    import ptychopinn.app as ours

    assert ours.__name__ == "ptychopinn.app"  # our namespace portion is untouched
    lines = inproc("--version").stdout.splitlines()
    assert lines[0] == f"ptychopinn {ptychopinn.app.__version__}"
    assert "  ptychopinn 2.0.0" in lines  # upstream listed as the other package it is
    sys.modules.pop("ptycho", None)
