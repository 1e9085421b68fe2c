"""Property tests of the NumPy reference operators (METHOD.md §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptychopinn.data import physics


def _roll_zero(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Integer shift with zero fill, written independently of translate."""
    h, w = img.shape
    out = np.zeros_like(img)
    for y in range(h):
        for x in range(w):
            sy, sx = y - dy, x - dx
            if 0 <= sy < h and 0 <= sx < w:
                out[y, x] = img[sy, sx]
    return out


@settings(max_examples=40, deadline=None)
@given(dx=st.integers(-9, 9), dy=st.integers(-9, 9), seed=st.integers(0, 1000))
def test_integer_translate_is_roll_with_zero_fill(dx: int, dy: int, seed: int) -> None:
    img = np.random.default_rng(seed).normal(size=(7, 8))
    np.testing.assert_array_equal(physics.translate(img, [dx, dy]), _roll_zero(img, dx, dy))


def test_translate_content_moves_by_plus_d() -> None:
    img = np.zeros((9, 9))
    img[4, 4] = 1.0
    out = physics.translate(img, [2, -1])  # dx=2 (columns), dy=-1 (rows)
    assert out[3, 6] == 1.0 and out.sum() == 1.0


def test_translate_bilinear_half_pixel_and_precision() -> None:
    img = np.zeros((5, 5), dtype=np.float32)
    img[2, 2] = 1.0
    out = physics.translate(img, np.array([0.5, 0.0]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[2, 2:4], [0.5, 0.5])
    out64 = physics.translate(img.astype(np.float64), [0.25, 0.75])
    assert out64.dtype == np.float64
    np.testing.assert_allclose(
        out64[2:4, 2:4], [[0.75 * 0.25, 0.25 * 0.25], [0.75 * 0.75, 0.25 * 0.75]]
    )


def test_translate_matches_scipy_shift_inside() -> None:
    from scipy import ndimage

    img = np.random.default_rng(0).normal(size=(16, 16))
    ours = physics.translate(img, [1.3, -2.6])
    ref = ndimage.shift(img, (-2.6, 1.3), order=1, mode="constant", cval=0.0)
    np.testing.assert_allclose(ours[4:-4, 4:-4], ref[4:-4, 4:-4], atol=1e-12)


def test_translate_batched_broadcasting_and_complex() -> None:
    rng = np.random.default_rng(1)
    imgs = (rng.normal(size=(3, 2, 6, 6)) + 1j * rng.normal(size=(3, 2, 6, 6))).astype(np.complex64)
    shifts = rng.normal(size=(3, 2, 2)) * 2
    out = physics.translate(imgs, shifts)
    assert out.shape == imgs.shape and out.dtype == np.complex64
    for i in range(3):
        for j in range(2):
            np.testing.assert_allclose(
                out[i, j], physics.translate(imgs[i, j], shifts[i, j]), rtol=1e-5, atol=1e-6
            )
    # one shift broadcast over a batch
    out2 = physics.translate(imgs[:, 0], [1, 0])
    np.testing.assert_array_equal(out2[:, :, 1:], imgs[:, 0, :, :-1])


def test_translate_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        physics.translate(np.zeros((4, 4)), [1, 2, 3])
    with pytest.raises(ValueError):
        physics.translate(np.zeros(4), [1, 2])


def test_extract_centres_patch_on_position() -> None:
    canvas = np.arange(40 * 50, dtype=np.float64).reshape(40, 50)
    N = 8
    patches = physics.extract(canvas, np.array([[20, 15], [30.0, 25.0]]), N)
    assert patches.shape == (2, N, N)
    assert patches[0, N // 2, N // 2] == canvas[15, 20]  # row = y, col = x
    assert patches[1, N // 2, N // 2] == canvas[25, 30]
    np.testing.assert_array_equal(patches[0], canvas[15 - 4 : 15 + 4, 20 - 4 : 20 + 4])


def test_extract_equals_translate_then_crop_and_zero_outside() -> None:
    rng = np.random.default_rng(2)
    canvas = rng.normal(size=(32, 32)) + 1j * rng.normal(size=(32, 32))
    pos = np.array([[10.3, 12.7], [2.0, 30.5], [16.0, 16.0]])
    N = 8
    got = physics.extract(canvas, pos, N)
    centre = np.array([16.0, 16.0])
    moved = physics.translate(np.broadcast_to(canvas, (3, 32, 32)), centre - pos)
    want = moved[:, 12:20, 12:20]
    np.testing.assert_allclose(got, want, atol=1e-12)
    # outside the canvas is zero
    far = physics.extract(canvas, np.array([[-20.0, -20.0]]), N)
    assert not far.any()


def test_extract_merge_identity_on_covered_pixels() -> None:
    rng = np.random.default_rng(3)
    obj = rng.normal(size=(64, 64)) + 1j * rng.normal(size=(64, 64))
    N = 16
    members = np.array([[30, 30], [34, 30], [30, 36], [34, 36]], dtype=np.float64)
    patches = physics.extract(obj, members, N)  # (C, N, N)
    grouped = np.moveaxis(patches, 0, -1)[None]  # (1, N, N, C)
    nn = members.T[None, None]  # (1, 1, 2, C)
    offsets = nn.mean(axis=-1, keepdims=True)
    relative = -(nn - offsets)
    canvas = physics.merge(grouped, relative, probe_big=True)
    P = physics.merge_size(relative, N)
    assert canvas.shape == (1, P, P, 1)
    back = physics.reextract(canvas, relative, N)
    np.testing.assert_allclose(back, grouped, atol=1e-12)
    # the merged canvas equals the object around the group centre on covered pixels
    cx, cy = offsets[0, 0, 0, 0], offsets[0, 0, 1, 0]
    ref = physics.extract(obj, np.array([[cx, cy]]), P)[0]
    covered = canvas[0, :, :, 0] != 0
    np.testing.assert_allclose(canvas[0, :, :, 0][covered], ref[covered], atol=1e-12)


def test_merge_normalises_overlap_counts() -> None:
    N, C = 8, 4
    patches = np.ones((2, N, N, C))
    relative = np.array([[[[-2, 2, -2, 2], [-2, -2, 2, 2]]]] * 2, dtype=np.float64)
    canvas = physics.merge(patches, relative, probe_big=True)
    values = canvas[canvas != 0]
    np.testing.assert_allclose(values, 1.0)
    # unnormalised sum would be up to C where all overlap
    assert canvas.shape == (2, 12, 12, 1)


def test_merge_probe_small_support_and_uncovered_zero() -> None:
    N = 8
    patches = np.full((1, N, N, 1), 3.0)
    canvas = physics.merge(patches, np.zeros((1, 1, 2, 1)), probe_big=False, P=12)
    assert canvas.shape == (1, 12, 12, 1)
    inner = canvas[0, 4:8, 4:8, 0]
    np.testing.assert_allclose(inner, 3.0)
    assert canvas.sum() == pytest.approx(3.0 * 16)


def test_merge_groups_never_mix() -> None:
    rng = np.random.default_rng(4)
    patches = rng.normal(size=(3, 8, 8, 4))
    relative = rng.normal(size=(3, 1, 2, 4))
    full = physics.merge(patches, relative, P=14)
    for b in range(3):
        np.testing.assert_allclose(
            full[b], physics.merge(patches[b : b + 1], relative[b : b + 1], P=14)[0]
        )


def test_merge_errors_and_size() -> None:
    assert physics.merge_size(np.array([[[[0.5, -1.2]]]]), 8) == 12
    assert physics.merge_size(np.zeros((1, 1, 2, 1)), 64) == 64
    assert physics.merge_size(np.zeros((0,)), 8) == 8
    with pytest.raises(ValueError):
        physics.merge(np.zeros((1, 8, 8, 2)), np.zeros((1, 1, 2, 3)))
    with pytest.raises(ValueError):
        physics.merge(np.zeros((8, 8, 2)), np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError):
        physics.merge(np.zeros((1, 8, 8, 1)), np.zeros((1, 1, 2, 1)), P=6)
    with pytest.raises(ValueError):
        physics.reextract(np.zeros((1, 8, 8)), np.zeros((1, 1, 2, 1)), 4)
    with pytest.raises(ValueError):
        physics.centre_crop(np.zeros((1, 4, 4, 1)), 8)
    with pytest.raises(ValueError):
        physics.extract(np.zeros((2, 4, 4)), np.zeros((1, 2)), 2)


def test_centre_crop() -> None:
    canvas = np.arange(36.0).reshape(1, 6, 6, 1)
    np.testing.assert_array_equal(physics.centre_crop(canvas, 2)[0, :, :, 0], [[14, 15], [20, 21]])


def test_probe_mask_disk() -> None:
    m = physics.probe_mask(64)
    assert m.shape == (64, 64)
    # symmetric about (31.5, 31.5) and radius 16
    np.testing.assert_array_equal(m, m[::-1, ::-1])
    np.testing.assert_array_equal(m, m.T)
    assert m[32, 32] == 1 and m[31, 16] == 1 and m[31, 15] == 0
    assert abs(m.sum() - np.pi * 16**2) / (np.pi * 16**2) < 0.02


def test_illuminate_and_mask() -> None:
    rng = np.random.default_rng(5)
    obj = rng.normal(size=(2, 8, 8, 3)) + 0j
    probe = rng.normal(size=(8, 8)) + 1j * rng.normal(size=(8, 8))
    psi = physics.illuminate(obj, probe)
    np.testing.assert_allclose(psi[1, :, :, 2], obj[1, :, :, 2] * probe)
    masked = physics.illuminate(obj, probe, mask=True)
    np.testing.assert_allclose(masked[0, :, :, 0], obj[0, :, :, 0] * probe * physics.probe_mask(8))
    with pytest.raises(ValueError):
        physics.illuminate(obj, probe[:4, :4])


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_diffract_parseval_and_centre(dtype: type) -> None:
    rng = np.random.default_rng(6)
    psi = (rng.normal(size=(3, 16, 16, 2)) + 1j * rng.normal(size=(3, 16, 16, 2))).astype(dtype)
    amp = physics.diffract(psi)
    assert amp.dtype == (np.float32 if dtype == np.complex64 else np.float64)
    lhs = np.sum(amp.astype(np.float64) ** 2, axis=(1, 2))
    rhs = np.sum(np.abs(psi.astype(np.complex128)) ** 2, axis=(1, 2))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-6)
    flat = np.ones((1, 16, 16, 1), dtype=dtype)
    peak = physics.diffract(flat)
    assert peak[0, 8, 8, 0] == pytest.approx(16.0) and peak.sum() == pytest.approx(16.0)
    with pytest.raises(ValueError):
        physics.diffract(np.ones((1, 4, 5, 1)))


def test_poisson_nll_values() -> None:
    pred = np.array([1.0, 2.0, 0.0])
    target = np.array([1.0, 1.0, 0.0])
    # saturated form λ - y - y·log(λ/y): 0 at a perfect fit, λ where y = 0
    expected = np.mean([0.0, 4.0 - 1.0 - np.log(4.0), 1e-12])
    assert physics.poisson_nll(pred, target) == pytest.approx(expected)
    # minimised (at 0) where pred == target
    t = np.array([3.0])
    assert physics.poisson_nll(t, t) == pytest.approx(0.0, abs=1e-12)
    assert physics.poisson_nll(t, t) < physics.poisson_nll(t * 1.1, t)


def test_poisson_nll_is_bare_nll_plus_a_constant() -> None:
    """Same gradients as ``λ - y·log λ``; never negative, even at 10⁹-photon counts."""
    rng = np.random.default_rng(3)
    target = rng.uniform(0.0, 3e3, size=(4, 8, 8))
    target[0, 0, 0] = 0.0
    y = target**2
    const = np.mean(np.where(y > 0, y * np.log(np.maximum(y, 1e-300)), 0.0) - y)
    for pred in (target * 1.3, rng.uniform(0.0, 3e3, size=target.shape)):
        lam = np.maximum(pred**2, 1e-12)
        bare = np.mean(lam - y * np.log(lam))
        nll = physics.poisson_nll(pred, target)
        assert nll >= 0.0
        assert nll == pytest.approx(bare + const, rel=1e-9)


def test_poisson_observe_seeded() -> None:
    amp = np.full((2000,), 10.0, dtype=np.float32)
    a = physics.poisson_observe(amp, np.random.default_rng(0))
    b = physics.poisson_observe(amp, 0)
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.mean(a.astype(np.float64) ** 2) == pytest.approx(100.0, rel=0.02)
    np.testing.assert_allclose(
        a.astype(np.float64) ** 2, np.round(a.astype(np.float64) ** 2), rtol=1e-6
    )
    with pytest.raises(ValueError):
        physics.poisson_observe(amp + 0j, 0)


def test_norm_factor_and_intensity_scales() -> None:
    d = np.random.default_rng(7).integers(0, 20, size=(5, 8, 8, 4)).astype(np.int16)
    f = physics.norm_factor(d)
    x = d.astype(np.float64) * f
    assert np.mean(np.sum(x**2, axis=(1, 2))) == pytest.approx(16.0)
    with pytest.raises(ValueError):
        physics.norm_factor(np.zeros((2, 4, 4)))
    assert physics.intensity_scale_closed_form(1e6, 64) == pytest.approx(1000 / 32)
    with pytest.raises(ValueError):
        physics.intensity_scale_closed_form(0, 64)
    psi = np.full((4, 8, 8), 0.5 + 0j)
    assert physics.intensity_scale_from_data(1e4, psi) == pytest.approx(np.sqrt(1e4 / 16.0))
    with pytest.raises(ValueError):
        physics.intensity_scale_from_data(1e4, np.zeros((1, 4, 4)))


def test_support_threshold_is_ptycho_configs() -> None:
    import ptychopinn.config.constants

    assert physics.SUPPORT_THRESHOLD is ptychopinn.config.constants.SUPPORT_THRESHOLD


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_gaussian_smooth_matches_scipy_with_zero_padding(sigma) -> None:
    """The reference is scipy's Gaussian filter with zeros outside and the same taps
    (scipy's radius int(4σ + 0.5) equals ceil(4σ) for these σ)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    field = rng.normal(size=(2, 16, 12)) + 1j * rng.normal(size=(2, 16, 12))
    got = physics.gaussian_smooth(field, sigma)
    for b in range(2):
        for part in (np.real, np.imag):
            want = gaussian_filter(part(field[b]), sigma, mode="constant", truncate=4.0)
            np.testing.assert_allclose(part(got[b]), want, rtol=1e-12, atol=1e-12)
    k = physics.gaussian_kernel(sigma)
    assert len(k) == 2 * math.ceil(4 * sigma) + 1 and k.sum() == pytest.approx(1.0)


def test_gaussian_smooth_identity_impulse_and_dtype() -> None:
    field = np.zeros((9, 9), np.float32)
    field[4, 4] = 1.0
    np.testing.assert_array_equal(physics.gaussian_smooth(field, 0.0), field)
    k = physics.gaussian_kernel(1.0)
    out = physics.gaussian_smooth(field, 1.0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.outer(k, k), rtol=1e-6)  # radius 4: the whole kernel
    assert physics.gaussian_smooth(field.astype(np.complex64), 1.0).dtype == np.complex64
    with pytest.raises(ValueError, match="sigma"):
        physics.gaussian_kernel(float("nan"))
