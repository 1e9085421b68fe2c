"""ptychodus's own forward model and ptychopinn's physics agree on one product.

This pins the conventions the adapter relies on: the half-pixel offset between
ptychodus's (N-1)/2 and ptychopinn's N/2 patch centre, and the orientation of the
far-field pattern (zero frequency at N/2, no mirror).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ptychodus")

from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
from ptychodus.api.product import Product
from ptychodus.api.simulate.diffraction import generate_diffraction_data

from ptychopinn.app.ptychodus import scan_from_input
from ptychopinn.data import simulate


def _normalised(patterns):
    patterns = np.asarray(patterns, dtype=np.float64)
    return patterns / patterns.sum(axis=(1, 2), keepdims=True)


@pytest.fixture(scope="module")
def noiseless(support):
    scan = simulate("lines", n_images=16, N=support.N, seed=0, scan="grid", poisson=False)
    return scan, support.product_from_simulation(scan)


def test_ptychodus_simulates_the_patterns_ptychopinn_simulates(noiseless):
    scan, product = noiseless
    theirs = _normalised(generate_diffraction_data(product).get_patterns())
    ours = _normalised(np.square(scan.diffraction))
    assert np.max(np.abs(theirs - ours)) < 2e-4  # peak ~0.1
    # a mirrored pattern or a half-pixel position error would be far off
    assert np.max(np.abs(theirs - ours[:, ::-1, ::-1])) > 1e-2
    pixel = product.object_.get_pixel_geometry().width_m
    moved = ProbePositionSequence(
        [
            ProbePosition(p.index, p.x_m + pixel / 2, p.y_m + pixel / 2)
            for p in product.probe_positions
        ]
    )
    shifted = Product(product.metadata, moved, product.probes, product.object_, product.losses)
    assert (
        np.max(np.abs(_normalised(generate_diffraction_data(shifted).get_patterns()) - ours)) > 2e-3
    )


def test_adapter_reads_ptychodus_simulated_data(noiseless, support):
    scan, product = noiseless
    data = generate_diffraction_data(product)
    params = support.reconstruct_input(scan, product)
    params = type(params)(data.get_patterns(), data.get_bad_pixels(), product)
    converted = scan_from_input(params)
    np.testing.assert_allclose(converted.xcoords, scan.xcoords, atol=1e-9)
    amp = converted.diffraction / np.sqrt(
        np.sum(converted.diffraction**2, axis=(1, 2), keepdims=True)
    )
    ref = scan.diffraction / np.sqrt(np.sum(scan.diffraction**2, axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(amp, ref, atol=2e-3)
