"""Alignment (phase plane, scale, registration, overlay) and evaluate()."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ptychopinn.stitch import (
    Stitched,
    StitchError,
    align,
    apply_shift,
    evaluate,
    overlay,
    reassemble,
    register,
    remove_phase_plane,
    scale_amplitude,
)


def smooth_object(seed: int = 0, shape: tuple[int, int] = (96, 96)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amp = 0.5 + 0.4 * gaussian_filter(rng.random(shape), 2) / 0.6
    phase = 2.0 * (gaussian_filter(rng.random(shape), 2) - 0.5)
    return amp * np.exp(1j * phase)


def test_pure_phase_ramp_is_removed() -> None:
    rows, cols = np.indices((40, 50), dtype=float)
    ramp = 0.3 + 0.05 * cols - 0.02 * rows
    np.testing.assert_allclose(remove_phase_plane(ramp), 0.0, atol=1e-12)
    bump = np.zeros((40, 50))
    bump[10:20, 10:20] = 1.0
    mask = bump == 0
    np.testing.assert_allclose(remove_phase_plane(ramp + bump, mask)[mask], 0.0, atol=1e-12)
    with pytest.raises(StitchError, match="mask must be"):
        remove_phase_plane(ramp, np.ones((3, 3), bool))
    with pytest.raises(StitchError, match="at least 3"):
        remove_phase_plane(ramp, np.zeros((40, 50), bool))


def test_amplitude_scaling() -> None:
    scaled, s = scale_amplitude(np.full((4, 4), 2.0), np.full((4, 4), 3.0))
    assert s == 1.5 and np.all(scaled == 3.0)
    with pytest.raises(StitchError, match="all-zero"):
        scale_amplitude(np.zeros((4, 4)), np.ones((4, 4)))


def test_shift_convention_and_registration() -> None:
    img = np.abs(smooth_object(1))
    np.testing.assert_allclose(apply_shift(img, (2, -3)), np.roll(img, (2, -3), (0, 1)), atol=1e-12)
    moved = apply_shift(img, (3.25, -2.5))
    dy, dx = register(img, moved)
    assert dy == pytest.approx(-3.25, abs=0.05) and dx == pytest.approx(2.5, abs=0.05)
    back = apply_shift(moved, (dy, dx))
    np.testing.assert_allclose(back[8:-8, 8:-8], img[8:-8, 8:-8], atol=1e-2)
    assert np.iscomplexobj(apply_shift(img.astype(complex), (1, 1)))
    with pytest.raises(StitchError, match="one shape"):
        register(img, img[:-1])


def test_evaluate_identical_and_invariances() -> None:
    obj = smooth_object(2)
    m = evaluate(obj, obj)
    for part in ("amplitude", "phase"):
        assert m[part]["psnr"] == math.inf
        assert m[part]["mae"] == pytest.approx(0, abs=1e-12)
        assert m[part]["ssim"] == pytest.approx(1.0)
        assert m[part]["ms_ssim"] == pytest.approx(1.0)
        assert m[part]["frc50"] == 48 and m[part]["frc50_nyquist"] == 1.0
        np.testing.assert_allclose(m[part]["frc_curve"], 1.0)
    assert m["shift"] == (0.0, 0.0) and m["shape"] == (96, 96)  # registered by default
    assert m["registration_note"] is None and m["phase_note"] is None
    assert evaluate(obj, obj, register=False)["shift"] is None
    # a global amplitude scale, a constant phase and a phase ramp are not errors
    rows, cols = np.indices(obj.shape)
    other = 1.7 * obj * np.exp(1j * (0.4 + 0.01 * cols - 0.005 * rows))
    m2 = evaluate(other, obj)
    assert m2["amplitude_scale"] == pytest.approx(1 / 1.7)
    assert m2["amplitude"]["mse"] < 1e-20 and m2["phase"]["mse"] < 1e-6
    assert evaluate(other, obj, phase_align="none")["phase"]["mse"] > 1e-3
    m3 = evaluate(obj * np.exp(0.3j), obj, phase_align="mean")
    assert m3["phase"]["mse"] < 1e-20


def test_evaluate_registers_a_shifted_copy() -> None:
    obj = smooth_object(3)
    shift = (1.5, -2.25)
    moved = apply_shift(np.abs(obj), shift) * np.exp(1j * apply_shift(np.angle(obj), shift))
    plain = evaluate(moved, obj, register=False)
    reg = evaluate(moved, obj)
    assert reg["shift"] == pytest.approx((-1.5, 2.25), abs=0.05)
    assert reg["shape"] == (90, 90) and reg["origin"] == (3, 3)
    assert reg["amplitude"]["psnr"] > plain["amplitude"]["psnr"] + 10


def test_evaluate_a_stitched_reconstruction() -> None:
    obj = smooth_object(4, (120, 120))
    rng = np.random.default_rng(5)
    pos = rng.integers(30, 90, size=(200, 2)).astype(float)
    patches = np.stack([obj[int(y) - 8 : int(y) + 8, int(x) - 8 : int(x) + 8] for x, y in pos])
    stitched = reassemble(patches, pos, crop=10)
    m = evaluate(stitched, obj)
    assert m["amplitude"]["psnr"] > 100 and m["phase"]["psnr"] > 100
    rec, truth, origin = overlay(stitched, obj)
    assert m["shape"] == rec.shape and m["origin"] == origin
    assert rec.shape[0] > 40 and rec.shape[1] > 40
    np.testing.assert_allclose(rec, truth, atol=1e-12)
    # the region is fully covered: holes at the scan's ragged edge are trimmed away
    x0, y0 = (round(v) for v in stitched.origin)
    cov = stitched.covered[origin[1] - y0 :, origin[0] - x0 :][: rec.shape[0], : rec.shape[1]]
    assert cov.all()
    noisy = Stitched(
        stitched.image + 0.05 * rng.standard_normal(stitched.shape),
        stitched.origin,
        stitched.weights,
    )
    m_noisy = evaluate(noisy, obj)
    assert 3 < m_noisy["amplitude"]["psnr"] < 30
    assert m_noisy["amplitude"]["psnr_legacy"] > m_noisy["amplitude"]["psnr"]


def test_overlay_clips_to_the_truth_and_checks_origin() -> None:
    img = np.ones((10, 10), complex)
    w = np.ones((10, 10))
    rec, truth, origin = overlay(Stitched(img, (-3.0, 5.0), w), np.zeros((12, 12)))
    assert rec.shape == truth.shape == (7, 7) and origin == (0, 5)
    ragged = w.copy()
    ragged[0, :4] = 0  # top row partly uncovered -> trimmed
    ragged[:, 9] = 0  # last column uncovered -> outside the bounding box
    ragged[5, 5] = 0  # an interior hole costs the shorter way out
    rec, _, origin = overlay(Stitched(img, (0.0, 0.0), ragged), np.zeros((12, 12)))
    assert rec.shape == (9, 5)  # row 0 trimmed, then the cut nearest the hole (right)
    sub = ragged[origin[1] :, origin[0] :][: rec.shape[0], : rec.shape[1]]
    assert sub.all()
    # a fractional origin is rounded, resampled by the fraction and trimmed by 1 px
    rec, truth, origin = overlay(Stitched(img, (1.5, 0.25), w), np.zeros((12, 12)))
    assert rec.shape == truth.shape == (8, 8) and origin == (3, 1)
    np.testing.assert_allclose(rec, 1.0, atol=1e-12)  # a constant stays constant
    with pytest.raises(StitchError, match="finite"):
        overlay(Stitched(img, (np.nan, 0.0), w), np.zeros((12, 12)))
    with pytest.raises(StitchError, match="3x3"):
        overlay(Stitched(img[:2], (0.5, 0.0), w[:2]), np.zeros((12, 12)))
    with pytest.raises(StitchError, match="covers no pixel"):
        overlay(Stitched(img, (0.0, 0.0), np.zeros((10, 10))), np.zeros((12, 12)))
    with pytest.raises(StitchError, match="outside the truth"):
        overlay(Stitched(img, (50.0, 0.0), w), np.zeros((12, 12)))


def test_evaluate_errors() -> None:
    obj = smooth_object(6, (32, 32))
    with pytest.raises(StitchError, match="one shape"):
        evaluate(obj[:-1], obj)
    with pytest.raises(StitchError, match="phase_align"):
        evaluate(obj, obj, phase_align="tilt")
    with pytest.raises(StitchError, match=r"\(H, W\) or \(H, W, 1\)"):
        evaluate(obj[None], obj)
    with pytest.raises(StitchError, match="remain"):
        evaluate(apply_shift(obj[:16, :16], (4.2, 0)), obj[:16, :16], max_shift=8)
    with pytest.raises(StitchError, match="upsample_factor"):
        evaluate(obj, obj, upsample_factor=0.5)
    with pytest.raises(StitchError, match="edge must be one of"):
        apply_shift(obj, (1, 1), edge="wrap")
    with pytest.raises(StitchError, match="window must be one of"):
        register(np.abs(obj), np.abs(obj), window="gauss")
    with pytest.raises(StitchError, match="real images"):
        register(obj, obj)
    m = evaluate(obj[..., None], obj[..., None])
    assert m["shape"] == (32, 32)


def periodic_object(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Like smooth_object, but periodic, so a Fourier shift of it is exact."""
    rng = np.random.default_rng(seed)
    amp = 0.5 + 0.4 * gaussian_filter(rng.random(shape), 2, mode="wrap") / 0.6
    phase = 2.0 * (gaussian_filter(rng.random(shape), 2, mode="wrap") - 0.5)
    return amp * np.exp(1j * phase)


@pytest.mark.parametrize("shift", [(1.5, -2.25), (0.3, 0.7), (-3.4, 2.6)])
def test_evaluate_registers_a_non_periodic_sub_pixel_shift_by_default(shift) -> None:
    """A crop of a moved object (no wrap-around) is registered to 0.05 px before metrics."""
    big = periodic_object(8, (200, 200))
    truth = big[50:150, 50:150]
    recon = 1.3 * apply_shift(big, shift)[50:150, 50:150]
    rng = np.random.default_rng(0)
    recon = recon + 0.01 * (
        rng.standard_normal(recon.shape) + 1j * rng.standard_normal(recon.shape)
    )
    plain = evaluate(recon, truth, register=False)
    reg = evaluate(recon, truth)
    assert plain["shift"] is None
    assert reg["shift"] == pytest.approx((-shift[0], -shift[1]), abs=0.05)
    m = math.ceil(max(abs(v) for v in shift))
    assert reg["shape"] == (100 - 2 * m, 100 - 2 * m) and reg["origin"] == (m, m)
    # registered: the noise floor (measured 25.6 dB amplitude PSNR, phase SSIM 0.96);
    # unregistered it was 15-24 dB and phase SSIM -0.02..0.80
    assert reg["amplitude"]["psnr"] > 24 and reg["phase"]["ssim"] > 0.9
    assert reg["amplitude"]["psnr"] > plain["amplitude"]["psnr"] + 1.5
    assert reg["amplitude_scale"] == pytest.approx(1 / 1.3, rel=1e-2)


def test_a_shift_beyond_max_shift_is_not_applied() -> None:
    obj = periodic_object(9, (96, 96))
    moved = apply_shift(obj, (5.0, -4.0))
    m = evaluate(moved, obj, max_shift=3)
    assert m["shift"] is None and m["shape"] == (96, 96)
    assert "more than max_shift" in m["registration_note"] and "5.00" in m["registration_note"]
    assert evaluate(moved, obj)["shift"] == pytest.approx((-5.0, 4.0), abs=0.05)  # 96/8 = 12


def test_a_phase_only_truth_is_registered_on_its_phase() -> None:
    obj = periodic_object(10, (96, 96))
    truth = np.exp(1j * np.angle(obj))  # amplitude 1 everywhere
    moved = np.exp(1j * apply_shift(np.angle(truth), (1.25, -0.5)))
    m = evaluate(moved, truth)
    assert m["shift"] == pytest.approx((-1.25, 0.5), abs=0.05)
    assert "phase" in m["registration_note"]
    flat = evaluate(np.ones((32, 32), complex), np.ones((32, 32), complex))
    assert flat["shift"] == (0.0, 0.0) and "neither" in flat["registration_note"]


def test_evaluate_a_fractional_origin() -> None:
    """A Stitched whose origin is not a whole pixel is resampled onto the truth's grid."""
    truth = periodic_object(7, (160, 160))
    x0, y0 = 20.3, 31.6
    xi, yi = round(x0), round(y0)
    # image[r, c] = truth at (x0 + c, y0 + r)
    image = apply_shift(truth, (yi - y0, xi - x0))[yi : yi + 90, xi : xi + 100]
    stitched = Stitched(image, (x0, y0), np.ones(image.shape))
    rec, gt, origin = overlay(stitched, truth)
    assert rec.shape == (88, 98) and origin == (xi + 1, yi + 1)
    assert np.abs(rec - gt)[4:-4, 4:-4].max() < 5e-3  # measured 2.4e-3 (mirror padding)
    m = evaluate(stitched, truth, register=False)
    rounded = evaluate(
        Stitched(image, (float(xi), float(yi)), stitched.weights), truth, register=False
    )
    # measured: 47.9 dB resampled, 30.6 dB with the origin only rounded
    assert m["amplitude"]["psnr"] > 40 > rounded["amplitude"]["psnr"]
    assert m["shape"] == (88, 98) and m["origin"] == origin


def test_align_gives_the_images_the_metrics_measure() -> None:
    obj = periodic_object(11, (64, 64))
    _, cols = np.indices(obj.shape)
    recon = 0.02 * obj * np.exp(1j * (0.7 + 0.01 * cols))
    a = align(recon, obj, register=False)
    assert a.amplitude_scale == pytest.approx(50.0)
    np.testing.assert_allclose(a.recon_amplitude, a.truth_amplitude, atol=1e-12)
    np.testing.assert_allclose(a.recon_phase, a.truth_phase, atol=1e-10)
    np.testing.assert_allclose(a.recon, a.truth, atol=1e-10)
    assert a.shape == (64, 64) and a.shift is None and a.origin == (0, 0)
    m = evaluate(recon, obj, register=False)
    assert m["amplitude"]["mse"] == pytest.approx(
        float(np.mean((a.recon_amplitude - a.truth_amplitude) ** 2))
    )
