"""Shared fixtures: run the CLI in a subprocess, find out which backends are installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """The stderr lines that the application itself wrote (``ptychopinn: ...``)."""
        return [ln for ln in self.stderr.splitlines() if ln.startswith("ptychopinn:")]


def _run(args: list[str], cwd: Path, timeout: float = 300.0, env: dict | None = None) -> CliResult:
    full_env = dict(os.environ)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    full_env["PYTHONWARNINGS"] = "ignore"
    full_env["MPLBACKEND"] = "Agg"
    if env:
        full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "ptychopinn.app", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(tmp_path: Path):
    """Run ``python -m ptychopinn.app ARGS`` in tmp_path; return code, stdout, stderr."""

    def run(*args: object, timeout: float = 300.0, env: dict | None = None) -> CliResult:
        return _run(list(args), tmp_path, timeout=timeout, env=env)

    return run


def backend_installed(name: str) -> bool:
    """Whether backend `name`'s package and framework are importable (nothing is imported)."""
    module, framework = {
        "tensorflow": ("ptychopinn.tf", "tensorflow"),
        "pytorch": ("ptychopinn.torch", "lightning"),
    }[name]
    return all(importlib.util.find_spec(m) is not None for m in (module, framework))


BACKENDS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            not backend_installed(name), reason=f"{name} backend not installed"
        ),
    )
    for name in ("tensorflow", "pytorch")
]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each installed backend in turn (each CLI call is its own process)."""
    return request.param


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """A tiny simulated dataset (64x64 patterns), written once through the CLI's own code."""
    from ptychopinn.app.pipeline import simulate_files

    out = tmp_path_factory.mktemp("tiny")
    return simulate_files(out, n_images=48, N=64, object_size=160, seed=3, test_fraction=0.5)


@pytest.fixture(scope="session")
def hidden_frameworks(tmp_path_factory) -> dict[str, str]:
    """PYTHONPATH entries that make tensorflow/keras/torch/lightning fail to import."""
    root = tmp_path_factory.mktemp("hidden")
    for name in ("tensorflow", "keras", "torch", "lightning"):
        pkg = root / name
        pkg.mkdir()
        (pkg / "__init__.py").write_text(f'raise ImportError("{name} is hidden by the test")\n')
    return {"PYTHONPATH": str(root)}


@pytest.fixture
def inproc(tmp_path, monkeypatch, capsys):
    """Run ``ptychopinn.app.cli.main(ARGS)`` in this process (for error paths that never
    reach a backend: much faster than a subprocess)."""
    from ptychopinn.app.cli import main

    monkeypatch.chdir(tmp_path)

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run
