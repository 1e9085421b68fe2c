"""Fixtures shared by the application's test folders (tests/app, tests/hostile): run the
CLI in a subprocess or in this process, a tiny simulated dataset, a NumPy backend."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import ptychopinn.core

# tests/ is not a package (pytest --import-mode=importlib): make the fake importable.
sys.path.insert(0, str(Path(__file__).parent))

from app_numpy_backend import NumpyBackend


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """The stderr lines that the application itself wrote (``ptychopinn: ...``)."""
        return [ln for ln in self.stderr.splitlines() if ln.startswith("ptychopinn:")]

    def one_error_line(self) -> str:
        """The single error line of a run refused as bad input (exit 2, no traceback)."""
        assert self.returncode == 2, (self.returncode, self.stderr)
        assert "Traceback" not in self.stderr, self.stderr
        assert len(self.error_lines) == 1, self.stderr
        return self.error_lines[0]


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


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """A tiny simulated dataset (64x64 patterns), written once through the CLI's own code."""
    from ptychopinn.app.pipeline import simulate_files

    out = tmp_path_factory.mktemp("tiny")
    return simulate_files(out, n_images=48, N=64, object_size=160, seed=3, test_fraction=0.5)


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


# --- a NumPy backend for in-process jobs (tests/app_numpy_backend.py) ---------------


@pytest.fixture
def numpy_backend(monkeypatch):
    backend = NumpyBackend()
    real = ptychopinn.core.get_backend

    def get_backend(name):
        return backend if name in ("tensorflow", "pytorch", backend.name) else real(name)

    monkeypatch.setattr(ptychopinn.core, "get_backend", get_backend)
    # ... and both backends registered, so that the default-backend rule (the only
    # installed one, else tensorflow) finds them where none is really installed.
    import importlib.metadata

    real_entry_points = importlib.metadata.entry_points
    registered = importlib.metadata.EntryPoints(
        importlib.metadata.EntryPoint(name, f"numpy.test:{name}", "ptychopinn.backends")
        for name in ("tensorflow", "pytorch")
    )

    def entry_points(**params):
        if params.get("group") == "ptychopinn.backends":
            return registered
        return real_entry_points(**params)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return backend
