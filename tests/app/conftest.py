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
