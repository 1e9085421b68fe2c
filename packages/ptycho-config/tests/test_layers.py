"""The layer plan of METHOD.md §5: names, filter counts, shapes and the variants."""

import json
import math

import pytest
from config_strategies import models
from hypothesis import given

from ptychopinn.config import LayerSpec, ModelConfig, TrainingConfig, layer_plan

ENCODER = {64: [64, 128, 256], 128: [32, 64, 128, 256], 256: [16, 32, 64, 128, 256]}
DECODER = {64: [128, 64], 128: [256, 128, 64], 256: [512, 256, 128, 64]}


@pytest.mark.parametrize("N", [64, 128, 256])
def test_filter_counts_match_method(N):
    plan = layer_plan(ModelConfig(N=N))
    assert list(plan.encoder_filters) == ENCODER[N]
    assert list(plan.decoder_filters) == DECODER[N]
    assert plan.bottleneck_size == 8
    assert plan.outer_filters == 2 * 2048 // N
    for level, f in enumerate(ENCODER[N]):
        assert plan[f"encoder.{level}.conv0"].out_channels == f
        assert plan[f"encoder.{level}.conv1"].in_channels == f
        assert plan[f"encoder.{level}.pool"].kind == "maxpool2d"
    for branch in ("decoder_amp", "decoder_phase"):
        for level, f in enumerate(DECODER[N]):
            assert plan[f"{branch}.{level}.conv1"].out_channels == f
            assert plan[f"{branch}.{level}.up"].kind == "upsample2d"
    # decoder output is N/2: one upsampling per decoder level from the 8x8 bottleneck
    assert 8 * 2 ** len(plan.decoder_filters) == N // 2


def test_n64_default_plan_names_in_forward_order():
    plan = layer_plan(ModelConfig())
    enc = [f"encoder.{lv}.{p}" for lv in range(3) for p in ("conv0", "conv1", "pool")]

    def branch(kind):
        dec = [f"decoder_{kind}.{lv}.{p}" for lv in range(2) for p in ("conv0", "conv1", "up")]
        outer = [f"{kind}_outer.{p}" for p in ("conv0", "conv1", "up", "out")]
        return [*dec, f"{kind}_head", *outer]

    assert list(plan.names) == enc + branch("amp") + branch("phase")
    assert plan.stages == (
        "encoder",
        "decoder_amp",
        "amp_head",
        "amp_outer",
        "decoder_phase",
        "phase_head",
        "phase_outer",
    )


def test_heads_and_outer_branch_with_pad_object_and_probe_big():
    plan = layer_plan(ModelConfig(gridsize=2, n_filters_scale=2))
    assert plan.in_channels == 4 and plan["encoder.0.conv0"].in_channels == 4
    amp, phase = plan["amp_head"], plan["phase_head"]
    assert (amp.in_channels, amp.out_channels, amp.activation) == (60, 4, "sigmoid")
    assert (phase.in_channels, phase.out_channels, phase.activation) == (60, 4, "pi_tanh")
    assert (plan["amp_outer.conv0"].in_channels, plan["amp_outer.conv0"].out_channels) == (4, 64)
    out = plan["phase_outer.out"]
    assert (out.in_channels, out.out_channels, out.activation) == (64, 4, "swish")
    assert plan["amp_outer.conv1"].activation == "relu"


def test_object_big_false_gives_single_channel_heads():
    plan = layer_plan(ModelConfig(gridsize=2, object_big=False))
    assert plan.head_channels == 1
    assert plan["amp_head"].out_channels == 1 and plan["amp_outer.out"].out_channels == 1


def test_probe_big_false_has_no_outer_branch():
    plan = layer_plan(ModelConfig(probe_big=False))
    assert plan.outer_filters is None
    assert not any("outer" in n for n in plan.names)
    assert plan["amp_head"].in_channels == plan.decoder_channels - 4


@pytest.mark.parametrize("probe_big", [True, False])
def test_pad_object_false_reads_all_decoder_channels(probe_big):
    plan = layer_plan(
        ModelConfig(pad_object=False, probe_big=probe_big, amp_activation="softplus", gridsize=2)
    )
    assert "amp_head" not in plan.names and "phase_head" not in plan.names
    assert plan["amp_outer.conv0"].in_channels == plan.decoder_channels == 64
    assert plan["amp_outer.out"].activation == "softplus"
    assert plan["phase_outer.out"].activation == "pi_tanh"
    assert plan["amp_outer.out"].out_channels == 4
    assert plan.outer_filters == 32 * 2 * 64 // 64


def test_amp_activation_reaches_the_head():
    for act in ("sigmoid", "swish", "softplus", "relu"):
        assert layer_plan(ModelConfig(amp_activation=act))["amp_head"].activation == act


def test_parameter_shapes_use_canonical_layouts():
    plan = layer_plan(ModelConfig(N=128, gridsize=2))
    shapes = plan.parameter_shapes()
    assert shapes["encoder.0.conv0.weight"] == (32, 4, 3, 3)
    assert shapes["encoder.0.conv0.bias"] == (32,)
    assert shapes["amp_head.weight"] == (4, 60, 3, 3)
    assert shapes["log_scale"] == ()
    assert shapes["probe"] == (128, 128)
    assert not any(k.endswith((".pool.weight", ".up.weight")) for k in shapes)
    assert len(shapes) == 2 * len(plan.conv_layers()) + 2
    dtypes = plan.parameter_dtypes()
    assert dtypes["probe"] == "complex64" and dtypes["log_scale"] == "float32"
    assert set(dtypes) == set(shapes)


def test_total_parameters_counts_weights_biases_and_log_scale():
    plan = layer_plan(ModelConfig())
    expected = sum(9 * s.in_channels * s.out_channels + s.out_channels for s in plan.conv_layers())
    assert plan.total_parameters() == expected + 1
    assert plan.total_parameters(include_probe=True) == expected + 1 + 64 * 64
    assert plan.total_parameters() == 2_331_773  # regression value for the default N=64 plan
    assert layer_plan(ModelConfig(gridsize=2)).total_parameters() == 2_340_209


@given(models)
def test_plan_is_consistent_for_any_model(model):
    plan = layer_plan(model)
    convs = plan.conv_layers()
    # channels chain: each conv reads what the previous layer of its stage produced
    by_name = {s.name: s for s in plan}
    seen: set[str] = set()
    for spec in plan:
        if spec.kind == "add":
            # a residual skip: adds an earlier layer's output of the same channels
            assert spec.source in seen and by_name[spec.source].out_channels == spec.in_channels
            assert spec.in_channels == spec.out_channels and spec.stage == "bottleneck"
        elif spec.kind != "conv2d":
            assert spec.in_channels == spec.out_channels and spec.activation is None
            assert spec.kernel_size == (2, 2)
        else:
            assert spec.kernel_size == (3, 3)
        seen.add(spec.name)
    assert bool(plan.stage("bottleneck")) == (model.architecture == "resnet")
    assert len(by_name) == len(plan)  # names are unique
    assert all(s.out_channels >= 1 and s.in_channels >= 1 for s in convs)
    heads = [s for s in convs if s.name.endswith(("_head", ".out"))]
    assert all(s.out_channels == (model.C if model.object_big else 1) for s in heads)
    assert plan.total_parameters() == 1 + sum(
        math.prod(v) for k, v in plan.parameter_shapes().items() if k not in ("probe", "log_scale")
    )
    json.dumps(plan.to_dict())


def test_lookup_helpers_and_errors():
    plan = layer_plan(ModelConfig())
    assert len(plan.stage("encoder")) == 9
    assert next(iter(plan)).name == "encoder.0.conv0"
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        plan["nope"]
    assert layer_plan(TrainingConfig(model=ModelConfig(N=128))).N == 128
    with pytest.raises(TypeError, match="layer_plan needs a ModelConfig"):
        layer_plan({"N": 64})  # type: ignore[arg-type]
    pool = plan["encoder.0.pool"]
    assert not pool.has_parameters and pool.parameter_shapes() == {}
    spec = LayerSpec("x", "conv2d", 2, 3, (3, 3), "relu")
    assert spec.stage == "" and spec.parameter_shapes()["x.weight"] == (3, 2, 3, 3)
    d = plan.to_dict()
    assert d["layers"][0]["kernel_size"] == [3, 3] and d["encoder_filters"] == [64, 128, 256]


@pytest.mark.parametrize("N", [64, 128])
def test_resnet_adds_a_residual_trunk_and_changes_nothing_else(N):
    cnn = layer_plan(ModelConfig(N=N))
    res = layer_plan(ModelConfig(N=N, architecture="resnet", res_blocks=3))
    assert cnn.architecture == "cnn" and res.architecture == "resnet"
    trunk = res.stage("bottleneck")
    assert [s.name for s in trunk] == [
        f"bottleneck.{b}.{p}" for b in range(3) for p in ("conv0", "conv1", "add")
    ]
    width = cnn.encoder_filters[-1]
    assert all(s.in_channels == s.out_channels == width for s in trunk)
    # each block: relu conv, linear conv, add the block input, relu
    assert [s.activation for s in trunk[:3]] == ["relu", None, "relu"]
    sources = [s.source for s in trunk if s.kind == "add"]
    assert sources == [f"encoder.{len(cnn.encoder_filters) - 1}.pool", "bottleneck.0.add",
                       "bottleneck.1.add"]  # fmt: skip
    # the trunk sits between the encoder and the decoders; every other layer is the CNN's
    assert res.stages[:2] == ("encoder", "bottleneck")
    assert [s for s in res if s.stage != "bottleneck"] == list(cnn)
    extra = 3 * 2 * (9 * width * width + width)
    assert res.total_parameters() == cnn.total_parameters() + extra
    d = res.to_dict()
    assert d["architecture"] == "resnet"
    assert [layer.get("source") for layer in d["layers"] if layer["kind"] == "add"] == sources
    assert all("source" not in layer for layer in cnn.to_dict()["layers"])
