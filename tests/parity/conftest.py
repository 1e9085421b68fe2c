"""Cross-backend parity harness: the parent process imports neither TensorFlow nor torch.

The parent writes shared inputs to a temporary directory, runs ``runner.py`` once per
backend in its own subprocess (both backends in parallel), and the tests compare the
saved arrays. Every comparison is recorded with its tolerance and measured value; at
the end of the session the records are written to ``$PARITY_REPORT_DIR`` (default
``parity-report/`` at the repository root) as JSON + markdown (+ a loss-curve PNG).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # plain modules next to this file

from parity_harness import (
    BACKENDS,
    EXTRA,
    GOLDEN,
    RECORDS,
    ROOT,
    _write_report,
    run_backends,
)


def pytest_addoption(parser):
    parser.addoption(
        "--regen-golden", action="store_true", default=False,
        help="rewrite tests/parity/golden/reference.npz and print its diff against the old one",
    )  # fmt: skip


def pytest_sessionfinish(session, exitstatus):
    if RECORDS or EXTRA:
        _write_report(pathlib.Path(os.environ.get("PARITY_REPORT_DIR", ROOT / "parity-report")))


def _load_golden() -> dict[str, np.ndarray] | None:
    if not GOLDEN.exists():
        return None
    with np.load(GOLDEN, allow_pickle=False) as f:
        return dict(f)


def _sub(d: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in d.items() if k.startswith(prefix)}


class ParityRun:
    """The shared temp dir, inputs, references and lazily-run backend phases."""

    def __init__(self, tmp: pathlib.Path, regen: bool):
        import inputs as parity_inputs

        self.tmp, self.regen = tmp, regen
        self.indir, self.outdir = tmp / "in", tmp / "out"
        self.indir.mkdir()
        self.outdir.mkdir()
        self.golden = None if regen else _load_golden()
        if self.golden is not None:
            self.ops_in = _sub(self.golden, "ops_in/")
            self.ops_settings = json.loads(str(self.golden["meta"]))["ops_settings"]
        else:
            self.ops_in, self.ops_settings = parity_inputs.make_ops_inputs()
        self.ops_ref = parity_inputs.numpy_references(self.ops_in, self.ops_settings)
        np.savez(self.indir / "ops.npz", **self.ops_in)
        (self.indir / "ops.json").write_text(json.dumps(self.ops_settings))
        self.phases: dict[str, dict] = {}

    def phase(self, name: str, tasks: str, writer=None, env=None) -> pathlib.Path:
        """Run ``tasks`` on both backends once (``writer(indir)`` prepares their inputs)."""
        if name not in self.phases:
            if writer is not None:
                writer(self.indir)
            walls = run_backends(self.indir, self.outdir, tasks, env=env)
            timings = {}
            for b in BACKENDS:
                f = self.outdir / f"timings.{b}.json"
                timings[b] = json.loads(f.read_text()) if f.exists() else {}
            self.phases[name] = {"wall_s": walls, "in_process_s": timings}
            EXTRA.setdefault("timings", {})[name] = self.phases[name]
        return self.outdir


@pytest.fixture(scope="session")
def parity(tmp_path_factory, request) -> ParityRun:
    """Inputs/outputs go to a fresh temp dir, or to ``$PARITY_WORK_DIR`` (kept) when set."""
    work = os.environ.get("PARITY_WORK_DIR")
    if work:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        pathlib.Path(work).mkdir(parents=True)
        tmp = pathlib.Path(work)
    else:
        tmp = tmp_path_factory.mktemp("parity")
    return ParityRun(tmp, request.config.getoption("--regen-golden"))


def _write_model_inputs(parity: ParityRun) -> None:
    import inputs as parity_inputs

    if parity.golden is not None:
        golden_data = {k: parity.golden[f"model_in/{k}"] for k in parity_inputs.GOLDEN_DATA_KEYS}
    else:
        golden_data = parity_inputs.golden_model_data()
    parity.golden_model_in = golden_data
    arrays, settings = parity_inputs.make_model_inputs(parity.indir, golden_data)
    np.savez(parity.indir / "model.npz", **arrays)
    (parity.indir / "model.json").write_text(json.dumps(settings))
    parity.model_in, parity.model_settings = arrays, settings


def _write_train_inputs(parity: ParityRun) -> None:
    import inputs as parity_inputs

    arrays, settings = parity_inputs.make_train_inputs()
    np.savez(parity.indir / "train.npz", **arrays)
    (parity.indir / "train.json").write_text(json.dumps(settings))
    parity.train_in, parity.train_settings = arrays, settings


def _write_a(parity: ParityRun) -> None:
    _write_model_inputs(parity)
    _write_train_inputs(parity)


@pytest.fixture(scope="session")
def phase_a(parity) -> pathlib.Path:
    """Operators, model forward passes, training (+ bundle save): one subprocess per backend.

    Everything that needs no other backend's output runs here, so that each framework is
    imported once per phase (imports dominate the wall time on a small CPU machine).
    """
    return parity.phase("A", "ops,model,train", writer=lambda _: _write_a(parity))


@pytest.fixture(scope="session")
def phase_b(parity, phase_a) -> pathlib.Path:
    """Each backend loads the other's bundle (needs phase A's bundles)."""
    return parity.phase("B", "bundle_load")


def pytest_runtest_logreport(report):
    """List the known backend defects (strict xfails) and any failures in the report."""
    if report.when != "call":
        return
    if hasattr(report, "wasxfail"):
        EXTRA.setdefault("known_defects_xfail", {})[report.nodeid] = report.wasxfail
    elif report.failed:
        EXTRA.setdefault("failed_tests", []).append(report.nodeid)
