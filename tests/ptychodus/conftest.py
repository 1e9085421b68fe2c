"""Fixtures for the ptychodus adapter tests: real ptychodus objects from a simulated scan.

Everything here runs against the installed ``ptychodus`` package (no mocks). The test
process itself never imports TensorFlow or PyTorch: the adapter runs every backend call
in a freshly spawned process.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

ptychodus = pytest.importorskip("ptychodus")

from ptychodus.api.geometry import PixelGeometry  # noqa: E402
from ptychodus.api.object import Object, ObjectCenter  # noqa: E402
from ptychodus.api.probe import ProbeSequence  # noqa: E402
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence  # noqa: E402
from ptychodus.api.product import Product, ProductMetadata  # noqa: E402
from ptychodus.api.reconstruct import ReconstructInput  # noqa: E402

from ptychopinn.app.ptychodus import pixels_to_positions  # noqa: E402
from ptychopinn.data import simulate  # noqa: E402

N = 64
PIXEL_M = 2.5e-8
CENTER_M = (1.0e-6, -2.0e-6)  # a non-zero object centre, so that it must be carried through
FIRST_INDEX = 100  # scan indexes that are not 0..M-1 (upstream wrote zeros)


def product_from_simulation(scan, *, probe_modes: np.ndarray | None = None) -> Product:
    """A real ptychodus Product for a ptychopinn simulated scan (object = ground truth)."""
    obj = scan.object
    height, width = obj.shape
    x_m, y_m = pixels_to_positions(
        scan.xcoords,
        scan.ycoords,
        width_px=width,
        height_px=height,
        pixel_width_m=PIXEL_M,
        pixel_height_m=PIXEL_M,
        center_x_m=CENTER_M[0],
        center_y_m=CENTER_M[1],
    )
    positions = ProbePositionSequence(
        [
            ProbePosition(index=FIRST_INDEX + i, x_m=float(x), y_m=float(y))
            for i, (x, y) in enumerate(zip(x_m, y_m, strict=True))
        ]
    )
    probe = scan.probe[np.newaxis, np.newaxis] if probe_modes is None else probe_modes
    metadata = ProductMetadata(
        name="ptychopinn-simulated",
        comments="simulated by ptychopinn.data.simulate",
        detector_distance_m=2.0,
        photon_energy_eV=10000.0,
        probe_photon_count=float(scan.metadata["nphotons"]),
        exposure_time_s=1.0,
        mass_attenuation_m2_per_kg=0.0,
        tomography_angle_deg=0.0,
    )
    return Product(
        metadata=metadata,
        probe_positions=positions,
        probes=ProbeSequence(
            array=np.asarray(probe, dtype=np.complex64),
            opr_weights=None,
            pixel_geometry=PixelGeometry(width_m=PIXEL_M, height_m=PIXEL_M),
        ),
        object_=Object(
            array=np.asarray(obj, dtype=np.complex64),
            pixel_geometry=PixelGeometry(width_m=PIXEL_M, height_m=PIXEL_M),
            center=ObjectCenter(x_m=CENTER_M[0], y_m=CENTER_M[1]),
        ),
        losses=[],
    )


def reconstruct_input(scan, product: Product, *, bad_pixels: np.ndarray | None = None):
    """ptychodus's ReconstructInput: detector intensities (counts) + bad-pixel mask + product."""
    intensity = np.square(scan.diffraction.astype(np.float64)).round().astype(np.uint32)
    mask = np.zeros((N, N), dtype=bool) if bad_pixels is None else bad_pixels
    return ReconstructInput(diffraction_patterns=intensity, bad_pixels=mask, product=product)


@pytest.fixture(scope="session")
def scan():
    """A small grid scan of the 'lines' object: 256 patterns, N=64, step N/4 (full overlap)."""
    return simulate("lines", n_images=256, N=N, nphotons=1e9, seed=0, scan="grid")


@pytest.fixture(scope="session")
def product(scan) -> Product:
    return product_from_simulation(scan)


@pytest.fixture(scope="session")
def parameters(scan, product) -> ReconstructInput:
    return reconstruct_input(scan, product)


@pytest.fixture(scope="session")
def support() -> SimpleNamespace:
    """Constants and builders for the tests (conftest is not importable under importlib mode)."""
    return SimpleNamespace(
        N=N,
        PIXEL_M=PIXEL_M,
        CENTER_M=CENTER_M,
        FIRST_INDEX=FIRST_INDEX,
        product_from_simulation=product_from_simulation,
        reconstruct_input=reconstruct_input,
    )
