"""Metrics against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import structural_similarity

from ptychopinn.stitch import StitchError, evaluate, frc, mae, ms_ssim, mse, psnr, psnr_legacy, ssim
from ptychopinn.stitch.metrics import MS_SSIM_WEIGHTS, frc_crossing, ssim_components, window_2d


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).random((64, 64))


def test_identical_images_are_perfect(image: np.ndarray) -> None:
    assert mae(image, image) == 0 and mse(image, image) == 0
    assert psnr(image, image) == math.inf
    assert ssim(image, image) == pytest.approx(1.0)
    assert ms_ssim(image, image) == pytest.approx(1.0)
    result = frc(image, image)
    np.testing.assert_allclose(result.curve, 1.0)
    assert result.frc50 == result.nyquist == 32 and result.frc50_nyquist == 1.0
    assert result.frc17_nyquist == 1.0
    # upstream (cv2.PSNR) adds DBL_EPSILON to the rmse instead of returning inf
    assert psnr_legacy(image, image) == pytest.approx(20 * math.log10(255 / np.finfo(float).eps))


def test_hand_computed_errors_and_psnr() -> None:
    target = np.zeros((8, 8))
    target[0, 0] = 2.0  # data range 2
    pred = target + 0.1  # error 0.1 everywhere
    assert mae(target, pred) == pytest.approx(0.1)
    assert mse(target, pred) == pytest.approx(0.01)
    assert psnr(target, pred) == pytest.approx(10 * math.log10(4 / 0.01))
    assert psnr(target, pred, peak=1.0) == pytest.approx(20.0)
    assert psnr_legacy(target, pred) == pytest.approx(20 * math.log10(255 / 0.1))
    with pytest.raises(StitchError, match="peak"):
        psnr(np.zeros((8, 8)), np.ones((8, 8)))


def test_ssim_components_match_scikit_image(image: np.ndarray) -> None:
    other = image + 0.1 * np.random.default_rng(1).standard_normal(image.shape)
    full, cs = ssim_components(image, other, 1.0)
    assert full == pytest.approx(structural_similarity(image, other, data_range=1.0), abs=1e-10)
    assert ssim(image, other) == pytest.approx(
        structural_similarity(image, other, data_range=float(np.ptp(image)), win_size=7)
    )
    assert 0 < full < cs < 1


def test_ms_ssim_composition(image: np.ndarray) -> None:
    other = image + 0.1 * np.random.default_rng(1).standard_normal(image.shape)
    assert ms_ssim(image, other, 1.0, levels=1) == pytest.approx(ssim(image, other, 1.0))
    # two levels: cs(full)^w0' * ssim(half)^w1' with renormalised weights
    w = np.array(MS_SSIM_WEIGHTS[:2]) / sum(MS_SSIM_WEIGHTS[:2])
    _, cs0 = ssim_components(image, other, 1.0)

    def half(a: np.ndarray) -> np.ndarray:
        return a.reshape(32, 2, 32, 2).mean(axis=(1, 3))

    s1, _ = ssim_components(half(image), half(other), 1.0)
    assert ms_ssim(image, other, 1.0, levels=2) == pytest.approx(cs0 ** w[0] * s1 ** w[1])
    # a 64 px image supports 4 scales (64, 32, 16, 8 >= 7); more are not used
    assert ms_ssim(image, other, 1.0, levels=5) == pytest.approx(
        ms_ssim(image, other, 1.0, levels=4)
    )
    from scipy.ndimage import gaussian_filter

    smoothed = ms_ssim(gaussian_filter(image, 1.0), gaussian_filter(other, 1.0))
    assert ms_ssim(image, other, sigma=1.0) == pytest.approx(smoothed)
    assert ms_ssim(image, -image) == 0.0
    with pytest.raises(StitchError, match="levels"):
        ms_ssim(image, other, levels=6)


def test_frc_of_independent_noise_is_low_and_scale_invariant(image: np.ndarray) -> None:
    noise = np.random.default_rng(2).random((64, 64))
    r = frc(image - image.mean(), noise - noise.mean())
    assert np.abs(r.curve[1:]).mean() < 0.2
    assert r.frc50 < 2
    assert np.allclose(frc(image, 3 * image).curve, 1.0)
    rect = frc(np.pad(image, ((0, 0), (5, 5))), np.pad(image, ((0, 0), (5, 5))))
    assert len(rect.curve) == 33  # centre-cropped to 64 x 64
    smooth = frc(image, image + 0.5 * noise, smooth_sigma=1.0)
    assert smooth.curve.shape == (33,)


def test_frc_constant_images() -> None:
    c = np.ones((16, 16))
    np.testing.assert_allclose(frc(c, c).curve, 1.0)
    assert frc(c, np.zeros((16, 16)), window=None).curve[0] == 0.0
    # windowed, each image loses its mean first: two constants have no power to compare
    np.testing.assert_allclose(frc(c, np.zeros((16, 16))).curve, 1.0)


def sharp_object(shape: tuple[int, int] = (256, 256)) -> np.ndarray:
    """8-px bars, a gradient and fine texture: sharp, and not periodic across its border."""
    rng = np.random.default_rng(0)
    rows, cols = np.indices(shape)
    texture = gaussian_filter(rng.random(shape), 1)
    return 0.5 + 0.3 * ((cols // 8) % 2) + 0.002 * rows + 0.2 * texture


@pytest.mark.parametrize("window", ["hann", "tukey"])
def test_frc_of_a_blurred_image_is_well_below_nyquist(window: str) -> None:
    """Without a window the border discontinuity (alike in both images) held the curve
    near 0.87 up to Nyquist: a sigma-4 px blur scored full resolution."""
    sharp = sharp_object()
    blurred = gaussian_filter(sharp, 4)
    assert frc(sharp, sharp, window=window).frc50_nyquist == 1.0
    r = frc(sharp, blurred, window=window)
    assert r.frc50_nyquist < 0.5  # measured 0.31 (hann), 0.23 (tukey)
    assert r.curve[-5:].max() < 0.5  # it does not climb back near Nyquist
    old = frc(sharp, blurred, window=None)
    assert old.frc50_nyquist == 1.0 and old.curve[-5:].min() > 0.8  # the bias it removes
    assert frc(sharp, gaussian_filter(sharp, 8)).frc50 < r.frc50  # more blur, lower


def test_window_2d() -> None:
    w = window_2d((8, 12))
    assert w.shape == (8, 12) and w[0].max() == 0.0 and w.max() == pytest.approx(1.0)
    t = window_2d((64, 64), "tukey")
    assert np.all(t[16:48, 16:48] == 1.0) and t[0, 0] == 0.0
    assert np.all(window_2d((3, 4), None) == 1.0)
    with pytest.raises(StitchError, match="window must be one of"):
        window_2d((4, 4), "gauss")
    with pytest.raises(StitchError, match="window must be one of"):
        frc(np.ones((4, 4)), np.ones((4, 4)), window="gauss")


def test_frc_crossing_interpolates_in_ring_units() -> None:
    curve = np.array([1.0, 0.9, 0.7, 0.3, 0.1, 0.05])
    assert frc_crossing(curve, 0.5) == pytest.approx(2.5)
    assert frc_crossing(curve, 1 / 7) == pytest.approx(3 + (0.3 - 1 / 7) / 0.2)
    assert frc_crossing(curve, 0.01) == 5.0


def test_low_resolution_copy_crosses_early(image: np.ndarray) -> None:
    from scipy.ndimage import gaussian_filter

    blurred = gaussian_filter(image, 3)
    r = frc(image, blurred)
    assert 1 < r.frc50 < 32 and 0 < r.frc50_nyquist < 1
    assert r.frc17 >= r.frc50


@pytest.mark.parametrize("fn", [mae, mse, psnr, psnr_legacy, ssim, ms_ssim])
def test_shape_and_dtype_errors(fn) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StitchError, match=r"found target \(8, 8\) and pred \(8, 9\)"):
        fn(np.ones((8, 8)), np.ones((8, 9)))
    with pytest.raises(StitchError, match="complex"):
        fn(np.ones((8, 8)), np.ones((8, 8)) * 1j)


def test_small_image_errors() -> None:
    with pytest.raises(StitchError, match="7x7"):
        ssim(np.ones((5, 5)), np.ones((5, 5)))
    with pytest.raises(StitchError, match="7x7"):
        ms_ssim(np.ones((5, 5)), np.ones((5, 5)))
    with pytest.raises(StitchError, match="2x2"):
        frc(np.ones((1, 1)), np.ones((1, 1)))
    with pytest.raises(StitchError, match="one shape"):
        frc(np.ones((4, 4)), np.ones((4, 5)))
    assert ssim(np.ones((8, 8)), np.ones((8, 8))) == pytest.approx(1.0)
    assert ssim(np.ones((8, 8)), np.zeros((8, 8))) < 1


def test_frc_crossing_of_a_curve_already_below_threshold_at_ring_zero() -> None:
    """A flat image's FRC can start below the threshold; no division by zero."""
    curve = np.array([0.0, 0.0, 0.0, 0.0])
    assert frc_crossing(curve, 0.5) == 0.0


def test_evaluate_a_constant_phase_image() -> None:
    rng = np.random.default_rng(3)
    truth = (0.5 + 0.5 * rng.random((48, 48))) * np.exp(1j * rng.random((48, 48)))
    recon = np.full_like(truth, 0.7)
    metrics = evaluate(recon, truth)
    assert np.isfinite(metrics["phase"]["mae"])


@pytest.mark.parametrize("phase_align", ["plane", "mean", "none"])
def test_evaluate_an_amplitude_only_truth(phase_align: str) -> None:
    """A truth without phase structure (zero, constant or a pure ramp: an amplitude-only
    object) has nothing to score a phase against: no PSNR/SSIM/FRC, a phase_note instead."""
    rng = np.random.default_rng(4)
    rows, cols = np.indices((48, 48))
    for truth_phase in (0.0, 0.3 + 0.02 * cols - 0.01 * rows):
        truth = (0.2 + rng.random((48, 48))) * np.exp(1j * truth_phase)
        recon = truth * np.exp(0.1j * rng.standard_normal((48, 48)))
        metrics = evaluate(recon, truth, phase_align=phase_align)
        phase = metrics["phase"]
        assert "truth has no phase structure" in metrics["phase_note"]
        for key in (
            "psnr",
            "psnr_legacy",
            "ssim",
            "ms_ssim",
            "frc50",
            "frc50_nyquist",
            "frc_curve",
        ):
            assert phase[key] is None, key
        assert phase["mae"] > 0.05 and np.isfinite(phase["mse"])  # the invented phase
        assert np.isfinite(metrics["amplitude"]["psnr"]) and metrics["amplitude"]["ssim"] > 0.5
    flat = evaluate(np.full((48, 48), 0.7 + 0j), np.full((48, 48), 0.5 + 0j))
    assert np.isnan(flat["amplitude"]["psnr"])
    assert np.isfinite(flat["amplitude"]["ssim"])


def test_evaluate_if_possible_reports_metrics_a_reason_or_nothing() -> None:
    from ptychopinn.stitch import Stitched, evaluate_if_possible

    rng = np.random.default_rng(5)
    truth = (0.5 + rng.random((40, 40))) * np.exp(1j * rng.random((40, 40)))
    covered = np.ones((20, 20), dtype=bool)
    good = Stitched(image=truth[10:30, 10:30], origin=(10.0, 10.0), weights=covered.astype(float))
    assert evaluate_if_possible(good, None) == {}
    got = evaluate_if_possible(good, truth)
    assert set(got) == {"metrics"} and got["metrics"]["amplitude"]["ssim"] == pytest.approx(1.0)
    outside = Stitched(image=truth[:20, :20], origin=(500.0, 500.0), weights=covered.astype(float))
    got = evaluate_if_possible(outside, truth)
    assert set(got) == {"metrics_error"} and "outside the truth" in got["metrics_error"]


def structured_truth(seed: int = 0, shape: tuple[int, int] = (128, 128)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amp = 0.5 + 0.4 * gaussian_filter(rng.random(shape), 2) / 0.6
    phase = 2.0 * (gaussian_filter(rng.random(shape), 2) - 0.5)
    return amp * np.exp(1j * phase)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_flat_phase_scores_low_against_a_structured_truth(seed: int) -> None:
    """Phase SSIM is on radians with the truth's range as data range. Mapped to [0, 1] by
    (phi + pi) / 2pi with range 1 (as before), a flat phase scored 0.908-0.913 here."""
    truth = structured_truth(seed)
    flat = np.abs(truth).astype(np.complex128)  # the right amplitude, no phase at all
    m = evaluate(flat, truth)
    assert m["phase_note"] is None
    assert m["phase"]["ssim"] < 0.5 and m["phase"]["ms_ssim"] < 0.5  # measured 0.01-0.02, 0.09-0.13
    same = evaluate(truth, truth)
    assert same["phase"]["ssim"] == pytest.approx(1.0) and same["phase"][
        "ms_ssim"
    ] == pytest.approx(1.0)
    # the data range is stated: the truth phase's range after plane removal, in radians
    from ptychopinn.stitch import remove_phase_plane

    assert m["phase"]["data_range"] == pytest.approx(
        float(np.ptp(remove_phase_plane(np.angle(truth))))
    )
    # and a fair reconstruction still scores high: noise of 20 % of the phase std
    rng = np.random.default_rng(seed)
    noise = 0.2 * np.std(np.angle(truth)) * rng.standard_normal(truth.shape)
    noisy = evaluate(np.abs(truth) * np.exp(1j * (np.angle(truth) + noise)), truth)
    assert noisy["phase"]["ssim"] > 0.9  # measured 0.94


def test_phase_threshold_separates_weak_structure_from_none() -> None:
    truth = structured_truth(3)
    weak = np.abs(truth) * np.exp(1j * 0.05 * np.angle(truth))  # std ~4e-3 rad
    m = evaluate(weak, weak)
    assert m["phase_note"] is None and m["phase"]["ssim"] == pytest.approx(1.0)
    m = evaluate(weak, weak, phase_threshold=0.1)
    assert "no phase structure" in m["phase_note"] and m["phase"]["ssim"] is None
