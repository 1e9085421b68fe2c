"""The adapter's conversions between ptychodus products and ptychopinn data (no backend)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ptychodus")

from ptychodus.api.settings import SettingsRegistry

from ptychopinn.app.ptychodus import (
    PtychoPINNReconstructorLibrary,
    positions_to_pixels,
    scan_from_input,
)
from ptychopinn.data import PhotonCountWarning, group, load, load_npz, photon_count


def _reconstructor():
    return next(iter(PtychoPINNReconstructorLibrary(SettingsRegistry())))


def test_positions_metres_to_pixels_round_trip(scan, product):
    x, y = positions_to_pixels(product)
    np.testing.assert_allclose(x, scan.xcoords, rtol=0, atol=1e-9)
    np.testing.assert_allclose(y, scan.ycoords, rtol=0, atol=1e-9)


def test_pixel_convention_matches_ptychodus_patch_placement(product, support):
    # ptychodus puts probe pixel (N-1)/2 on a position; ptychopinn puts pixel N/2 there.
    geometry = product.object_.get_geometry()
    first = product.probe_positions[0]
    ptychodus_px = geometry.map_coordinates_probe_to_object(first)
    bounds = product.probes.get_geometry().resolve_patch_bounds(
        ptychodus_px.x_px, ptychodus_px.y_px
    )
    x, y = positions_to_pixels(product)
    # object column of patch column 0: ptychodus x_lower + dx == ptychopinn x - N/2
    assert bounds.x_slice.start + bounds.dx == pytest.approx(x[0] - support.N / 2)
    assert bounds.y_slice.start + bounds.dy == pytest.approx(y[0] - support.N / 2)


def test_scan_from_input_amplitude_positions_probe_indexes(scan, parameters, support):
    converted = scan_from_input(parameters)
    np.testing.assert_allclose(converted.diffraction, scan.diffraction, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(converted.xcoords, scan.xcoords, atol=1e-9)
    np.testing.assert_allclose(converted.ycoords, scan.ycoords, atol=1e-9)
    np.testing.assert_array_equal(converted.probe, scan.probe)
    np.testing.assert_array_equal(converted.object, scan.object)
    np.testing.assert_array_equal(
        converted.scan_index, support.FIRST_INDEX + np.arange(scan.n_positions)
    )
    # No photon count is recorded: training takes the mean counts (the one policy).
    assert "nphotons" not in converted.metadata
    counts = np.mean(np.sum(np.square(scan.diffraction, dtype=np.float64), axis=(1, 2)))
    with pytest.warns(PhotonCountWarning):
        photons = photon_count(converted)
    assert photons.source == "mean counts" and photons.value == pytest.approx(counts, rel=1e-6)


def test_probe_modes_are_dropped_with_a_log_line(scan, caplog, support):
    second = 0.1 * np.roll(scan.probe, 3, axis=0)
    modes = np.stack([scan.probe, second])[np.newaxis]  # (1 OPR, 2 incoherent, N, N)
    product = support.product_from_simulation(scan, probe_modes=modes)
    with caplog.at_level(logging.INFO):
        converted = scan_from_input(support.reconstruct_input(scan, product))
    np.testing.assert_array_equal(converted.probe, scan.probe)
    assert "modes are dropped" in caplog.text


def test_bad_pixels_are_inpainted_not_zero(scan, product, support):
    mask = np.zeros((support.N, support.N), dtype=bool)
    mask[32, 33] = True  # next to the zero frequency: never 0 counts
    params = support.reconstruct_input(scan, product, bad_pixels=mask)
    params.diffraction_patterns[:, 32, 33] = 0
    converted = scan_from_input(params)
    assert np.all(converted.diffraction[:, 32, 33] > 0)


def test_export_training_data_is_read_by_load_and_train(tmp_path, scan, parameters, support):
    reconstructor = _reconstructor()
    target = tmp_path / "exported"  # no suffix: the adapter adds .npz
    reconstructor.export_training_data(target, parameters)
    written = tmp_path / "exported.npz"
    assert written.is_file()
    assert reconstructor.get_training_data_file_filter().endswith("(*.npz)")
    # train() accepts the file itself, or a directory that holds it
    assert reconstructor.training_files(written) == (written, None)
    assert reconstructor.training_files(tmp_path) == (written, None)
    back = load_npz(written)
    np.testing.assert_allclose(back.diffraction, scan.diffraction, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(back.xcoords, scan.xcoords, atol=1e-9)
    np.testing.assert_array_equal(
        back.scan_index, support.FIRST_INDEX + np.arange(scan.n_positions)
    )
    np.testing.assert_array_equal(load(written).probe, scan.probe)
    grouped = group(back, gridsize=2, seed=0)
    assert grouped.X.shape[1:] == (support.N, support.N, 4)


def test_training_directory_with_upstream_names(tmp_path, parameters):
    reconstructor = _reconstructor()
    reconstructor.export_training_data(tmp_path / "train_data.npz", parameters)
    reconstructor.export_training_data(tmp_path / "test_data.npz", parameters)
    assert reconstructor.training_files(tmp_path) == (
        tmp_path / "train_data.npz",
        tmp_path / "test_data.npz",
    )


def test_reconstruct_without_a_model_says_so(parameters):
    with pytest.raises(RuntimeError, match="no model loaded"):
        list(_reconstructor().reconstruct(parameters))


def test_settings_build_valid_configs():
    library = PtychoPINNReconstructorLibrary(SettingsRegistry())
    settings = library.settings
    settings.backend.set_value("pytorch")
    settings.gridsize.set_value(2)
    model = settings.model_config(64, "pinn")
    assert model.gridsize == 2
    config = settings.training_config(
        model, nphotons=1e6, train_file=None, test_file=None, output_dir=Path(".")
    )
    assert config.backend == "pytorch"
    assert config.n_groups is None
    assert settings.execution_config().logger == "none"


def test_true_patches_stitch_back_onto_the_object_grid(scan, product, parameters):
    # The reconstruct path without a network: ground-truth patches, grouped from the
    # converted ptychodus input, stitched onto the input object's grid give the object.
    from ptychopinn.app.ptychodus import stitch_onto_object

    grouped = group(scan_from_input(parameters), gridsize=1, seed=0)
    patches = grouped.Y[..., :1]
    out = stitch_onto_object(patches, grouped.coords_offsets[:, 0, :, 0], product.object_)
    assert out.get_geometry() == product.object_.get_geometry()
    recon = out.get_layer(0)
    truth = scan.object
    x0, x1 = int(scan.xcoords.min()), int(scan.xcoords.max())
    y0, y1 = int(scan.ycoords.min()), int(scan.ycoords.max())
    np.testing.assert_allclose(recon[y0:y1, x0:x1], truth[y0:y1, x0:x1], rtol=0, atol=1e-5)
    # a shift by one pixel would be far off
    assert np.max(np.abs(recon[y0:y1, x0 + 1 : x1 + 1] - truth[y0:y1, x0:x1])) > 1e-2


def test_in_process_mode_refuses_a_second_framework(monkeypatch):
    import sys
    import types

    from ptychopinn.app.ptychodus import _check_framework

    monkeypatch.setitem(sys.modules, "tensorflow", types.ModuleType("tensorflow"))
    with pytest.raises(RuntimeError, match="must not share a process"):
        _check_framework("pytorch")
    _check_framework("tensorflow")  # the same framework again is fine
