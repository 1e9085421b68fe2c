"""train → save/open model → reconstruct through the adapter, per backend, against real ptychodus.

Each backend runs in its own spawned process (the adapter's ``subprocess`` setting), so
this test process never imports TensorFlow or Lightning, let alone both.
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

pytest.importorskip("ptychodus")

from ptychodus.api.settings import SettingsRegistry
from ptychodus.plugins.h5_product_file import H5ProductFileIO

from ptychopinn.app.ptychodus import (
    BUNDLE_NAME,
    MODEL_FILE_NAME,
    PtychoPINNReconstructorLibrary,
)
from ptychopinn.config import available_backends

EPOCHS = 2
F32 = dict(rtol=1e-6, atol=1e-7)


def _library(backend: str) -> PtychoPINNReconstructorLibrary:
    library = PtychoPINNReconstructorLibrary(SettingsRegistry())
    s = library.settings
    s.backend.set_value(backend)
    s.nepochs.set_value(EPOCHS)
    s.n_filters_scale.set_value(1)
    s.batch_size.set_value(16)
    s.accelerator.set_value("cpu")
    s.validation_fraction.set_value(0.1)
    return library


def _pinn(library):
    return next(r for r in library if r.name == "PINN")


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_train_reconstruct_round_trip(backend, tmp_path, scan, product, parameters):
    if backend not in available_backends():
        pytest.skip(f"the {backend} backend is not installed")
    pinn = _pinn(_library(backend))

    # export → train reads the exported file directly
    exported = tmp_path / "scan.npz"
    pinn.export_training_data(exported, parameters)
    outputs = list(pinn.train(exported, tmp_path / "model"))
    # progress after every epoch (ptychodus's monitor shows each), then the losses
    assert [o.progress for o in outputs] == [0, *range(1, EPOCHS + 1), EPOCHS]
    losses = [v.value for v in outputs[-1].training_loss]
    assert len(losses) == EPOCHS and all(math.isfinite(v) for v in losses)
    assert (tmp_path / "model" / BUNDLE_NAME).is_file()
    # the name ptychodus -b reconstruct loads, the same bytes
    model_zip = tmp_path / "model" / MODEL_FILE_NAME
    assert model_zip.read_bytes() == (tmp_path / "model" / BUNDLE_NAME).read_bytes()
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert history["train_loss"] == pytest.approx(losses)
    assert pinn.is_model_loaded()
    assert "TensorFlow" not in sys.modules and "tensorflow" not in sys.modules
    assert "lightning" not in sys.modules and "torch" not in sys.modules

    # reconstruct: progress through the yielded outputs; result on the input grid
    results = list(pinn.reconstruct(parameters))
    assert [r.progress for r in results] == [pinn.RECONSTRUCT_STEPS]
    out = results[-1].product
    # the model's training losses travel in the product (ptychodus's loss plot, product.h5)
    assert [v.value for v in out.losses] == pytest.approx(losses)
    assert out.object_.get_geometry() == product.object_.get_geometry()
    assert out.object_.get_center() == product.object_.get_center()
    assert out.probe_positions is product.probe_positions
    assert out.probes is product.probes
    recon = out.object_.get_layer(0)
    assert recon.shape == scan.object.shape
    assert np.all(np.isfinite(recon))

    # ptychodus's own HDF5 product writer and reader preserve it
    path = tmp_path / "reconstructed.h5"
    H5ProductFileIO().write(path, out)
    back = H5ProductFileIO().read(path)
    np.testing.assert_allclose(back.object_.get_array(), out.object_.get_array(), **F32)
    assert back.object_.get_geometry() == out.object_.get_geometry()
    np.testing.assert_allclose(back.probes.get_array(), product.probes.get_array(), **F32)
    np.testing.assert_array_equal(
        back.probe_positions.get_indexes(), product.probe_positions.get_indexes()
    )
    np.testing.assert_allclose(
        back.probe_positions.get_coordinates_x_m(),
        product.probe_positions.get_coordinates_x_m(),
        rtol=1e-7,
    )

    # save_model → open_model in a fresh library gives the same reconstruction
    saved = tmp_path / "saved-model.zip"
    pinn.save_model(saved)
    again = _pinn(_library(backend))
    again.load_model_from_file(saved)
    recon2 = list(again.reconstruct(parameters))[-1].product.object_.get_layer(0)
    np.testing.assert_allclose(recon2, recon, rtol=1e-4, atol=1e-5)

    # quality against the ground truth, inside the scanned region
    metrics = _scalars(_evaluate(recon, scan))
    print(f"\nptychodus adapter metrics ({backend}, {EPOCHS} epochs):", json.dumps(metrics))
    for value in metrics.values():
        assert math.isfinite(value)
    # Two epochs on 256 patterns give a rough but real image (measured: amplitude SSIM
    # 0.17 (tensorflow) / 0.17-0.19 (pytorch)); a flat image scores ~0, and the same image
    # moved by 4 px scores worse. That the stitched object sits exactly on the input's grid
    # is tested with the true patches (test_conversions.py::
    # test_true_patches_stitch_back_onto_the_object_grid): an image this rough cannot show
    # it -- a 4-px shift changed its MSE by < 1 %, either way depending on the trajectory.
    assert metrics["amplitude.ssim"] > 0.1
    # like for like without registration (which would undo the 4-px move)
    plain = _scalars(_evaluate(recon, scan, register=False))
    shifted = _scalars(_evaluate(np.roll(recon, (4, 4), axis=(0, 1)), scan, register=False))
    assert shifted["amplitude.ssim"] < plain["amplitude.ssim"]


def _scanned_region(scan):
    crop = 20
    x0 = math.ceil(scan.xcoords.min() - crop / 2)
    x1 = math.floor(scan.xcoords.max() + crop / 2)
    y0 = math.ceil(scan.ycoords.min() - crop / 2)
    y1 = math.floor(scan.ycoords.max() + crop / 2)
    return slice(y0, y1), slice(x0, x1)


def _evaluate(recon, scan, **options):
    from ptychopinn.stitch import evaluate

    rows, cols = _scanned_region(scan)
    return evaluate(recon[rows, cols], scan.object[rows, cols], **options)


def _scalars(metrics, prefix=""):
    out = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(_scalars(value, f"{prefix}{key}."))
        elif isinstance(value, int | float | np.floating) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


@pytest.mark.parametrize("installed", [["pytorch"], ["tensorflow"], ["pytorch", "tensorflow"], []])
def test_default_backend_setting_follows_what_is_installed(installed, monkeypatch):
    from ptychopinn.app import environment
    from ptychopinn.app.ptychodus import PtychoPINNAppSettings

    real = environment.choose_backend
    monkeypatch.setattr(environment, "choose_backend", lambda: real(installed))
    expected = installed[0] if len(installed) == 1 else "tensorflow"
    assert PtychoPINNAppSettings(SettingsRegistry()).backend.get_value() == expected
