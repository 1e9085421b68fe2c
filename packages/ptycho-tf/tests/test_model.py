"""The Keras models: names, shapes, init, every ModelConfig option, forward arithmetic."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from ptychopinn.config import ModelConfig, layer_plan
from ptychopinn.data import physics as ref
from ptychopinn.tf import layers as L
from ptychopinn.tf.errors import WeightsError
from ptychopinn.tf.model import build_model, compute_dtype_policy
from ptychopinn.tf.weights import export_weights, import_weights


def _inputs(rng, b, c, reach=4.0):
    x = rng.uniform(0, 2, size=(b, 64, 64, c)).astype(np.float32)
    rel = rng.uniform(-reach, reach, size=(b, 1, 2, c)).astype(np.float32)
    rel -= rel.mean(axis=3, keepdims=True)
    return x, rel


def _probe(rng, n=64):
    return (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))).astype(np.complex64)


def test_inputs_outputs_and_dtypes(rng):
    m = build_model(ModelConfig(N=64, gridsize=2, n_filters_scale=1), _probe(rng), 50.0)
    names = [t.name for t in m.diffraction_to_obj.inputs]
    assert names == ["input", "input_positions"]
    assert tuple(m.diffraction_to_obj.inputs[0].shape) == (None, 64, 64, 4)
    assert tuple(m.diffraction_to_obj.inputs[1].shape) == (None, 1, 2, 4)
    x, rel = _inputs(rng, 3, 4)
    obj, amp, inten = m.autoencoder([x, rel])
    assert obj.dtype == tf.complex64 and obj.shape == (3, 64, 64, 1)
    assert amp.dtype == tf.float32 and amp.shape == (3, 64, 64, 4)
    np.testing.assert_allclose(inten.numpy(), amp.numpy() ** 2, rtol=1e-6)
    d = m.diffraction_to_obj({"input": x, "input_positions": rel})
    assert d.dtype == tf.complex64 and d.shape == (3, 64, 64, 1)
    np.testing.assert_array_equal(d.numpy(), obj.numpy())


def test_weights_are_shared_and_canonically_named(rng):
    cfg = ModelConfig(N=64, gridsize=1, n_filters_scale=1)
    m = build_model(cfg, _probe(rng), 10.0)
    ids = {id(v) for v in m.autoencoder.weights}
    assert ids == {id(v) for v in m.diffraction_to_obj.weights} | {
        id(m.illumination.probe_real),
        id(m.illumination.probe_imag),
    }
    plan = layer_plan(cfg)
    w = export_weights(m)
    assert {k: v.shape for k, v in w.items()} == plan.parameter_shapes()
    assert w["probe"].dtype == np.complex64
    for spec in plan.conv_layers():
        assert m.conv(spec.name).name == spec.name
    assert m.scaler.log_scale.trainable


def test_glorot_init_seeded_and_zero_bias(rng):
    cfg = ModelConfig(N=64, gridsize=1, n_filters_scale=1)
    a = export_weights(build_model(cfg, seed=3))
    b = export_weights(build_model(cfg, seed=3))
    c = export_weights(build_model(cfg, seed=4))
    for name, spec in layer_plan(cfg).parameter_shapes().items():
        np.testing.assert_array_equal(a[name], b[name])
        if name.endswith(".bias"):
            assert not a[name].any()
        elif name.endswith(".weight"):
            out_c, in_c, kh, kw = spec
            limit = math.sqrt(6.0 / (kh * kw * (in_c + out_c)))
            assert np.abs(a[name]).max() <= limit
            assert np.abs(a[name]).max() > 0.5 * limit
            assert not np.array_equal(a[name], c[name])
    assert a["log_scale"] == np.float32(0.0)  # log(s0) with s0 = 1


def test_forward_arithmetic_matches_reference(rng):
    """pred_amp = s · diffract(illuminate(reextract(merge(A·e^{iφ})))) and the inference object."""
    cfg = ModelConfig(N=64, gridsize=2, n_filters_scale=1)
    probe = _probe(rng)
    m = build_model(cfg, probe, 30.0)
    m.scaler.log_scale.assign(math.log(45.0))
    x, rel = _inputs(rng, 2, 4)
    centre, pred_amp, _, obj, amp, phase = (t.numpy() for t in m.training_model([x, rel]))
    np.testing.assert_allclose(obj, amp * np.exp(1j * phase), rtol=1e-5, atol=1e-6)
    rel64 = rel.astype(np.float64)
    patches = ref.reextract(ref.merge(obj.astype(np.complex128), rel64), rel64, 64)
    want = 45.0 * ref.diffract(ref.illuminate(patches, probe.astype(np.complex128)))
    np.testing.assert_allclose(pred_amp, want, rtol=0, atol=2e-5 * np.abs(want).max())
    want_centre = ref.centre_crop(ref.merge(obj.astype(np.complex128), rel64), 64)
    np.testing.assert_allclose(centre, want_centre, atol=2e-5 * np.abs(want_centre).max())


def test_network_input_is_scaled_by_s0_over_s(rng):
    cfg = ModelConfig(N=64, gridsize=1, n_filters_scale=1)
    m = build_model(cfg, _probe(rng), 8.0)
    x, rel = _inputs(rng, 2, 1)
    base = m.diffraction_to_obj([x, rel]).numpy()
    m.scaler.log_scale.assign(math.log(16.0))  # s = 2 s0: the network sees X / 2
    halved = m.diffraction_to_obj([x, rel]).numpy()
    m.scaler.log_scale.assign(math.log(8.0))
    np.testing.assert_allclose(halved, m.diffraction_to_obj([x / 2, rel]).numpy(), atol=1e-6)
    assert not np.allclose(base, halved)


@pytest.mark.parametrize(
    "options",
    [
        {"gridsize": 1},
        {"gridsize": 2, "probe_big": False},
        {"gridsize": 2, "pad_object": False},
        {"gridsize": 2, "object_big": False},
        {"gridsize": 1, "probe_mask": True, "gaussian_smoothing_sigma": 1.0},
        {"gridsize": 3, "amp_activation": "swish"},
        {"gridsize": 1, "amp_activation": "softplus"},
        {"gridsize": 1, "amp_activation": "relu", "model_type": "supervised"},
    ],
)
def test_every_model_option_builds_and_matches_reference(rng, options):
    cfg = ModelConfig(N=64, n_filters_scale=1, **options)
    probe = _probe(rng)
    m = build_model(cfg, probe, 20.0)
    c = cfg.gridsize**2
    x, rel = _inputs(rng, 2, c, reach=3.0)
    centre, pred_amp, _, obj, _, _ = (t.numpy() for t in m.training_model([x, rel]))
    assert obj.shape == (2, 64, 64, c if cfg.object_big else 1)
    rel64 = rel.astype(np.float64)
    o64 = obj.astype(np.complex128)
    if cfg.object_big:
        canvas = ref.merge(o64, rel64, probe_big=cfg.probe_big)
    else:
        p = ref.merge_size(rel64, 64)
        lo = (p - 64) // 2
        canvas = np.pad(o64[..., :1], ((0, 0), (lo, p - 64 - lo), (lo, p - 64 - lo), (0, 0)))
    patches = ref.reextract(canvas, rel64, 64)
    eff = L.gaussian_smooth(tf.constant(probe), cfg.gaussian_smoothing_sigma).numpy()
    want = 20.0 * ref.diffract(ref.illuminate(patches, eff.astype(np.complex128), cfg.probe_mask))
    np.testing.assert_allclose(pred_amp, want, atol=2e-5 * np.abs(want).max())
    if cfg.object_big and c > 1:
        want_c = ref.centre_crop(ref.merge(o64, rel64, probe_big=cfg.probe_big), 64)
    else:
        want_c = o64[..., :1]
    np.testing.assert_allclose(centre, want_c, atol=2e-5 * max(np.abs(want_c).max(), 1e-6))
    if cfg.pad_object and not cfg.probe_big:  # no outer branch: zero outside the centre
        assert not np.any(obj[:, :16]) and not np.any(obj[:, -16:])


def test_outer_branch_only_outside_the_centre(rng):
    m = build_model(ModelConfig(N=64, gridsize=1, n_filters_scale=1), _probe(rng), 1.0)
    x, rel = _inputs(rng, 1, 1)
    amp = m.training_model([x, rel])[4].numpy()
    # relu/sigmoid heads are > 0 inside; the swish outer branch fills the border.
    assert np.all(amp[:, 16:48, 16:48] > 0)
    assert np.any(amp[:, :16] != 0)


def test_gaussian_smooth_is_normalised_blur():
    delta = np.zeros((32, 32), np.complex64)
    delta[16, 16] = 1 + 1j
    out = L.gaussian_smooth(tf.constant(delta), 1.5).numpy()
    np.testing.assert_allclose(out.sum(), 1 + 1j, rtol=1e-5)
    assert out[16, 16].real < 0.2 and out[16, 17].real > 0
    assert L.gaussian_smooth(tf.constant(delta), 0.0) is not None


def test_two_models_with_different_N_and_gridsize_in_one_process(rng):
    a = build_model(ModelConfig(N=64, gridsize=2, n_filters_scale=1), _probe(rng, 64), 5.0)
    b = build_model(ModelConfig(N=128, gridsize=1, n_filters_scale=1), _probe(rng, 128), 7.0)
    xa, ra = _inputs(rng, 2, 4)
    xb = rng.uniform(0, 1, size=(2, 128, 128, 1)).astype(np.float32)
    rb = np.zeros((2, 1, 2, 1), np.float32)
    assert a.diffraction_to_obj([xa, ra]).shape == (2, 64, 64, 1)
    assert b.diffraction_to_obj([xb, rb]).shape == (2, 128, 128, 1)
    assert a.autoencoder([xa, ra])[1].shape == (2, 64, 64, 4)  # a still works after b
    assert b.intensity_scale == 7.0 and a.intensity_scale == 5.0


def test_export_import_round_trip_and_layout(rng):
    cfg = ModelConfig(N=64, gridsize=1, n_filters_scale=1)
    src = build_model(cfg, _probe(rng), 3.0, seed=1)
    dst = build_model(cfg, None, 3.0, seed=2)
    w = export_weights(src)
    import_weights(dst, w)
    x, rel = _inputs(rng, 2, 1)
    np.testing.assert_array_equal(src.autoencoder([x, rel])[1], dst.autoencoder([x, rel])[1])
    # Canonical (out, in, kh, kw): first conv of a one-channel input, check one output pixel.
    kernel = w["encoder.0.conv0.weight"]
    w2 = {k: v.copy() for k, v in w.items()}
    w2["encoder.0.conv0.bias"][:] = 0
    import_weights(dst, w2)
    probe_model = keras.Model(dst.autoencoder.inputs, dst.conv("encoder.0.conv0").output)
    feat = probe_model([x, rel]).numpy()
    patch = x[0, 9:12, 19:22, 0]  # s0 / s = 1: the network sees x
    want = np.maximum((kernel[:, 0] * patch[None]).sum(axis=(1, 2)), 0)
    np.testing.assert_allclose(feat[0, 10, 20], want, rtol=1e-5, atol=1e-6)


def test_import_weights_is_strict(rng):
    m = build_model(ModelConfig(N=64, gridsize=1, n_filters_scale=1), _probe(rng), 3.0)
    w = export_weights(m)
    before = export_weights(m)
    bad = dict(w)
    del bad["amp_head.bias"]
    with pytest.raises(WeightsError, match="missing"):
        import_weights(m, bad)
    with pytest.raises(WeightsError, match="unexpected"):
        import_weights(m, {**w, "extra.weight": np.zeros(3)})
    import_weights(m, {**w, "extra.weight": np.zeros(3)}, strict=False)
    with pytest.raises(WeightsError, match="shape"):
        import_weights(m, {**w, "encoder.0.conv0.weight": np.zeros((32, 1, 3, 4), np.float32)})
    with pytest.raises(WeightsError, match="NaN"):
        import_weights(m, {**w, "log_scale": np.float32(np.nan)})
    with pytest.raises(WeightsError, match="real"):
        import_weights(m, {**w, "log_scale": np.complex64(1j)})
    after = export_weights(m)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_probe_and_scale_trainability(rng):
    cfg = ModelConfig(N=64, gridsize=1, n_filters_scale=1)
    frozen = build_model(cfg, _probe(rng), 2.0, intensity_scale_trainable=False)
    live = build_model(cfg, _probe(rng), 2.0, probe_trainable=True)
    assert not frozen.scaler.log_scale.trainable
    names = {v.path for v in live.autoencoder.trainable_weights}
    assert any("probe_real" in n for n in names) and any("log_scale" in n for n in names)
    with pytest.raises(ValueError, match="probe"):
        live.illumination.set_probe(np.zeros((32, 32)))
    with pytest.raises(ValueError, match="NaN"):
        live.illumination.set_probe(np.full((64, 64), np.nan))
    with pytest.raises(ValueError, match="s0"):
        build_model(cfg, None, 0.0)
    with pytest.raises(TypeError):
        build_model({"N": 64})


def test_layers_serialise_in_safe_mode():
    for layer in (
        L.PlanActivation("pi_tanh"),
        L.ChannelSlice(None, -4),
        L.OuterCombine(64),
        L.IntensityScale(3.0, False),
        L.MergeReextract(True, True, 80),
        L.ObjectCentre(False, True),
        L.ProbeIllumination(64, True, 0.5, False),
        L.Diffraction(),
        L.Square(),
        L.CombineComplex(),
    ):
        blob = keras.saving.serialize_keras_object(layer)
        again = keras.saving.deserialize_keras_object(blob, safe_mode=True)
        assert type(again) is type(layer)
        assert again.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="activation"):
        L.PlanActivation("tanh")


def test_mixed_precision_runs_network_in_bfloat16(rng):
    assert compute_dtype_policy("32") == "float32"
    assert compute_dtype_policy("bf16-mixed") == "mixed_bfloat16"
    with pytest.raises(ValueError, match="precision"):
        compute_dtype_policy("64")
    m = build_model(ModelConfig(N=64, gridsize=1, n_filters_scale=1), _probe(rng), 2.0,
                    precision="bf16-mixed")  # fmt: skip
    assert m.conv("encoder.0.conv0").compute_dtype == "bfloat16"
    x, rel = _inputs(rng, 2, 1)
    obj, amp, _ = m.autoencoder([x, rel])
    assert obj.dtype == tf.complex64 and amp.dtype == tf.float32
    assert np.all(np.isfinite(amp.numpy()))


def test_static_canvas_size_matches_dynamic(rng):
    cfg = ModelConfig(N=64, gridsize=2, n_filters_scale=1)
    probe = _probe(rng)
    dyn = build_model(cfg, probe, 2.0, seed=0)
    fixed = build_model(cfg, probe, 2.0, seed=0, canvas_size=96)
    x, rel = _inputs(rng, 2, 4)
    np.testing.assert_allclose(
        dyn.autoencoder([x, rel])[1].numpy(), fixed.autoencoder([x, rel])[1].numpy(), atol=1e-4
    )


def test_resnet_trunk_is_residual(rng):
    """With its convolutions zeroed the trunk is the identity: the CNN's outputs exactly."""
    res_cfg = ModelConfig(N=64, gridsize=1, n_filters_scale=1, architecture="resnet", res_blocks=2)
    cnn = build_model(ModelConfig(N=64, gridsize=1, n_filters_scale=1), _probe(rng), 3.0, seed=1)
    res = build_model(res_cfg, None, 3.0, seed=2)
    w = export_weights(cnn)
    trunk = {k: v for k, v in export_weights(res).items() if k.startswith("bottleneck.")}
    assert len(trunk) == 2 * 2 * 2  # two blocks of two convolutions, weight and bias
    import_weights(res, {**w, **{k: np.zeros_like(v) for k, v in trunk.items()}})
    x, rel = _inputs(rng, 2, 1)
    np.testing.assert_allclose(
        res.autoencoder([x, rel])[1], cnn.autoencoder([x, rel])[1], rtol=1e-6, atol=1e-7
    )
    # and the trunk is used: non-zero trunk weights change the prediction
    import_weights(res, {**w, **{k: v + 0.05 for k, v in trunk.items()}})
    assert not np.allclose(res.autoencoder([x, rel])[1], cnn.autoencoder([x, rel])[1])
