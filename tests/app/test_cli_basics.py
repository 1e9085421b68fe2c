"""--version, config show, info, and usage errors: one readable line, exit code 2."""

from __future__ import annotations

import importlib.metadata
import json

import pytest


def test_version_lists_every_ptycho_distribution(cli):
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"ptychopinn {importlib.metadata.version('ptychopinn-app')}"
    listed = dict(line.split() for line in lines[1:])
    for name in ("ptycho-config", "ptycho-data", "ptycho-stitch"):
        assert listed[name] == importlib.metadata.version(name)


def test_no_command_prints_help_and_exits_2(cli):
    result = cli()
    assert result.returncode == 2
    assert "simulate" in result.stdout and "demo" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bogus"], "invalid choice"),
        (["train", "--nepochs", "zero"], "not an integer"),
        (["train", "--nepochs", "0"], "must be >= 1"),
        (["infer", "--data", "x.npz"], "--model"),
        (["simulate", "-N", "64", "--object", "cats"], "invalid choice"),
    ],
)
def test_usage_errors_are_one_line_exit_2(inproc, args, expected):
    result = inproc(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ptychopinn: error:") and expected in lines[0]


def test_config_show_defaults_yaml(cli):
    import yaml

    result = cli("config", "show")
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert set(data) == {"model", "training", "inference", "execution"}
    assert data["training"]["backend"] == "tensorflow"
    assert data["model"]["N"] == 64


def test_config_show_file_and_overrides_precedence(cli, tmp_path):
    (tmp_path / "c.yaml").write_text("model:\n  N: 128\ntraining:\n  nepochs: 7\n  batch_size: 8\n")
    result = cli("config", "show", "c.yaml", "--set", "training.nepochs=3", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"]["N"] == 128  # file beats default
    assert data["training"]["batch_size"] == 8
    assert data["training"]["nepochs"] == 3  # --set beats file


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        ("model:\n  N: 100\n", "bad.yaml", "N=100"),
        ("training:\n  nepochz: 3\n", "typo.yaml", "nepochs"),
        ("model: [1, 2\n", "broken.yaml", "invalid YAML"),
        ('{"model": {"N": 64}', "broken.json", "invalid JSON"),
        ("N: 64\n", "flat.yaml", "model"),
    ],
)
def test_config_show_bad_files_exit_2(inproc, tmp_path, content, name, expected):
    (tmp_path / name).write_text(content)
    result = inproc("config", "show", name)
    assert result.returncode == 2
    assert len(result.error_lines) == 1, result.stderr
    assert expected in result.error_lines[0]
    assert "Traceback" not in result.stderr


def test_config_show_missing_file_exit_2(cli):
    result = cli("config", "show", "nowhere.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == "ptychopinn: error: nowhere.yaml: no such file"


def test_verbose_shows_traceback(cli, tmp_path):
    (tmp_path / "bad.yaml").write_text("model:\n  N: 100\n")
    result = cli("config", "show", "bad.yaml", "--verbose")
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_info_without_device_query(cli):
    result = cli("info", "--no-devices", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["packages"]["ptycho-config"] == importlib.metadata.version("ptycho-config")
    assert set(data["backends"]) >= {"tensorflow", "pytorch"}
    text = cli("info", "--no-devices")
    assert text.returncode == 0
    assert "backends:" in text.stdout and "tensorflow" in text.stdout


def test_python_dash_m_and_console_script_agree(cli):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "ptychopinn"
    if not script.exists():
        pytest.skip("console script not installed next to the interpreter")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert out.returncode == 0
    assert out.stdout == cli("--version").stdout
