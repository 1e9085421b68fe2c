"""Fixtures shared by the application's test folders (tests/app, tests/hostile): run the
CLI in a subprocess or in this process, a tiny simulated dataset, a NumPy backend."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import ptychopinn.config
import ptychopinn.core
from ptychopinn.core import Backend, TrainResult


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


# --- a NumPy backend for in-process jobs (no deep-learning framework) --------------


@dataclass
class _Model:
    config: object
    weights: dict
    trained: bool = False
    calls: list = field(default_factory=list)


class NumpyBackend(Backend):
    """Implements ``ptychopinn.core.Backend`` with NumPy and ptychopinn.data.bundle."""

    name = "numpy-test"

    def __init__(self):
        self.trained_weights = None

    def _fresh(self, config):
        shapes = ptychopinn.config.layer_plan(config.model).parameter_shapes()
        rng = np.random.default_rng(0)
        return {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}

    def train(self, train, test, config, execution=None):
        assert train.X.ndim == 4 and train.X.shape[-1] == config.model.gridsize**2
        weights = self._fresh(config)
        self.trained_weights = weights
        losses = list(np.linspace(2.0, 1.0, config.nepochs))
        history = {"train_loss": losses, "val_loss": [v + 0.1 for v in losses]}
        if test is not None:
            history["test_loss"] = [1.05]
        return TrainResult(_Model(config, weights, trained=True), history, config.output_dir)

    def predict(self, model, data, batch_size=None):
        model.calls.append(batch_size)
        if model.trained:
            # The truth at each group's centre, where the application stitches it.
            from ptychopinn.data.physics import extract

            return extract(data.object, data.coords_offsets[:, 0, :, 0], data.N)[..., None]
        # Untrained: a noisy flat object (an exactly constant one trips ptycho-stitch's FRC).
        rng = np.random.default_rng(len(data))
        noise = rng.normal(scale=0.05, size=(len(data), data.N, data.N, 1))
        return ((0.5 + noise) * np.exp(1j * noise)).astype(np.complex64)

    def save_bundle(self, model, path):
        from ptychopinn.data import save_portable, write_bundle

        manifest = {"backend": self.name, "config": model.config.to_dict(), "N": 64}
        return write_bundle(path, manifest, {"portable.npz": save_portable(model.weights)})

    def load_bundle(self, path):
        from ptychopinn.config import TrainingConfig, from_dict
        from ptychopinn.data import load_portable, read_bundle

        bundle = read_bundle(path)
        config = from_dict(TrainingConfig, bundle.manifest["config"])
        return _Model(config, load_portable(bundle.members["portable.npz"]), trained=True)

    def export_weights(self, model):
        return dict(model.weights)

    def import_weights(self, model, weights):
        assert set(weights) == set(model.weights)
        model.weights = dict(weights)
        model.trained = all(np.array_equal(weights[k], self.trained_weights[k]) for k in weights)


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
