"""Torch operators against the NumPy reference (ptychopinn.data.physics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychopinn.data import physics as ref
from ptychopinn.torch import physics as tp


def _cplx(rng, shape, dtype=np.complex128):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)


def _rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def _cf(a):
    """(B, N, N, C) numpy -> (B, C, N, N) tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, 3, 1)))


def _cl(t):
    return np.moveaxis(t.detach().numpy(), 1, 3)


def _rel_cf(relative):
    """(B, 1, 2, C) numpy -> (B, 2, C) tensor."""
    return torch.from_numpy(np.ascontiguousarray(relative[:, 0]))


def _relative(rng, b, c, reach):
    rel = rng.uniform(-reach, reach, size=(b, 1, 2, c))
    return rel - rel.mean(axis=3, keepdims=True)


PRECISIONS = [
    (np.float64, np.complex128, 1e-10),
    (np.float32, np.complex64, 1e-5),
]


@pytest.mark.parametrize(("rdt", "cdt", "tol"), PRECISIONS)
@pytest.mark.parametrize("shape", [(3, 16, 16), (2, 2, 20, 24)])
def test_translate_matches_reference(rdt, cdt, tol, shape):
    rng = np.random.default_rng(1)
    img = _cplx(rng, shape, cdt)
    shifts = rng.uniform(-6, 6, size=(*shape[:-2], 2))
    shifts[0] = np.round(shifts[0])  # include an integer shift
    out = tp.translate(torch.from_numpy(img), torch.from_numpy(shifts))
    expected = ref.translate(img, shifts)
    assert out.dtype == torch.from_numpy(expected).dtype
    assert _rel_err(out.numpy(), expected) < tol
    real = img.real.astype(rdt)
    out_r = tp.translate(torch.from_numpy(real), torch.from_numpy(shifts))
    assert _rel_err(out_r.numpy(), ref.translate(real, shifts)) < tol


def test_translate_moves_content_by_plus_d():
    img = torch.zeros((1, 9, 9), dtype=torch.float64)
    img[0, 4, 4] = 1.0
    out = tp.translate(img, torch.tensor([[2.0, -1.0]], dtype=torch.float64))
    assert out[0, 3, 6] == 1.0
    assert out.sum() == 1.0


@pytest.mark.parametrize(("rdt", "cdt", "tol"), PRECISIONS)
def test_extract_matches_reference(rdt, cdt, tol):
    rng = np.random.default_rng(2)
    canvas = _cplx(rng, (90, 80), cdt)
    pos = rng.uniform(-5, 95, size=(6, 2))
    pos[0] = [40.0, 45.0]
    out = tp.extract(torch.from_numpy(canvas), torch.from_numpy(pos), 32)
    assert _rel_err(out.numpy(), ref.extract(canvas, pos, 32)) < tol


@pytest.mark.parametrize(("rdt", "cdt", "tol"), PRECISIONS)
@pytest.mark.parametrize(("N", "gridsize"), [(64, 1), (64, 2), (64, 3), (128, 2)])
@pytest.mark.parametrize("probe_big", [True, False])
def test_merge_reextract_crop_match_reference(rdt, cdt, tol, N, gridsize, probe_big):
    rng = np.random.default_rng(N + gridsize)
    b, c = 2, gridsize**2
    patches = _cplx(rng, (b, N, N, c), cdt)
    rel = _relative(rng, b, c, 7.3 if c > 1 else 0.0)
    P = ref.merge_size(rel, N)
    assert tp.merge_size(_rel_cf(rel), N) == P
    merged = tp.merge(_cf(patches), _rel_cf(rel), probe_big=probe_big)
    expected = ref.merge(patches, rel, probe_big=probe_big)
    assert merged.shape == (b, 1, P, P)
    assert _rel_err(_cl(merged), expected) < tol
    again = tp.reextract(merged, _rel_cf(rel), N)
    assert _rel_err(_cl(again), ref.reextract(expected, rel, N)) < tol
    crop = tp.centre_crop(merged, N)
    assert _rel_err(_cl(crop), ref.centre_crop(expected, N)) < tol


def test_merge_never_mixes_groups():
    rng = np.random.default_rng(3)
    patches = _cplx(rng, (2, 64, 64, 4))
    rel = _relative(rng, 2, 4, 4.0)
    both = tp.merge(_cf(patches), _rel_cf(rel))
    first = tp.merge(_cf(patches[:1]), _rel_cf(rel[:1]), P=both.shape[-1])
    np.testing.assert_allclose(both[:1].numpy(), first.numpy(), atol=1e-12)


def test_merge_integer_offsets_is_exact_inverse():
    rng = np.random.default_rng(4)
    canvas = _cplx(rng, (1, 80, 80, 1))
    rel = np.round(_relative(rng, 1, 4, 5.0))
    patches = tp.reextract(_cf(canvas), _rel_cf(rel), 64)
    merged = tp.merge(patches, _rel_cf(rel), P=80)
    back = tp.reextract(merged, _rel_cf(rel), 64)
    np.testing.assert_allclose(back.numpy(), patches.numpy(), atol=1e-12)


@pytest.mark.parametrize(("rdt", "cdt", "tol"), PRECISIONS)
@pytest.mark.parametrize("mask", [False, True])
def test_illuminate_diffract_nll_match_reference(rdt, cdt, tol, mask):
    rng = np.random.default_rng(5)
    obj = _cplx(rng, (2, 64, 64, 4), cdt)
    probe = _cplx(rng, (64, 64), cdt)
    psi = tp.illuminate(_cf(obj), torch.from_numpy(probe), mask=mask)
    psi_ref = ref.illuminate(obj, probe, mask=mask)
    assert _rel_err(_cl(psi), psi_ref) < tol
    amp = tp.diffract(psi)
    amp_ref = ref.diffract(psi_ref)
    assert _rel_err(_cl(amp), amp_ref) < tol
    target = np.abs(rng.standard_normal(amp_ref.shape)).astype(rdt) * 3
    nll = tp.poisson_nll(amp * 2, _cf(target))
    nll_ref = ref.poisson_nll(amp_ref * 2, target)
    assert abs(float(nll) - nll_ref) / abs(nll_ref) < tol


def test_probe_mask_matches_reference():
    for n in (64, 128):
        np.testing.assert_array_equal(tp.probe_mask(n, torch.float64).numpy(), ref.probe_mask(n))


def test_diffract_parseval():
    rng = np.random.default_rng(6)
    psi = torch.from_numpy(_cplx(rng, (2, 3, 64, 64)))
    amp = tp.diffract(psi)
    np.testing.assert_allclose((amp**2).sum((-2, -1)), (psi.abs() ** 2).sum((-2, -1)), rtol=1e-12)


def test_gaussian_smooth_preserves_mass_and_identity():
    rng = np.random.default_rng(7)
    field = torch.from_numpy(_cplx(rng, (64, 64)))
    assert tp.gaussian_smooth(field, 0.0) is field
    smooth = tp.gaussian_smooth(field, 1.5)
    inner = (slice(16, 48), slice(16, 48))
    # A delta in the interior spreads into a kernel summing to one.
    delta = torch.zeros((64, 64), dtype=torch.float64)
    delta[32, 32] = 1.0
    blurred = tp.gaussian_smooth(delta, 1.5)
    assert abs(float(blurred.sum()) - 1.0) < 1e-12
    assert float(blurred[32, 32]) < 1.0
    assert smooth.shape == field.shape
    assert float(smooth[inner].abs().std()) < float(field[inner].abs().std())


def test_gradcheck_operators():
    rng = np.random.default_rng(8)
    patches = torch.from_numpy(_cplx(rng, (1, 4, 8, 8))).requires_grad_(True)
    rel = _rel_cf(_relative(rng, 1, 4, 1.7))

    def chain(p):
        merged = tp.merge(p, rel, probe_big=True)
        again = tp.reextract(merged, rel, 8)
        psi = tp.illuminate(again, torch.ones((8, 8), dtype=torch.complex128), mask=False)
        return tp.diffract(psi + 0.1)

    assert torch.autograd.gradcheck(chain, (patches,), eps=1e-6, atol=1e-6)
    img = torch.from_numpy(_cplx(rng, (2, 6, 6))).requires_grad_(True)
    shifts = torch.tensor([[0.3, -1.2], [2.0, 0.5]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: tp.translate(t, shifts), (img,))
    pred = torch.rand((2, 5), dtype=torch.float64).add(0.5).requires_grad_(True)
    target = torch.rand((2, 5), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: tp.poisson_nll(p, target), (pred,))
    canvas = torch.from_numpy(_cplx(rng, (12, 12))).requires_grad_(True)
    pos = torch.tensor([[5.5, 6.25]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda c: tp.extract(c, pos, 4), (canvas,))


@pytest.mark.parametrize("sigma", [0.0, 0.7, 1.0, 2.5])
def test_gaussian_smooth_matches_the_numpy_reference(sigma):
    """``physics.gaussian_smooth`` (the probe smoothing of ModelConfig.gaussian_smoothing_sigma)
    against ``ptychopinn.data.physics.gaussian_smooth``: real and complex, batched."""
    rng = np.random.default_rng(1)
    field = (rng.normal(size=(3, 32, 24)) + 1j * rng.normal(size=(3, 32, 24))).astype(np.complex64)
    want = ref.gaussian_smooth(field.astype(np.complex128), sigma)
    got = tp.gaussian_smooth(torch.from_numpy(field), sigma)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
    real = tp.gaussian_smooth(torch.from_numpy(field.real.copy()), sigma)
    np.testing.assert_allclose(real.numpy(), want.real, rtol=1e-5, atol=1e-5)
