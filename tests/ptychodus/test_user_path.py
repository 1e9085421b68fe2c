"""ptychodus as users run it: the launcher, the README's patch, ptychodus's batch mode in
a subprocess, ptychodus's own training export, our ``diffraction.h5``, and stop.

Everything runs against the installed ptychodus (1.7.x) — its ``ModelCore``, its
``__main__`` batch entry, its file readers and writers — never a mock of it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ptychodus")

import ptychodus.model.core as ptychodus_core
from ptychodus.api.io import (
    StandardFileLayout,
    load_diffraction_data,
    load_product,
    save_ptychopinn_training_data,
)
from ptychodus.api.reconstruct import prepare_reconstruct_input
from ptychodus.api.settings import SettingsRegistry
from ptychodus.model import ModelCore

from ptychopinn.app.conversion import convert, save_ptychodus_folder
from ptychopinn.app.ptychodus import (
    MODEL_FILE_NAME,
    PIXEL_CONVENTION_OFFSET,
    PtychoPINNReconstructorLibrary,
    scan_from_input,
)
from ptychopinn.app.ptychodus_launcher import registered
from ptychopinn.config import available_backends
from ptychopinn.data import DataContractError, save_npz, simulate

ROOT = Path(__file__).resolve().parents[2]
OURS = ("ptychopinn-app_pinn", "ptychopinn-app_supervised")
BUILT_IN = ("ptychopinn_pinn", "ptychopinn_supervised")  # listed in developer mode


def _listed(model: ModelCore) -> list[str]:
    return list(model.processing_core.processing_api.available_reconstructors())


@pytest.fixture
def developer_mode(caplog):
    """ptychodus's developer mode (its core logger at DEBUG): the built-in PtychoPINN
    library then lists its entries even without upstream's package."""
    import logging

    caplog.set_level(logging.DEBUG, logger="ptychodus.model")  # core.py and its patched copy


# -- 1. registration -------------------------------------------------------------------


def test_launcher_lists_our_library_after_ptychodus_own(developer_mode):
    assert not set(OURS) & set(_listed(ModelCore()))  # plain ptychodus
    original = ptychodus_core.ProcessingCore
    with registered():
        model = ModelCore()
    assert ptychodus_core.ProcessingCore is original  # restored on exit
    listed = _listed(model)
    # ours last; ptychodus's own PtychoPINN entries still there, in their place
    assert listed[-2:] == list(OURS)
    assert [k for k in listed if k in BUILT_IN] == list(BUILT_IN)
    assert listed.index(BUILT_IN[0]) < listed.index(OURS[0])
    builtin = model.ptychopinn_reconstructor_library
    assert type(builtin).__module__ == "ptychodus.model.ptychopinn.core"
    groups = model.settings_registry._parameter_group.groups()
    assert {"PtychoPINNModel", "PtychoPINNTraining", "PtychoPINNApp"} <= set(groups)
    # selecting ours through ptychodus's own setting gives a trainable reconstructor
    api = model.processing_core.processing_api
    api.set_reconstructor_if_provided("PtychoPINN-App_PINN")
    assert api.is_reconstructor_trainable()
    assert api.get_model_file_extension() == Path(MODEL_FILE_NAME).suffix
    current = model.processing_core.algorithm_parameter.get_current_reconstructor()
    assert type(current).__module__ == "ptychopinn.app.ptychodus"


def _readme_patch() -> tuple[str, str]:
    """The two lines of the README's patch for ptychodus/model/core.py."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- ptychodus-core-patch -->\s*```python\n(.*?)```", text, re.S)
    assert block, "README.md lost its ptychodus-core-patch block"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    imports = [line for line in lines if line.startswith("from ")]
    entries = [line.strip() for line in lines if not line.startswith(("from ", "#"))]
    assert len(imports) == 1 and len(entries) == 1, lines
    return imports[0], entries[0]


def _patched_core(import_line: str, entry: str):
    """ptychodus's own core.py with the patch applied, imported as a sibling module."""
    source = Path(ptychodus_core.__file__).read_text(encoding="utf-8")
    anchor_import = "from .ptychopinn_torch import PtychoPINNTorchReconstructorLibrary\n"
    anchor_entry = "                self.ptycho_fm_reconstructor_library,\n"
    assert anchor_import in source and anchor_entry in source, "ptychodus core.py changed"
    source = source.replace(anchor_import, anchor_import + import_line + "\n")
    source = source.replace(anchor_entry, anchor_entry + " " * 16 + entry + "\n")
    spec = importlib.util.spec_from_loader("ptychodus.model._core_patched", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "ptychodus.model"
    exec(compile(source, ptychodus_core.__file__, "exec"), module.__dict__)
    return module


def test_readme_patch_works_and_the_unaliased_one_does_not(developer_mode):
    import_line, entry = _readme_patch()
    model = _patched_core(import_line, entry).ModelCore()
    listed = _listed(model)
    assert listed[-2:] == list(OURS) and set(BUILT_IN) <= set(listed)
    # the line the README used to give (no alias) shadows ptychodus's own class
    plain_import = "from ptychopinn.app.ptychodus import PtychoPINNReconstructorLibrary"
    plain_entry = entry.replace(
        "PtychoPINNAppReconstructorLibrary", "PtychoPINNReconstructorLibrary"
    )
    with pytest.raises(ValueError, match="already exists"):
        _patched_core(plain_import, plain_entry).ModelCore()


# -- 3. ptychodus's files --------------------------------------------------------------


def test_reads_ptychodus_own_training_export(tmp_path, parameters):
    exported = tmp_path / "train_data.npz"
    save_ptychopinn_training_data(exported, parameters)  # ptychodus's built-in exporter
    with np.load(exported) as raw:
        assert raw["probeGuess"].ndim == 3 and not raw["scan_index"].any()
        # its coordinate convention, from its own geometry code: the object centre at (W-1)/2
        geometry = parameters.product.object_.get_geometry()
        expected_x = geometry.map_probe_positions_to_object_x_px(parameters.product.probe_positions)
        np.testing.assert_array_equal(raw["xcoords"], expected_x)
        raw_x = raw["xcoords"]
    pinn = next(iter(PtychoPINNReconstructorLibrary(SettingsRegistry())))
    train, test = pinn.training_files(tmp_path)
    assert (train, test) == (exported, None)
    scan = pinn.load_training_scan(train)
    ours = scan_from_input(parameters)
    # intensities -> amplitudes, (1, N, N) -> (N, N), and half a pixel up: our convention
    np.testing.assert_allclose(scan.diffraction, ours.diffraction, rtol=1e-6)
    np.testing.assert_array_equal(scan.probe, ours.probe)
    np.testing.assert_allclose(scan.xcoords, raw_x + 0.5, atol=0)
    np.testing.assert_allclose(scan.xcoords, ours.xcoords, atol=1e-9)
    np.testing.assert_allclose(scan.ycoords, ours.ycoords, atol=1e-9)
    assert PIXEL_CONVENTION_OFFSET == 0.5


def test_bad_ptychodus_export_names_file_key_expected_found(tmp_path, parameters):
    path = tmp_path / "bad.npz"
    save_ptychopinn_training_data(path, parameters)
    with np.load(path) as raw:
        contents = dict(raw)
    contents["probeGuess"] = contents["probeGuess"][:, :32]
    np.savez(path, **contents)
    pinn = next(iter(PtychoPINNReconstructorLibrary(SettingsRegistry())))
    with pytest.raises(DataContractError) as info:
        pinn.load_training_scan(path)
    message = str(info.value)
    assert str(path) in message and "'probeGuess'" in message
    assert "(modes, 64, 64)" in message and "(1, 32, 64)" in message


def test_diffraction_h5_opens_in_ptychodus_as_measured_data(tmp_path):
    sim = simulate("lines", n_images=36, N=64, nphotons=1e8, seed=1, scan="grid")
    source = save_npz(sim, tmp_path / "data.npz")
    folder = convert(source, tmp_path / "run", to="ptychodus")
    single = convert(source, tmp_path / "alone" / "diffraction.h5")  # the name picks the format
    # ptychodus's own readers, paired by scan index as ptychodus pairs them
    data = load_diffraction_data(StandardFileLayout.DIFFRACTION.path(folder))
    product = load_product(StandardFileLayout.PRODUCT.path(folder))
    assert load_diffraction_data(single).get_patterns().shape == (36, 64, 64)
    back = scan_from_input(prepare_reconstruct_input(data, product))
    np.testing.assert_allclose(
        data.get_patterns(), np.square(sim.diffraction.astype(np.float64)), rtol=1e-6
    )
    np.testing.assert_allclose(back.diffraction, sim.diffraction, rtol=1e-6)
    np.testing.assert_allclose(back.xcoords, sim.xcoords, atol=1e-6)
    np.testing.assert_allclose(back.ycoords, sim.ycoords, atol=1e-6)
    np.testing.assert_allclose(back.probe, sim.probe, rtol=1e-6)
    # the detector pixel is the one that gives the product's object pixel in far field
    pixel = data.get_pixel_geometry()
    lam_z = product.metadata.photon_wavelength_m * product.metadata.detector_distance_m
    object_pixel = product.object_.get_pixel_geometry()
    assert lam_z / (64 * pixel.width_m) == pytest.approx(object_pixel.width_m, rel=1e-9)
    assert lam_z / (64 * pixel.height_m) == pytest.approx(object_pixel.height_m, rel=1e-9)


# -- 2., 4. batch mode through ptychodus's own entry point, in a subprocess --------------

EPOCHS = 1


def _backend() -> str:
    installed = available_backends()
    if not installed:
        pytest.skip("no backend installed")
    # TensorFlow when present: it is the framework that prints cuInit on CPU-only machines
    return "tensorflow" if "tensorflow" in installed else installed[0]


def _ptychopinn(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("ptychopinn")
    command = [str(script)] if script.is_file() else [
        sys.executable, "-c", "import sys; from ptychopinn.app.cli import main; sys.exit(main())"
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=540
    )


def _settings(backend: str) -> str:
    return (
        "[Processing]\nAlgorithm = ptychopinn-app_PINN\n\n"
        f"[PtychoPINNApp]\nbackend = {backend}\nnepochs = {EPOCHS}\nn_filters_scale = 1\n"
        "batch_size = 16\naccelerator = cpu\n"
    )


def test_batch_train_then_reconstruct_through_ptychodus_main(tmp_path):
    backend = _backend()
    sim = simulate("lines", n_images=64, N=64, nphotons=1e9, seed=0, scan="grid")
    run = save_ptychodus_folder(sim, tmp_path / "run")
    (run / StandardFileLayout.SETTINGS).write_text(_settings(backend))

    # no model yet: reconstruct fails and says which file it wants
    missing = _ptychopinn("ptychodus", "-b", "reconstruct", "-i", "run", "-o", "x", cwd=tmp_path)
    assert missing.returncode != 0
    assert f"INPUT_DIR/{MODEL_FILE_NAME}" in missing.stdout + missing.stderr

    # train straight from diffraction.h5 + product.h5, writing into the same folder
    trained = _ptychopinn("ptychodus", "-b", "train", "-i", "run", "-o", "run", cwd=tmp_path)
    log = trained.stdout + trained.stderr
    assert trained.returncode == 0, log[-4000:]
    assert f"epoch {EPOCHS}/{EPOCHS} done" in log
    assert "cuInit" not in log and "cuda_platform" not in log, log[-4000:]
    assert (run / MODEL_FILE_NAME).is_file() and (run / "wts.h5.zip").is_file()
    history = json.loads((run / "history.json").read_text())
    assert len(history["train_loss"]) == EPOCHS

    # reconstruct: ptychodus loads run/model.zip and writes the product it yields
    done = _ptychopinn("ptychodus", "-b", "reconstruct", "-i", "run", "-o", "recon", cwd=tmp_path)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    written = sorted((tmp_path / "recon").glob("product*.h5"))
    assert [p.name for p in written] == ["product.000001.h5"]
    out = load_product(written[0])
    source = load_product(run / StandardFileLayout.PRODUCT)
    assert out.object_.get_geometry() == source.object_.get_geometry()
    assert [v.value for v in out.losses] == pytest.approx(history["train_loss"])
    recon = out.object_.get_layer(0)
    assert np.all(np.isfinite(recon))
    assert not np.allclose(recon, source.object_.get_layer(0))  # the network's output


def test_stop_in_ptychodus_ends_training_after_the_epoch(tmp_path, parameters):
    """ptychodus's own TrainBackgroundTask and progress monitor; Stop pressed at epoch 1."""
    from ptychodus.model.processing.monitor import ProcessingTaskMonitor, TrainBackgroundTask
    from ptychodus.model.task_manager import TaskManager

    seen: list[tuple[int, int]] = []

    class UserPressesStop(ProcessingTaskMonitor):
        def update_progress(self, progress: int, progress_goal: int) -> None:
            super().update_progress(progress, progress_goal)
            seen.append((progress, progress_goal))
            if progress == 1:
                self.stop_processing()  # what the GUI's Stop button calls

    library = PtychoPINNReconstructorLibrary(SettingsRegistry())
    s = library.settings
    for name, value in dict(
        backend=_backend(), nepochs=50, n_filters_scale=1, batch_size=16, accelerator="cpu"
    ).items():
        getattr(s, name).set_value(value)
    pinn = next(iter(library))
    exported = tmp_path / "scan.npz"
    pinn.export_training_data(exported, parameters)
    monitor = UserPressesStop(TaskManager())
    TrainBackgroundTask(monitor, pinn, parameters, exported, tmp_path / "model")()
    monitor.raise_if_failed()
    assert seen == [(0, 50), (0, 50), (1, 50)]  # per epoch, against nepochs
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert len(history["train_loss"]) == 1  # stopped after the first epoch, not at 50
    assert pinn.is_model_loaded() and (tmp_path / "model" / MODEL_FILE_NAME).is_file()


def test_a_failing_job_is_its_own_error_in_the_parent():
    import logging

    from ptychopinn.app.ptychodus import _Job

    def broken(events, control):
        raise ValueError("x.npz, key 'diff3d': expected (M, N, N), found (3, 4)")

    def unknown(events, control):
        raise ArithmeticError("an error type the parent does not rebuild")

    job = _Job("train", broken, (), spawn=False)
    with pytest.raises(ValueError, match=r"key 'diff3d': expected \(M, N, N\), found \(3, 4\)"):
        list(job.events(logging.getLogger("test")))
    job = _Job("train", unknown, (), spawn=False)
    with pytest.raises(RuntimeError, match="ArithmeticError: an error type"):
        list(job.events(logging.getLogger("test")))
