"""The network built from the layer plan: names, init, every option, both call paths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ptychopinn.config import ModelConfig, TrainingConfig, layer_plan
from ptychopinn.data import physics as ref
from ptychopinn.torch.model import PtychoPINN, activation
from ptychopinn.torch.training import compute_loss


def _inputs(c, b=2, n=64, reach=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((b, c, n, n), generator=g)
    rel = (torch.rand((b, 2, c), generator=g) - 0.5) * 2 * reach
    rel = rel - rel.mean(-1, keepdim=True)
    return x, rel


def _probe(n=64):
    r = torch.arange(n) - n / 2
    return torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * (n / 8) ** 2)).to(torch.complex64)


def test_parameter_names_and_shapes_follow_the_plan():
    mc = ModelConfig(N=64, gridsize=2, n_filters_scale=1)
    m = PtychoPINN(mc, _probe(), 50.0)
    shapes = layer_plan(mc).parameter_shapes()
    params = m.canonical_parameters()
    assert set(params) == set(shapes)
    for name, shape in shapes.items():
        assert tuple(params[name].shape) == tuple(shape), name
    state = m.state_dict()
    for name in shapes:
        assert name in state
    assert params["probe"].dtype == torch.complex64
    assert not params["probe"].requires_grad
    assert params["log_scale"].requires_grad
    assert math.isclose(float(m.log_scale.exp()), 50.0, rel_tol=1e-6)


def test_glorot_init_seeded_and_zero_bias():
    mc = ModelConfig(N=64, n_filters_scale=1)
    a, b, c = PtychoPINN(mc, seed=3), PtychoPINN(mc, seed=3), PtychoPINN(mc, seed=4)
    w = a.canonical_parameters()["encoder.1.conv0.weight"]
    assert torch.equal(w, b.canonical_parameters()["encoder.1.conv0.weight"])
    assert not torch.equal(w, c.canonical_parameters()["encoder.1.conv0.weight"])
    fan_in, fan_out = w.shape[1] * 9, w.shape[0] * 9
    limit = math.sqrt(6 / (fan_in + fan_out))
    assert float(w.abs().max()) <= limit
    assert float(w.abs().max()) > 0.9 * limit
    assert float(a.canonical_parameters()["amp_head.bias"].abs().max()) == 0.0


def test_trainable_flags():
    mc = ModelConfig(N=64, n_filters_scale=1)
    m = PtychoPINN(mc, _probe(), 2.0, probe_trainable=True, intensity_scale_trainable=False)
    assert isinstance(m.probe, torch.nn.Parameter) and m.probe.requires_grad
    assert not m.log_scale.requires_grad
    with pytest.raises(ValueError, match="probe must be"):
        PtychoPINN(mc, np.ones((32, 32)), 1.0)
    with pytest.raises(ValueError, match="intensity_scale"):
        PtychoPINN(mc, None, 0.0)


@pytest.mark.parametrize("name", ["relu", "sigmoid", "swish", "softplus", "pi_tanh", None])
def test_activations(name):
    x = torch.linspace(-3, 3, 7)
    expected = {
        "relu": torch.relu(x),
        "sigmoid": torch.sigmoid(x),
        "swish": x * torch.sigmoid(x),
        "softplus": torch.log1p(torch.exp(x)),
        "pi_tanh": math.pi * torch.tanh(x),
        None: x,
    }[name]
    torch.testing.assert_close(activation(name, x), expected)


def test_unknown_activation():
    with pytest.raises(ValueError, match="unknown activation"):
        activation("gelu", torch.zeros(1))


CONFIGS = [
    dict(gridsize=1),
    dict(gridsize=2),
    dict(gridsize=2, object_big=False),
    dict(gridsize=2, probe_big=False),
    dict(pad_object=False),
    dict(pad_object=False, gridsize=2, object_big=False),
    dict(amp_activation="swish", probe_mask=True),
    dict(amp_activation="softplus", gaussian_smoothing_sigma=1.0),
    dict(amp_activation="relu", gridsize=3),
]


@pytest.mark.parametrize("kw", CONFIGS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_forward_matches_reference_arithmetic(kw):
    """Training path = NumPy reference operators applied to the network's own heads."""
    mc = ModelConfig(N=64, n_filters_scale=1, **kw)
    c = mc.gridsize**2
    probe = _probe()
    m = PtychoPINN(mc, probe, 30.0, seed=1)
    with torch.no_grad():
        m.log_scale.fill_(math.log(45.0))
    x, rel = _inputs(c)
    with torch.no_grad():
        out = m(x, rel)
        amp, phase = m.network(x * (30.0 / 45.0))
        infer = m.diffraction_to_obj(x, rel)
    c_out = c if mc.object_big else 1
    assert out.obj.shape == (2, c_out, 64, 64)
    torch.testing.assert_close(out.amp, amp)
    torch.testing.assert_close(out.phase, phase)
    assert float(phase.abs().max()) <= math.pi
    obj = np.moveaxis(torch.polar(amp, phase).numpy(), 1, 3)
    rel_np = rel.numpy()[:, None]
    P = ref.merge_size(rel_np, 64)
    if mc.object_big:
        canvas = ref.merge(obj, rel_np, probe_big=mc.probe_big, P=P)
    else:
        pad = (P - 64) // 2
        canvas = np.pad(obj[..., :1], ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    patches = ref.reextract(canvas, rel_np, 64)
    probe_eff = m.effective_probe().numpy()
    pred = 45.0 * ref.diffract(ref.illuminate(patches, probe_eff, mask=mc.probe_mask))
    got = np.moveaxis(out.pred_amp.numpy(), 1, 3)
    np.testing.assert_allclose(got, pred, rtol=2e-4, atol=2e-4 * float(np.abs(pred).max()))
    if mc.object_big and c > 1:
        expected_inf = ref.centre_crop(ref.merge(obj, rel_np, probe_big=mc.probe_big), 64)
    else:
        expected_inf = obj[..., :1]
    np.testing.assert_allclose(np.moveaxis(infer.numpy(), 1, 3), expected_inf, atol=1e-5)
    # pad_object: the centre is the head; outside the central window only the outer branch.
    if mc.pad_object and not mc.probe_big:
        q = 16
        assert float(amp[..., :q, :].abs().max()) == 0.0


def test_probe_big_outer_branch_only_outside_centre():
    mc = ModelConfig(N=64, n_filters_scale=1, amp_activation="relu")
    m = PtychoPINN(mc, _probe(), 1.0, seed=2)
    mc2 = ModelConfig(N=64, n_filters_scale=1, amp_activation="relu", probe_big=False)
    m2 = PtychoPINN(mc2, _probe(), 1.0, seed=2)
    m2.load_state_dict({k: v for k, v in m.state_dict().items() if "outer" not in k}, strict=True)
    x, _ = _inputs(1)
    with torch.no_grad():
        a, _ = m.network(x)
        a2, _ = m2.network(x)
    torch.testing.assert_close(a[..., 16:48, 16:48], a2[..., 16:48, 16:48])
    assert float((a - a2).abs().max()) > 0


def test_gradients_flow_to_every_parameter_and_log_scale():
    mc = ModelConfig(N=64, gridsize=2, n_filters_scale=1, probe_big=True)
    m = PtychoPINN(mc, _probe(), 10.0, probe_trainable=True)
    x, rel = _inputs(4)
    tc = TrainingConfig(model=mc, mae_weight=0.5, realspace_weight=0.1, realspace_mae_weight=0.1)
    y = torch.polar(torch.rand(2, 4, 64, 64), torch.rand(2, 4, 64, 64))
    out = m(x, rel)
    terms = compute_loss(m, out, {"x": x, "relative": rel, "y": y}, tc)
    assert {"nll", "mae", "tv", "realspace_mae", "loss"} <= set(terms)
    terms["loss"].backward()
    for name, p in m.canonical_parameters().items():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert float(m.log_scale.grad.abs()) > 0


def test_supervised_loss():
    mc = ModelConfig(N=64, n_filters_scale=1, model_type="supervised")
    m = PtychoPINN(mc, _probe(), 1.0)
    x, rel = _inputs(1)
    tc = TrainingConfig(model=mc)
    out = m(x, rel)
    y = torch.polar(out.amp.detach(), out.phase.detach())
    terms = compute_loss(m, out, {"x": x, "relative": rel, "y": y}, tc)
    assert float(terms["loss"]) < 1e-5
    with pytest.raises(ValueError, match="ground-truth"):
        compute_loss(m, out, {"x": x, "relative": rel}, tc)


def test_channels_last_and_bf16_autocast():
    mc = ModelConfig(N=64, n_filters_scale=1)
    m = PtychoPINN(mc, _probe(), 5.0)
    x, rel = _inputs(1)
    with torch.no_grad():
        full = m(x, rel)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = m(x, rel)
    assert half.pred_amp.dtype == torch.float32
    assert half.obj.dtype == torch.complex64
    err = float((half.pred_amp - full.pred_amp).abs().max() / full.pred_amp.abs().max())
    assert err < 0.05
    # The output activations run in float32: amplitude and phase are not bf16-rounded.
    for head in (half.amp, half.phase):
        assert head.dtype == torch.float32
        assert bool((head != head.to(torch.bfloat16).float()).any())


def test_n128_builds_and_runs():
    mc = ModelConfig(N=128, n_filters_scale=1)
    m = PtychoPINN(mc, _probe(128), 5.0)
    x, rel = _inputs(1, b=1, n=128)
    with torch.no_grad():
        assert m(x, rel).pred_amp.shape == (1, 1, 128, 128)


def test_negative_amplitude_gradient_is_correct():
    """O = A exp(iφ) must differentiate correctly for A < 0 (torch.polar does not)."""
    from ptychopinn.torch.model import _complex_object

    a = torch.tensor([-0.3, 0.4], dtype=torch.float64, requires_grad=True)
    p = torch.tensor([0.7, -1.1], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, p: torch.view_as_real(_complex_object(a, p)), (a, p))


def test_upsampled_conv_equals_upsample_then_conv():
    """The sub-pixel form of nearest-upsample + 3x3 conv: same values and gradients."""
    from ptychopinn.torch.model import _upsampled_conv

    g = torch.Generator().manual_seed(4)
    conv = torch.nn.Conv2d(5, 2, 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
        conv.bias.copy_(torch.randn(2, generator=g))
    x = torch.randn(3, 5, 7, 9, generator=g, requires_grad=True)
    want = conv(torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest"))
    gw, gx = torch.autograd.grad((want * torch.arange(want.numel()).view_as(want)).sum(),
                                 (conv.weight, x))  # fmt: skip
    got = _upsampled_conv(x, conv, 2)
    assert got.shape == want.shape == (3, 2, 14, 18)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    hw, hx = torch.autograd.grad((got * torch.arange(got.numel()).view_as(got)).sum(),
                                 (conv.weight, x))  # fmt: skip
    torch.testing.assert_close(hw, gw, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(hx, gx, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("kw", [dict(gridsize=1), dict(gridsize=2, probe_big=False),
                                dict(pad_object=False)])  # fmt: skip
def test_network_same_with_and_without_the_folded_convolutions(kw):
    m = PtychoPINN(ModelConfig(N=64, n_filters_scale=1, **kw), seed=3)
    with torch.no_grad():
        for conv in m.modules():
            if isinstance(conv, torch.nn.Conv2d):
                conv.bias.uniform_(-0.1, 0.1)
    x = torch.rand((2, m.C, 64, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        folded = m.network(x)
        m.fold_max_out = 0
        plain = m.network(x)
    for a, b in zip(folded, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_resnet_trunk_is_residual():
    """With its convolutions zeroed the trunk is the identity: the CNN's outputs exactly."""
    cnn = PtychoPINN(ModelConfig(N=64, n_filters_scale=1, probe_big=False), _probe(), 3.0, seed=1)
    res_cfg = ModelConfig(N=64, n_filters_scale=1, probe_big=False, architecture="resnet",
                          res_blocks=2)  # fmt: skip
    res = PtychoPINN(res_cfg, _probe(), 3.0, seed=2)
    params = res.canonical_parameters()
    trunk = [k for k in params if k.startswith("bottleneck.")]
    assert len(trunk) == 2 * 2 * 2  # two blocks of two convolutions, weight and bias
    x, _rel = _inputs(1)
    with torch.no_grad():
        for name, value in cnn.canonical_parameters().items():
            params[name].copy_(value)
        for name in trunk:
            params[name].zero_()
        a_cnn, p_cnn = cnn.network(x)
        a_res, p_res = res.network(x)
        torch.testing.assert_close(a_res, a_cnn, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(p_res, p_cnn, rtol=1e-6, atol=1e-7)
        for name in trunk:
            params[name].add_(0.05)
        assert not torch.allclose(res.network(x)[0], a_cnn)
        # the trunk trains: its parameters get gradients
    res.network(x)[0].sum().backward()
    assert all(float(params[k].grad.abs().sum()) > 0 for k in trunk if k.endswith(".weight"))
