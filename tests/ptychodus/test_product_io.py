"""Products round-trip through ptychodus's own HDF5 product writer/reader and ptychopinn.data."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ptychodus")

from ptychodus.plugins.h5_product_file import H5ProductFileIO

from ptychopinn.app.ptychodus import positions_to_pixels
from ptychopinn.data import load_product, save_product

F32 = dict(rtol=1e-6, atol=1e-7)  # float32 precision


def assert_products_equal(a, b):
    np.testing.assert_allclose(a.object_.get_array(), b.object_.get_array(), **F32)
    assert a.object_.get_geometry() == b.object_.get_geometry()
    np.testing.assert_allclose(a.probes.get_array(), b.probes.get_array(), **F32)
    assert a.probes.get_pixel_geometry() == b.probes.get_pixel_geometry()
    np.testing.assert_array_equal(a.probe_positions.get_indexes(), b.probe_positions.get_indexes())
    np.testing.assert_allclose(
        a.probe_positions.get_coordinates_x_m(), b.probe_positions.get_coordinates_x_m(), rtol=1e-7
    )
    np.testing.assert_allclose(
        a.probe_positions.get_coordinates_y_m(), b.probe_positions.get_coordinates_y_m(), rtol=1e-7
    )


def test_ptychodus_writer_and_reader_round_trip(tmp_path, product):
    io = H5ProductFileIO()
    path = tmp_path / "product.h5"
    io.write(path, product)
    assert_products_equal(product, io.read(path))


def test_ptychopinn_data_reads_a_ptychodus_written_product(tmp_path, scan, product, support):
    path = tmp_path / "product.h5"
    H5ProductFileIO().write(path, product)
    ours = load_product(path)
    np.testing.assert_allclose(np.squeeze(ours.object), scan.object, **F32)
    np.testing.assert_allclose(np.squeeze(ours.probe), scan.probe, **F32)
    assert ours.object_center_x_m == pytest.approx(support.CENTER_M[0])
    assert ours.object_center_y_m == pytest.approx(support.CENTER_M[1])
    assert ours.object_pixel_width_m == pytest.approx(support.PIXEL_M)
    np.testing.assert_array_equal(
        ours.probe_position_indexes, product.probe_positions.get_indexes()
    )
    x, y = ours.positions_px()
    px, py = positions_to_pixels(product)
    # ptychopinn.data and the adapter agree on the pixel convention
    np.testing.assert_allclose(x, px, atol=1e-6)
    np.testing.assert_allclose(y, py, atol=1e-6)
    np.testing.assert_allclose(x, scan.xcoords, atol=1e-6)


def test_ptychodus_reads_a_ptychopinn_data_product(tmp_path, scan, support):
    path = tmp_path / "ours.h5"
    save_product(
        scan,
        path,
        object_pixel_width_m=support.PIXEL_M,
        object_center_x_m=support.CENTER_M[0],
        object_center_y_m=support.CENTER_M[1],
    )
    theirs = H5ProductFileIO().read(path)
    np.testing.assert_allclose(theirs.object_.get_layer(0), scan.object, **F32)
    np.testing.assert_allclose(theirs.probes.get_array()[0, 0], scan.probe, **F32)
    assert theirs.object_.get_center().x_m == pytest.approx(support.CENTER_M[0])
    x, y = positions_to_pixels(theirs)
    np.testing.assert_allclose(x, scan.xcoords, atol=1e-6)
    np.testing.assert_allclose(y, scan.ycoords, atol=1e-6)
