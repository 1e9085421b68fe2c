"""load_config: file layout, precedence overrides > file > defaults, errors naming the file."""

import json
from pathlib import Path

import pytest
import yaml
from config_strategies import executions, models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptychopinn.config import (
    ConfigError,
    ConfigFileError,
    ExecutionConfig,
    InferenceConfig,
    ModelConfig,
    TrainingConfig,
    UnknownKeyError,
    load_config,
    parse_overrides,
    save_config,
    to_file_dict,
)

YAML_TEXT = """\
model:
  N: 128
  gridsize: 2
training:
  nepochs: 5
  learning_rate: 1e-3
  train_data_file: data/train.npz
  neighbor_count: 7
inference:
  model_path: runs/wts.h5.zip
execution:
  accelerator: cpu
  precision: 32
  devices: [0, 1]
"""


@pytest.fixture
def yaml_file(tmp_path: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(YAML_TEXT)
    return path


def test_file_values_override_defaults(yaml_file):
    cfg = load_config(yaml_file)
    assert set(cfg) == {"model", "training", "inference", "execution"}
    model = ModelConfig(N=128, gridsize=2)
    assert cfg["model"] == model
    assert cfg["training"] == TrainingConfig(
        model=model,
        nepochs=5,
        learning_rate=1e-3,
        train_data_file=Path("data/train.npz"),
        neighbor_count=7,
    )
    assert cfg["inference"] == InferenceConfig(model=model, model_path=Path("runs/wts.h5.zip"))
    assert cfg["execution"] == ExecutionConfig(accelerator="cpu", precision="32", devices=(0, 1))


def test_overrides_beat_the_file_and_the_defaults(yaml_file):
    cfg = load_config(
        yaml_file,
        {"training.nepochs": 9, "model.N": 64, "execution": {"num_workers": 2}, "training.seed": 3},
    )
    assert cfg["training"].nepochs == 9  # override > file
    assert cfg["training"].seed == 3  # override > default
    assert cfg["training"].learning_rate == 1e-3  # file > default
    assert cfg["training"].batch_size == 16  # default
    assert cfg["model"].N == 64 and cfg["training"].model.N == 64 and cfg["inference"].model.N == 64
    assert cfg["execution"].num_workers == 2


def test_string_overrides_are_parsed_as_yaml(yaml_file):
    cfg = load_config(
        yaml_file,
        [
            "training.nepochs=11",
            "model.probe_big=false",
            "training.n_groups=null",
            "training.output_dir=out dir",
            "execution.devices=[2]",
        ],
    )
    assert cfg["training"].nepochs == 11 and cfg["model"].probe_big is False
    assert cfg["training"].n_groups is None and cfg["training"].output_dir == Path("out dir")
    assert cfg["execution"].devices == (2,)


def test_no_file_gives_defaults_plus_overrides():
    cfg = load_config(None)
    assert cfg["training"] == TrainingConfig() and cfg["execution"] == ExecutionConfig()
    assert load_config(None, {"inference.stitch_crop": 10})["inference"].stitch_crop == 10


def test_json_files_and_empty_sections(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"model": {"N": 256}, "training": None}))
    cfg = load_config(path)
    assert cfg["model"].N == 256 and cfg["training"].model.N == 256
    empty = tmp_path / "empty.yml"
    empty.write_text("")
    assert load_config(empty)["model"] == ModelConfig()


def test_deprecated_n_images_in_a_file_warns(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("training:\n  n_images: 32\n")
    with pytest.warns(DeprecationWarning):
        assert load_config(path)["training"].n_groups == 32


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        (
            "training:\n  nepoch: 3\n",
            ["unknown TrainingConfig key 'nepoch'", "did you mean 'nepochs'?"],
        ),
        (
            "model:\n  grid_size: 2\n",
            ["unknown ModelConfig key 'grid_size'", "did you mean 'gridsize'?"],
        ),
        (
            "trainig:\n  nepochs: 3\n",
            ["unknown top-level key 'trainig'", "did you mean 'training'?"],
        ),
        (
            "nepochs: 3\n",
            ["unknown top-level key 'nepochs'", "belongs under the 'training' section"],
        ),
        ("n_groups: 3\n", ["'training' or 'inference' section"]),
        ("foo: 1\n", ["unknown top-level key 'foo'", "allowed sections: model, training"]),
        (
            "training:\n  model:\n    N: 64\n",
            ["training.model is not a key here", "top-level 'model'"],
        ),
        (
            "execution:\n  logger: wandb\n",
            ["ExecutionConfig.logger='wandb'", "'csv', 'tensorboard'"],
        ),
        ("model:\n  N: 100\n", ["N=100 is not supported; choose 64, 128 or 256"]),
        ("training: [1, 2]\n", ["section 'training' must be a mapping, got list"]),
        ("- 1\n- 2\n", ["the top level must be a mapping of sections", "got list"]),
        ("model: {N: 64\n", ["invalid YAML"]),
    ],
)
def test_file_errors_name_the_file(tmp_path, text, fragments):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, message


def test_unreadable_unsupported_and_invalid_json_files(tmp_path):
    with pytest.raises(ConfigFileError, match=r"missing\.yaml: cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    toml = tmp_path / "c.toml"
    toml.write_text("")
    with pytest.raises(ConfigFileError, match=r"c\.toml: unsupported config file type '\.toml'"):
        load_config(toml)
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": ')
    with pytest.raises(ConfigFileError, match=r"bad\.json: invalid JSON at line 1"):
        load_config(bad)


def test_validation_error_after_override_says_so(yaml_file):
    with pytest.raises(ConfigError) as info:
        load_config(yaml_file, {"training.batch_size": 0})
    assert str(info.value).startswith(f"{yaml_file} (with overrides): ")
    assert "batch_size=0" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"training.nepoch": 1}, ["override 'training.nepoch'", "did you mean 'nepochs'?"]),
        ({"nepochs": 1}, ["override 'nepochs'", "did you mean 'training.nepochs'?"]),
        ({"trainig.nepochs": 1}, ["override 'trainig.nepochs'", "section in model, training"]),
        ({"training.model": {}}, ["unknown training key 'model'"]),
        (["training.nepochs"], ["is not 'section.key=value'"]),
        (["training.nepochs=[1"], ["cannot parse value"]),
        ("training.nepochs=3", ["pass a list of 'section.key=value' strings"]),
    ],
)
def test_bad_overrides(overrides, fragments):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_unknown_override_is_an_unknown_key_error():
    with pytest.raises(UnknownKeyError):
        parse_overrides({"execution.workers": 2})
    assert parse_overrides(None) == []
    assert parse_overrides({"model": {"N": 64}, "training.seed": 1}) == [
        ("model", "N", 64),
        ("training", "seed", 1),
    ]


def test_to_file_dict_layout_and_errors():
    cfg = load_config(None, {"model.N": 128})
    data = to_file_dict(cfg)
    assert list(data) == ["model", "training", "inference", "execution"]
    assert "model" not in data["training"] and data["model"]["N"] == 128
    only_training = to_file_dict({"training": TrainingConfig(model=ModelConfig(N=256))})
    assert only_training["model"]["N"] == 256 and list(only_training) == ["model", "training"]
    with pytest.raises(ConfigError, match="differs from the model section"):
        to_file_dict({"model": ModelConfig(), "training": TrainingConfig(model=ModelConfig(N=128))})
    with pytest.raises(UnknownKeyError, match="did you mean 'execution'"):
        to_file_dict({"executon": ExecutionConfig()})


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_save_then_load_is_exact(tmp_path, suffix):
    cfg = load_config(
        None, ["model.gridsize=2", "training.train_data_file=a b.npz", "execution.devices=[1]"]
    )
    path = save_config(cfg, tmp_path / f"saved{suffix}")
    assert load_config(path) == cfg
    assert not list(tmp_path.glob("*.tmp"))


def test_save_rejects_unknown_suffix(tmp_path):
    with pytest.raises(ConfigFileError, match="unsupported config file type"):
        save_config(load_config(None), tmp_path / "x.txt")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(
    model=models,
    execution=executions(),
    nepochs=st.integers(1, 1000),
    fmt=st.sampled_from([".yaml", ".json"]),
)
def test_save_load_round_trip_property(tmp_path, model, execution, nepochs, fmt):
    cfg = {
        "model": model,
        "training": TrainingConfig(
            model=model,
            nepochs=nepochs,
            neighbor_count=max(4, model.gridsize**2 - 1),
            nll_weight=1.0,
        ),
        "inference": InferenceConfig(model=model, neighbor_count=max(4, model.gridsize**2 - 1)),
        "execution": execution,
    }
    path = save_config(cfg, tmp_path / f"p{fmt}")
    assert load_config(path) == cfg
    parse = json.loads if fmt == ".json" else yaml.safe_load
    assert parse(path.read_text()) == to_file_dict(cfg)
