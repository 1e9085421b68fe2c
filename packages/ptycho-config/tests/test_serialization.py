"""to_dict/from_dict round trips, tolerant reads of old dicts, and the legacy flat dict."""

import json
import warnings
from pathlib import Path

import pytest
from config_strategies import executions, inferences, models, trainings
from hypothesis import given
from hypothesis import strategies as st

from ptychopinn.config import (
    ConfigError,
    ExecutionConfig,
    InferenceConfig,
    ModelConfig,
    TrainingConfig,
    UnknownKeyError,
    from_dict,
    to_dict,
    to_legacy_dict,
)
from ptychopinn.config.serialization import accepted_keys

any_config = models | trainings() | inferences() | executions()


@given(any_config)
def test_round_trip_is_exact(config):
    data = to_dict(config)
    back = from_dict(type(config), data)
    assert back == config
    assert to_dict(back) == data


@given(any_config)
def test_round_trip_through_json_is_exact(config):
    text = json.dumps(to_dict(config), allow_nan=False)
    assert from_dict(type(config), json.loads(text)) == config


@given(any_config)
def test_methods_match_functions(config):
    assert config.to_dict() == to_dict(config)
    assert type(config).from_dict(config.to_dict()) == config


@given(trainings())
def test_paths_and_nested_model_types_survive(config):
    back = from_dict(TrainingConfig, to_dict(config))
    assert isinstance(back.model, ModelConfig)
    assert isinstance(back.output_dir, Path)
    assert back.train_data_file is None or isinstance(back.train_data_file, Path)


def test_to_dict_is_json_safe_with_paths_as_str():
    t = TrainingConfig(train_data_file=Path("a/b.npz"))
    d = to_dict(t)
    assert d["train_data_file"] == "a/b.npz" and d["output_dir"] == "training_outputs"
    assert d["model"] == to_dict(ModelConfig())
    assert to_dict(ExecutionConfig(devices=(0, 2)))["devices"] == [0, 2]
    json.dumps(d)


def test_missing_optional_fields_take_defaults():
    old = {"model": {"N": 128}, "nepochs": 3}
    t = from_dict(TrainingConfig, old)
    assert t.model == ModelConfig(N=128) and t.nepochs == 3 and t.batch_size == 16
    assert from_dict(InferenceConfig, {}) == InferenceConfig()
    assert from_dict(ExecutionConfig, {}) == ExecutionConfig()


def test_old_dict_with_n_images_warns_and_maps_to_n_groups():
    with pytest.warns(DeprecationWarning):
        t = from_dict(TrainingConfig, {"n_images": 64})
    assert t.n_groups == 64
    assert "n_images" not in to_dict(t)


@pytest.mark.parametrize(
    ("cls", "key", "suggestion"),
    [
        (TrainingConfig, "nepoch", "nepochs"),
        (TrainingConfig, "learning_rat", "learning_rate"),
        (ModelConfig, "gridszie", "gridsize"),
        (ModelConfig, "n", "N"),
        (InferenceConfig, "model_pth", "model_path"),
        (ExecutionConfig, "num_worker", "num_workers"),
    ],
)
def test_unknown_keys_are_rejected_with_a_suggestion(cls, key, suggestion):
    with pytest.raises(UnknownKeyError) as info:
        from_dict(cls, {key: 1})
    message = str(info.value)
    assert f"unknown {cls.__name__} key {key!r}" in message
    assert f"did you mean {suggestion!r}?" in message


def test_unknown_key_without_a_close_match_lists_the_allowed_keys():
    with pytest.raises(UnknownKeyError) as info:
        from_dict(ModelConfig, {"zzzzzz": 1})
    assert "did you mean" not in str(info.value)
    assert "allowed keys: N, gridsize" in str(info.value)


def test_unknown_key_in_nested_model_names_the_path():
    with pytest.raises(UnknownKeyError, match=r"cfg\.json\.model: unknown ModelConfig key 'grid'"):
        from_dict(TrainingConfig, {"model": {"grid": 2}}, where="cfg.json")


def test_from_dict_rejects_non_mappings_and_non_config_classes():
    with pytest.raises(ConfigError, match="ModelConfig needs a mapping, got list"):
        from_dict(ModelConfig, [1, 2])
    with pytest.raises(TypeError, match="expected one of ModelConfig"):
        from_dict(dict, {})
    with pytest.raises(TypeError):
        to_dict({"N": 64})  # type: ignore[arg-type]


def test_from_dict_passes_config_instances_through():
    m = ModelConfig(N=256)
    assert from_dict(ModelConfig, m) is m
    assert from_dict(TrainingConfig, {"model": m}).model is m


def test_numeric_strings_become_floats_for_float_fields():
    # PyYAML reads 1e-3 (no dot) as the string "1e-3"
    t = from_dict(TrainingConfig, {"learning_rate": "1e-3", "nphotons": "1e6"})
    assert t.learning_rate == 1e-3 and t.nphotons == 1e6
    e = from_dict(ExecutionConfig, {"gradient_clip_val": "0.5"})
    assert e.gradient_clip_val == 0.5
    with pytest.raises(ConfigError, match="learning_rate='fast'"):
        from_dict(TrainingConfig, {"learning_rate": "fast"})
    with pytest.raises(ConfigError, match="batch_size='16'"):
        from_dict(TrainingConfig, {"batch_size": "16"})


def test_accepted_keys_include_deprecated_aliases():
    assert accepted_keys(TrainingConfig)[-1] == "n_images"
    assert "n_images" not in accepted_keys(ModelConfig)


def test_legacy_dict_uses_upstream_names():
    t = TrainingConfig(
        model=ModelConfig(gridsize=2, object_big=False, probe_mask=True),
        train_data_file="train.npz",
        nepochs=7,
        nphotons=1e6,
        probe_trainable=True,
    )
    legacy = to_legacy_dict(t)
    assert legacy["object.big"] is False
    assert legacy["probe.big"] is True
    assert legacy["probe.mask"] is True
    assert legacy["probe.trainable"] is True
    assert legacy["intensity_scale.trainable"] is True
    assert legacy["positions.provided"] is True
    assert legacy["output_prefix"] == "training_outputs"
    assert legacy["train_data_file_path"] == "train.npz"
    assert legacy["test_data_file_path"] is None
    assert legacy["nepochs"] == 7 and legacy["nphotons"] == 1e6 and legacy["gridsize"] == 2
    assert legacy["N"] == 64 and legacy["pad_object"] is True
    for modern in ("object_big", "probe_big", "probe_trainable", "output_dir", "model"):
        assert modern not in legacy
    assert all(not isinstance(v, Path | dict) for v in legacy.values())


def test_legacy_dict_for_model_inference_and_execution():
    assert to_legacy_dict(ModelConfig())["object.big"] is True
    inf = to_legacy_dict(InferenceConfig(model_path="wts.h5.zip", test_data_file="t.npz"))
    assert inf["model_path"] == "wts.h5.zip" and inf["test_data_file_path"] == "t.npz"
    assert inf["output_prefix"] == "inference_outputs" and inf["probe.big"] is True
    ex = to_legacy_dict(ExecutionConfig(logger="none", devices=[0]))
    assert ex["logger_backend"] is None and ex["devices"] == [0]
    assert to_legacy_dict(ExecutionConfig())["logger_backend"] == "csv"


@given(trainings())
def test_legacy_dict_has_every_field_once(config):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        legacy = to_legacy_dict(config)
    n_fields = len(to_dict(config)) - 1 + len(to_dict(config.model))
    assert len(legacy) == n_fields


@given(st.sampled_from([ModelConfig, TrainingConfig, InferenceConfig, ExecutionConfig]))
def test_defaults_round_trip(cls):
    assert from_dict(cls, to_dict(cls())) == cls()
