"""TensorFlow physics operators against the NumPy reference (ptychopinn.data.physics)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from ptychopinn.data import physics as ref
from ptychopinn.tf import physics as ph

RTOL = 1e-5


def _complex(rng, shape):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def _close(got, want, rtol=RTOL):
    """Max abs error relative to the reference's max magnitude (float32 vs float64 truth)."""
    got = np.asarray(got)
    want = np.asarray(want)
    assert got.shape == want.shape
    scale = max(float(np.max(np.abs(want))), 1e-30)
    err = float(np.max(np.abs(got - want))) / scale
    assert err < rtol, f"relative error {err:.2e} >= {rtol:.0e}"


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_translate_matches_reference(rng, dtype):
    img = _complex(rng, (3, 2, 40, 52))
    img = img.real if dtype == np.float32 else img
    shifts = rng.uniform(-9, 9, size=(3, 2, 2)).astype(np.float32).astype(np.float64)
    got = ph.translate(img.astype(dtype), shifts.astype(np.float32))
    assert got.dtype == tf.as_dtype(dtype)
    _close(got, ref.translate(img, shifts))


def test_translate_integer_shift_is_exact_roll_with_zero_fill():
    img = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    out = ph.translate(img, np.array([[2.0, -1.0]], np.float32)).numpy()[0]
    want = np.zeros((6, 6), np.float32)
    want[:-1, 2:] = img[0, 1:, :-2]  # out(y, x) = img(y + 1, x - 2)
    np.testing.assert_array_equal(out, want)


@settings(max_examples=15, deadline=None)
@given(
    dx=st.floats(-20, 20, allow_nan=False),
    dy=st.floats(-20, 20, allow_nan=False),
)
def test_translate_property_matches_reference(dx, dy):
    img = np.random.default_rng(0).normal(size=(1, 24, 24))
    shifts = np.array([[dx, dy]], np.float32)
    _close(
        ph.translate(img.astype(np.float32), shifts), ref.translate(img, shifts.astype(np.float64))
    )


@pytest.mark.parametrize("N", [64, 128])
def test_extract_matches_reference(rng, N):
    canvas = _complex(rng, (N + 80, N + 60))
    pos = rng.uniform(-5, N + 70, size=(6, 2)).astype(np.float32).astype(np.float64)
    _close(
        ph.extract(canvas.astype(np.complex64), pos.astype(np.float32), N),
        ref.extract(canvas, pos, N),
    )


@pytest.mark.parametrize("N", [64, 128])
@pytest.mark.parametrize("gridsize", [1, 2, 3])
@pytest.mark.parametrize("probe_big", [True, False])
def test_merge_reextract_centre_crop_match_reference(rng, N, gridsize, probe_big):
    c = gridsize**2
    patches = _complex(rng, (2, N, N, c))
    rel = rng.uniform(-7.5, 7.5, size=(2, 1, 2, c))
    rel32 = rel.astype(np.float32)
    want = ref.merge(patches, rel32.astype(np.float64), probe_big=probe_big)
    got = ph.merge(patches.astype(np.complex64), rel32, probe_big=probe_big)
    _close(got, want)
    _close(ph.reextract(got, rel32, N), ref.reextract(want, rel32.astype(np.float64), N))
    _close(ph.centre_crop(got, N), ref.centre_crop(want, N))
    _close(
        ph.merge_centre(patches.astype(np.complex64), rel32, probe_big), ref.centre_crop(want, N)
    )


def test_merge_size_matches_reference(rng):
    rel = rng.uniform(-11, 11, size=(4, 1, 2, 4))
    assert ph.merge_size(rel, 64) == ref.merge_size(rel, 64)
    traced = tf.function(lambda r: ph.merge_size(r, 64))(tf.constant(rel, tf.float32))
    assert int(traced) == ref.merge_size(rel.astype(np.float32), 64)


def test_merge_is_independent_of_a_larger_canvas(rng):
    patches = _complex(rng, (2, 64, 64, 4)).astype(np.complex64)
    rel = rng.uniform(-6, 6, size=(2, 1, 2, 4)).astype(np.float32)
    p = ph.merge_size(rel, 64)
    small = ph.reextract(ph.merge(patches, rel, P=p), rel, 64)
    large = ph.reextract(ph.merge(patches, rel, P=p + 20), rel, 64)
    np.testing.assert_allclose(small.numpy(), large.numpy(), atol=1e-5)


def test_pad_reextract_matches_reference(rng):
    patch = _complex(rng, (3, 64, 64, 1))
    rel = rng.uniform(-6, 6, size=(3, 1, 2, 4))
    p = ref.merge_size(rel, 64)
    lo = (p - 64) // 2
    canvas = np.pad(patch, ((0, 0), (lo, p - 64 - lo), (lo, p - 64 - lo), (0, 0)))
    want = ref.reextract(canvas, rel, 64)
    _close(ph.pad_reextract(patch.astype(np.complex64), rel.astype(np.float32)), want)


def test_merge_keeps_groups_separate_when_batch_times_channels_is_large(rng):
    """Upstream summed all groups of a batch onto one canvas when B·C >= 64."""
    b, gridsize, n = 20, 2, 64  # B·C = 80
    c = gridsize**2
    patches = _complex(rng, (b, n, n, c)).astype(np.complex64)
    rel = rng.uniform(-5, 5, size=(b, 1, 2, c)).astype(np.float32)
    merged = ph.merge(patches, rel).numpy()
    for i in (0, 7, b - 1):
        alone = ph.merge(patches[i : i + 1], rel[i : i + 1], P=merged.shape[1]).numpy()
        np.testing.assert_allclose(merged[i : i + 1], alone, atol=1e-5)
    # Changing one group changes only that group's canvas.
    other = patches.copy()
    other[3] = 0
    merged2 = ph.merge(other, rel, P=merged.shape[1]).numpy()
    changed = np.abs(merged2 - merged).reshape(b, -1).max(axis=1) > 0
    assert changed.tolist() == [i == 3 for i in range(b)]
    _close(merged, ref.merge(patches.astype(np.complex128), rel.astype(np.float64)))


@pytest.mark.parametrize("mask", [False, True])
def test_illuminate_matches_reference(rng, mask):
    obj = _complex(rng, (2, 64, 64, 4))
    probe = _complex(rng, (64, 64))
    got = ph.illuminate(obj.astype(np.complex64), probe.astype(np.complex64), mask=mask)
    _close(got, ref.illuminate(obj, probe, mask=mask))
    np.testing.assert_array_equal(ph.probe_mask(64), ref.probe_mask(64).astype(np.float32))


@pytest.mark.parametrize("N", [64, 128])
def test_diffract_matches_reference_and_parseval(rng, N):
    psi = _complex(rng, (2, N, N, 3))
    got = ph.diffract(psi.astype(np.complex64))
    _close(got, ref.diffract(psi))
    np.testing.assert_allclose(
        np.sum(got.numpy() ** 2, axis=(1, 2)), np.sum(np.abs(psi) ** 2, axis=(1, 2)), rtol=1e-4
    )


def test_poisson_nll_matches_reference_and_clamps(rng):
    pred = np.abs(rng.normal(size=(4, 8, 8, 2))).astype(np.float32)
    target = np.abs(rng.normal(size=(4, 8, 8, 2))).astype(np.float32)
    pred[0, 0, 0, 0] = 0.0  # λ clamped at 1e-12: finite
    got = float(ph.poisson_nll(pred, target))
    want = ref.poisson_nll(pred, target)
    assert np.isfinite(got)
    assert abs(got - want) <= 1e-5 * abs(want)


# ------------------------------------------------------------------- gradients
def _numeric_check(fn, x0, eps=1e-3, rtol=2e-2):
    """Compare tf.GradientTape with central differences along random directions (float64 probe)."""
    x = tf.Variable(x0)
    with tf.GradientTape() as tape:
        y = fn(x)
    grad = tape.gradient(y, x).numpy()
    rng = np.random.default_rng(5)
    for _ in range(3):
        v = rng.normal(size=x0.shape).astype(x0.dtype)
        plus = float(fn(tf.constant(x0 + eps * v)))
        minus = float(fn(tf.constant(x0 - eps * v)))
        numeric = (plus - minus) / (2 * eps)
        analytic = float(np.sum(grad * v))
        assert abs(numeric - analytic) <= rtol * max(abs(numeric), 1e-3), (numeric, analytic)


def test_gradient_of_translate(rng):
    shifts = tf.constant(rng.uniform(-3, 3, size=(2, 2)), tf.float32)
    w = tf.constant(rng.normal(size=(2, 12, 12)), tf.float32)
    img = rng.normal(size=(2, 12, 12)).astype(np.float32)
    _numeric_check(lambda x: tf.reduce_sum(ph.translate(x, shifts) * w), img)


def test_gradient_of_training_chain_matches_reference_differences(rng):
    """TF gradient of merge → reextract → illuminate → diffract → NLL vs float64 NumPy differences."""
    n, c = 64, 4
    rel = rng.uniform(-3, 3, size=(1, 1, 2, c)).astype(np.float32)
    phase = rng.uniform(-1, 1, size=(1, n, n, c)).astype(np.float32)
    probe = _complex(rng, (n, n)).astype(np.complex64)
    target = (np.abs(rng.normal(size=(1, n, n, c))) * 3).astype(np.float32)
    amp0 = rng.uniform(0.2, 1.0, size=(1, n, n, c)).astype(np.float32)

    def ref_loss(amp):
        obj = amp * np.exp(1j * phase.astype(np.float64))
        patches = ref.reextract(ref.merge(obj, rel.astype(np.float64)), rel.astype(np.float64), n)
        pred = 3.0 * ref.diffract(ref.illuminate(patches, probe.astype(np.complex128)))
        return ref.poisson_nll(pred, target.astype(np.float64))

    x = tf.Variable(amp0)
    with tf.GradientTape() as tape:
        obj = tf.complex(x * tf.cos(phase), x * tf.sin(phase))
        patches = ph.reextract(ph.merge(obj, rel), rel, n)
        loss = ph.poisson_nll(3.0 * ph.diffract(ph.illuminate(patches, probe)), target)
    grad = tape.gradient(loss, x).numpy().astype(np.float64)
    assert abs(float(loss) - ref_loss(amp0.astype(np.float64))) < 1e-4 * abs(float(loss))
    eps = 1e-4
    for seed in range(3):
        v = np.random.default_rng(seed).normal(size=amp0.shape)
        a = amp0.astype(np.float64)
        numeric = (ref_loss(a + eps * v) - ref_loss(a - eps * v)) / (2 * eps)
        analytic = float(np.sum(grad * v))
        assert abs(numeric - analytic) <= 1e-3 * max(abs(numeric), 1e-6), (numeric, analytic)


def test_gradient_of_diffract_is_finite_at_zero():
    x = tf.Variable(tf.zeros((1, 8, 8, 1), tf.complex64))
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(ph.diffract(x))
    assert np.all(np.isfinite(tape.gradient(y, x).numpy()))


@pytest.mark.parametrize("sigma", [0.0, 0.7, 1.0, 2.5])
def test_gaussian_smooth_matches_the_numpy_reference(sigma):
    """``layers.gaussian_smooth`` (the probe smoothing of ModelConfig.gaussian_smoothing_sigma)
    against ``ptychopinn.data.physics.gaussian_smooth``: real and complex fields."""
    from ptychopinn.tf.layers import gaussian_smooth

    rng = np.random.default_rng(1)
    field = (rng.normal(size=(32, 24)) + 1j * rng.normal(size=(32, 24))).astype(np.complex64)
    want = ref.gaussian_smooth(field.astype(np.complex128), sigma)
    got = gaussian_smooth(tf.constant(field), sigma)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    real = gaussian_smooth(tf.constant(field.real), sigma)
    np.testing.assert_allclose(np.asarray(real), want.real, rtol=1e-5, atol=1e-5)
