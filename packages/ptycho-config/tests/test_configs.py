"""Construction, defaults and every validation message of the config dataclasses."""

import dataclasses
import warnings
from pathlib import Path

import pytest

from ptychopinn.config import (
    ConfigError,
    ExecutionConfig,
    InferenceConfig,
    ModelConfig,
    TrainingConfig,
    load_config,
)

M, T, Inf, E = ModelConfig, TrainingConfig, InferenceConfig, ExecutionConfig

# (class, kwargs, substrings the message must contain)
INVALID = [
    (M, {"N": 100}, ["N=100 is not supported; choose 64, 128 or 256"]),
    (M, {"N": 64.0}, ["N=64.0", "choose 64, 128 or 256"]),
    (M, {"N": True}, ["N=True"]),
    (M, {"gridsize": 0}, ["gridsize=0", "integer >= 1"]),
    (M, {"gridsize": 2.0}, ["gridsize=2.0", "integer >= 1"]),
    (M, {"n_filters_scale": 0}, ["n_filters_scale=0", "integer >= 1"]),
    (M, {"model_type": "gan"}, ["model_type='gan'", "'pinn' or 'supervised'"]),
    (
        M,
        {"amp_activation": "tanh"},
        ["amp_activation='tanh'", "'sigmoid', 'swish', 'softplus' or 'relu'"],
    ),
    (M, {"amp_activation": 1}, ["amp_activation=1"]),
    (M, {"architecture": "unet"}, ["architecture='unet'", "'cnn' or 'resnet'"]),
    (M, {"res_blocks": 0}, ["res_blocks=0", "integer >= 1"]),
    (M, {"object_big": 1}, ["object_big=1", "true or false"]),
    (M, {"probe_big": "yes"}, ["probe_big='yes'", "true or false"]),
    (M, {"probe_mask": None}, ["probe_mask=None", "true or false"]),
    (M, {"pad_object": 0}, ["pad_object=0", "true or false"]),
    (M, {"probe_scale": 0}, ["probe_scale=0", "(0, inf)"]),
    (M, {"probe_scale": float("nan")}, ["probe_scale=nan", "finite"]),
    (M, {"probe_scale": "4"}, ["probe_scale='4'"]),
    (M, {"gaussian_smoothing_sigma": -1.0}, ["gaussian_smoothing_sigma=-1.0", "[0, inf)"]),
    (T, {"model": {"N": 64}}, ["TrainingConfig.model=", "use a ModelConfig"]),
    (T, {"train_data_file": 3}, ["train_data_file=3", "path"]),
    (T, {"test_data_file": ""}, ["test_data_file=''", "non-empty"]),
    (T, {"output_dir": None}, ["output_dir=None", "path"]),
    (T, {"batch_size": 0}, ["batch_size=0", "integer >= 1"]),
    (T, {"nepochs": -1}, ["nepochs=-1"]),
    (T, {"learning_rate": 0.0}, ["learning_rate=0.0", "(0, inf)"]),
    (T, {"learning_rate": float("inf")}, ["learning_rate=inf"]),
    (T, {"nll_weight": -0.5}, ["nll_weight=-0.5", "[0, inf)"]),
    (T, {"mae_weight": True}, ["mae_weight=True"]),
    (T, {"realspace_mae_weight": -1}, ["realspace_mae_weight=-1"]),
    (T, {"realspace_weight": "x"}, ["realspace_weight='x'"]),
    (T, {"nll_weight": 0.0}, ["all loss weights are 0", "nll_weight=1.0"]),
    (T, {"nphotons": 0}, ["nphotons=0", "(0, inf) or null"]),
    (T, {"n_groups": 0}, ["n_groups=0", "integer >= 1 or null"]),
    (T, {"n_subsample": -3}, ["n_subsample=-3", "or null"]),
    (T, {"subsample_seed": -1}, ["subsample_seed=-1", "integer >= 0"]),
    (T, {"neighbor_count": 0}, ["neighbor_count=0", "integer >= 1"]),
    (
        T,
        {"model": M(gridsize=3), "neighbor_count": 4},
        ["neighbor_count=4 is too small", "gridsize=3", ">= gridsize**2 - 1 = 8"],
    ),
    (T, {"positions_provided": "true"}, ["positions_provided='true'", "true or false"]),
    (T, {"probe_trainable": 1}, ["probe_trainable=1"]),
    (T, {"intensity_scale_trainable": None}, ["intensity_scale_trainable=None"]),
    (T, {"validation_fraction": 1.0}, ["validation_fraction=1.0", "[0, 1)"]),
    (T, {"lr_patience": -1}, ["lr_patience=-1", "integer >= 0"]),
    (T, {"lr_factor": 1.0}, ["lr_factor=1.0", "(0, 1)"]),
    (T, {"min_lr": -1e-4}, ["min_lr=-0.0001"]),
    (T, {"backend": "jax"}, ["backend='jax'", "'tensorflow' or 'pytorch'"]),
    (T, {"seed": -1}, ["seed=-1", "integer >= 0"]),
    (T, {"n_groups": 5, "n_images": 6}, ["n_images=6 conflicts with n_groups=5"]),
    (Inf, {"model": None}, ["InferenceConfig.model=None", "use a ModelConfig"]),
    (Inf, {"model_path": 1.5}, ["model_path=1.5"]),
    (Inf, {"test_data_file": 7}, ["test_data_file=7"]),
    (Inf, {"output_dir": ""}, ["output_dir=''"]),
    (Inf, {"n_groups": -2}, ["InferenceConfig.n_groups=-2"]),
    (Inf, {"n_subsample": 0}, ["InferenceConfig.n_subsample=0"]),
    (Inf, {"subsample_seed": 1.5}, ["InferenceConfig.subsample_seed=1.5"]),
    (Inf, {"seed": None}, ["InferenceConfig.seed=None"]),
    (Inf, {"neighbor_count": 2, "model": M(gridsize=2)}, ["neighbor_count=2 is too small", "= 3"]),
    (Inf, {"backend": "TF"}, ["backend='TF'"]),
    (Inf, {"stitch_crop": 0}, ["stitch_crop=0", "integer >= 1"]),
    (Inf, {"stitch_crop": 65}, ["stitch_crop=65 is larger than the patch", "model.N=64"]),
    (Inf, {"stitch_weight": "gaussian"}, ["stitch_weight='gaussian'", "'probe' or 'uniform'"]),
    (E, {"accelerator": "tpu"}, ["accelerator='tpu'", "'auto', 'cpu', 'gpu', 'cuda' or 'mps'"]),
    (E, {"devices": 0}, ["devices=0", "'auto', a device count >= 1"]),
    (E, {"devices": "all"}, ["devices='all'"]),
    (E, {"devices": []}, ["devices=[]"]),
    (E, {"devices": [0, 0]}, ["devices=[0, 0]", "distinct"]),
    (E, {"devices": [0, -1]}, ["devices=[0, -1]"]),
    (E, {"devices": True}, ["devices=True"]),
    (E, {"num_nodes": 0}, ["num_nodes=0"]),
    (E, {"strategy": "horovod"}, ["strategy='horovod'", "'ddp'"]),
    (E, {"precision": "16"}, ["precision='16'", "'bf16-mixed'"]),
    (E, {"precision": 16}, ["precision='16'"]),
    (
        E,
        {"accelerator": "cpu", "precision": "16-mixed"},
        ["precision='16-mixed' is not supported with accelerator='cpu'"],
    ),
    (E, {"deterministic": "warn"}, ["deterministic='warn'", "true or false"]),
    (E, {"num_workers": -1}, ["num_workers=-1", "integer >= 0"]),
    (E, {"pin_memory": 1}, ["pin_memory=1"]),
    (
        E,
        {"persistent_workers": True},
        ["persistent_workers=True needs worker processes but num_workers=0", "num_workers > 0"],
    ),
    (E, {"gradient_clip_val": 0.0}, ["gradient_clip_val=0.0", "(0, inf) or null"]),
    (E, {"gradient_clip_algorithm": "agc"}, ["gradient_clip_algorithm='agc'", "'norm' or 'value'"]),
    (E, {"accumulate_grad_batches": 0}, ["accumulate_grad_batches=0"]),
    (E, {"logger": "wandb"}, ["logger='wandb'", "'csv', 'tensorboard', 'mlflow' or 'none'"]),
    (E, {"logger": None}, ["logger=None"]),
    (E, {"enable_progress_bar": None}, ["enable_progress_bar=None"]),
    (E, {"enable_checkpointing": "no"}, ["enable_checkpointing='no'"]),
    (E, {"early_stop_patience": 0}, ["early_stop_patience=0", "integer >= 1 or null"]),
    (E, {"inference_batch_size": 0}, ["inference_batch_size=0"]),
    (E, {"jit_compile": 1}, ["jit_compile=1"]),
    (E, {"collapse_check": "yes"}, ["collapse_check='yes'", "true or false"]),
    (E, {"stall_patience": 0}, ["stall_patience=0", "integer >= 1 or null"]),
    (E, {"stall_tolerance": -1e-5}, ["stall_tolerance=-1e-05", "[0, inf)"]),
    (E, {"stall_tolerance": None}, ["stall_tolerance=None"]),
]


@pytest.mark.parametrize(
    ("cls", "kwargs", "fragments"),
    INVALID,
    ids=[f"{c.__name__}-{'-'.join(k)}-{i}" for i, (c, k, _) in enumerate(INVALID)],
)
def test_invalid_values_name_field_value_and_allowed(cls, kwargs, fragments):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ConfigError) as info:
            cls(**kwargs)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in message, message


def test_every_validated_field_has_a_failing_case():
    covered = {(cls, key) for cls, kwargs, _ in INVALID for key in kwargs}
    for cls in (M, T, Inf, E):
        for f in dataclasses.fields(cls):
            assert (cls, f.name) in covered, f"no invalid-value test for {cls.__name__}.{f.name}"


def test_defaults_match_the_interface_contract():
    m = M()
    assert (m.N, m.gridsize, m.n_filters_scale, m.model_type, m.amp_activation) == (
        64,
        1,
        2,
        "pinn",
        "sigmoid",
    )
    assert (m.object_big, m.probe_big, m.probe_mask, m.pad_object) == (True, True, False, True)
    assert (m.probe_scale, m.gaussian_smoothing_sigma, m.C) == (4.0, 0.0, 1)
    t = T()
    assert t.model == M() and t.batch_size == 16 and t.nepochs == 50
    assert t.learning_rate == 1e-3 and t.nphotons is None and t.n_groups is None
    assert (t.lr_patience, t.lr_factor, t.min_lr, t.validation_fraction) == (2, 0.5, 1e-4, 0.05)
    assert t.output_dir == Path("training_outputs") and t.backend == "tensorflow"
    assert t.intensity_scale_trainable and not t.probe_trainable and t.positions_provided
    i = Inf()
    assert i.output_dir == Path("inference_outputs") and i.stitch_crop == 20
    assert i.stitch_weight == "probe"
    e = E()
    assert (e.accelerator, e.devices, e.precision, e.logger) == ("auto", "auto", "32", "csv")
    assert e.early_stop_patience == 5 and e.inference_batch_size == 64 and not e.jit_compile
    assert e.collapse_check and e.stall_patience == 10 and e.stall_tolerance == 1e-5


def test_configs_are_frozen_and_hashable():
    m = M()
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.N = 128  # type: ignore[misc]
    assert len({M(), M(), M(N=128)}) == 2
    assert hash(E(devices=[0, 1])) == hash(E(devices=(0, 1)))


def test_normalisation_of_paths_numbers_and_devices():
    t = T(train_data_file="data/train.npz", output_dir="out", learning_rate=1, nphotons=10**6)
    assert t.train_data_file == Path("data/train.npz") and t.output_dir == Path("out")
    assert isinstance(t.learning_rate, float) and isinstance(t.nphotons, float)
    assert E(devices=[1, 0]).devices == (1, 0)
    assert E(precision=32).precision == "32"
    assert M(probe_scale=2).probe_scale == 2.0 and isinstance(M(probe_scale=2).probe_scale, float)


def test_cross_field_rules_accept_the_boundary():
    assert T(model=M(gridsize=2), neighbor_count=3).neighbor_count == 3
    assert T(model=M(gridsize=3), neighbor_count=8).neighbor_count == 8
    assert E(num_workers=2, persistent_workers=True).persistent_workers
    assert E(accelerator="cpu", precision="bf16-mixed").precision == "bf16-mixed"
    assert Inf(model=M(N=128), stitch_crop=128).stitch_crop == 128
    # a supervised model may switch the physics losses off
    assert T(model=M(model_type="supervised"), nll_weight=0.0).nll_weight == 0.0
    assert T(nll_weight=0.0, mae_weight=1.0).mae_weight == 1.0


@pytest.mark.parametrize("cls", [T, Inf])
def test_n_images_is_a_deprecated_alias_of_n_groups(cls):
    with pytest.warns(DeprecationWarning, match="'n_images' is deprecated; use 'n_groups'"):
        cfg = cls(n_images=128)
    assert cfg.n_groups == 128
    assert cfg.n_images is None  # folded into n_groups, so to_dict never writes it
    with pytest.warns(DeprecationWarning):
        assert cls(n_groups=7, n_images=7).n_groups == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cls(n_groups=9).n_groups == 9


def test_deprecation_warning_points_at_the_caller():
    with pytest.warns(DeprecationWarning) as record:
        T(n_images=3)
    assert record[0].filename == __file__


def test_replace_revalidates_and_keeps_n_groups():
    t = T(n_groups=10)
    assert t.replace(nepochs=3).n_groups == 10
    with pytest.raises(ConfigError, match="nepochs=0"):
        t.replace(nepochs=0)
    with pytest.raises(ConfigError, match="too small"):
        t.replace(model=M(gridsize=4))


def test_field_names_lists_stored_fields_only():
    assert T.field_names()[0] == "model"
    assert "n_images" not in T.field_names()
    assert M.field_names() == (
        "N",
        "gridsize",
        "n_filters_scale",
        "model_type",
        "amp_activation",
        "object_big",
        "probe_big",
        "probe_mask",
        "pad_object",
        "probe_scale",
        "gaussian_smoothing_sigma",
        "architecture",
        "res_blocks",
    )


def test_choice_text_formats_one_or_many_choices():
    from ptychopinn.config.configs import _choices_text

    assert _choices_text(("a",)) == "'a'"
    assert _choices_text((64, 128, 256)) == "64, 128 or 256"


def test_nphotons_none_means_from_the_data_and_round_trips(tmp_path: Path) -> None:
    """``nphotons`` defaults to None ("from the data", ``ptychopinn.data.photon_count``);
    a value, 1e9 included, is kept as given, and both survive to_dict/from_dict and YAML."""
    assert T().nphotons is None
    assert T.from_dict(T().to_dict()).nphotons is None
    assert T.from_dict(T(nphotons=1e9).to_dict()).nphotons == 1e9
    configs = load_config(None, ["training.nphotons=1e6"])
    assert configs["training"].nphotons == 1e6
    assert load_config(None, ["training.nphotons=null"])["training"].nphotons is None
