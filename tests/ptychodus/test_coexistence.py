"""ptychopinn installed beside ptychodus: no shadowed upstream names, no broken reconstructors."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

pytest.importorskip("ptychodus")

from ptychodus.api.reconstruct import NullReconstructor, TrainableReconstructor
from ptychodus.api.settings import SettingsRegistry
from ptychodus.model.processing.api import ProcessingAlgorithmParameter
from ptychodus.model.ptychopinn import PtychoPINNReconstructorLibrary as BuiltinTF
from ptychodus.model.ptychopinn_torch import (
    PtychoPINNTorchReconstructorLibrary as BuiltinTorch,
)

from ptychopinn.app.ptychodus import PtychoPINNReconstructorLibrary


def test_upstream_top_level_names_are_not_provided():
    # ptychodus probes these names and then calls upstream's internal API.
    assert importlib.util.find_spec("ptycho") is None
    assert importlib.util.find_spec("ptycho_torch") is None


@pytest.mark.parametrize("developer_mode", [False, True])
@pytest.mark.parametrize(
    "builtin", [BuiltinTF, BuiltinTorch], ids=["PtychoPINN", "PtychoPINN-Torch"]
)
def test_builtin_ptychopinn_libraries_report_not_found(builtin, developer_mode, caplog):
    caplog.set_level("INFO")
    library = builtin(SettingsRegistry(), developer_mode)
    reconstructors = list(library)
    # Not found: nothing registered, or (developer mode) only inert placeholders.
    assert all(isinstance(r, NullReconstructor) for r in reconstructors)
    assert len(reconstructors) == (2 if developer_mode else 0)
    assert "not found" in caplog.text


def test_ptychopinn_library_lists_beside_the_builtins():
    registry = SettingsRegistry()
    ours = PtychoPINNReconstructorLibrary(registry)
    libraries = [BuiltinTF(registry, True), BuiltinTorch(registry, True), ours]
    parameter = ProcessingAlgorithmParameter(
        registry.create_group("Processing").create_string_parameter("algorithm", "none_none"),
        libraries,
    )
    keys = set(parameter.available_reconstructors())
    assert {"ptychopinn-app_pinn", "ptychopinn-app_supervised"} <= keys
    parameter.set_value("ptychopinn-app_pinn")
    chosen = parameter.get_current_reconstructor()
    assert isinstance(chosen, TrainableReconstructor)
    assert not isinstance(chosen, NullReconstructor)
    assert chosen.name == "PINN"
    assert not chosen.is_model_loaded()
    # No key of ours collides with a built-in one.
    builtin_keys = {
        ProcessingAlgorithmParameter.generate_key(lib.name, r.name)
        for lib in libraries[:2]
        for r in lib
    }
    assert not builtin_keys & {
        ProcessingAlgorithmParameter.generate_key(ours.name, r.name) for r in ours
    }


def test_importing_the_app_does_not_import_ptychodus_or_a_framework():
    code = (
        "import sys, ptychopinn.app\n"
        "bad = [m for m in ('ptychodus', 'tensorflow', 'torch', 'lightning') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_adapter_import_does_not_import_a_framework():
    code = (
        "import sys, ptychopinn.app.ptychodus\n"
        "bad = [m for m in ('tensorflow', 'torch', 'lightning', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
