"""Shared state and helpers of the parity tests (a plain module: one copy per process).

Relative error everywhere is the max-norm relative error ``max|a - b| / max|b|``
(``b`` = the reference: NumPy, or TensorFlow for backend pairs), which is robust for
arrays with zeros (elementwise ratios are not).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RUNNER = HERE / "runner.py"
GOLDEN = HERE / "golden" / "reference.npz"
BACKENDS = ("tensorflow", "pytorch")

RECORDS: list[dict] = []
EXTRA: dict[str, object] = {}


def rel_err(a, b) -> float:
    """Max-norm relative error of ``a`` against reference ``b``."""
    a = np.asarray(a, np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(b) else np.float64)
    b = np.asarray(b, a.dtype)
    assert a.shape == b.shape, f"shape mismatch {a.shape} vs {b.shape}"
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return float(np.max(np.abs(a - b))) / (scale if scale > 0 else 1.0)


def record(group: str, name: str, measured: float, tolerance: float, kind: str = "max rel err",
           op: str = "<=") -> bool:  # fmt: skip
    """Record one comparison for the report; return whether it passes."""
    ok = bool(measured <= tolerance) if op == "<=" else bool(measured >= tolerance)
    RECORDS.append(
        {"group": group, "check": name, "metric": kind, "measured": float(measured),
         "tolerance": f"{op} {tolerance:g}", "passed": ok}
    )  # fmt: skip
    return ok


def check(group: str, name: str, measured: float, tolerance: float, **kw) -> None:
    """Record and assert one comparison."""
    ok = record(group, name, measured, tolerance, **kw)
    op = kw.get("op", "<=")
    assert ok, f"{group}/{name}: measured {measured:.3e}, tolerance {op} {tolerance:g}"


def _write_report(report_dir: pathlib.Path) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    doc = {"records": RECORDS, **EXTRA}
    (report_dir / "parity.json").write_text(json.dumps(doc, indent=2, default=str))
    lines = ["# Cross-backend parity report", "",
             "Relative error = max|a-b| / max|reference|. Rows marked **NO** belong to the",
             "strict-xfail tests listed under known_defects_xfail (backend defects), or to failures.",
             "",
             "| group | check | metric | measured | tolerance | pass |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in RECORDS:
        lines.append(
            f"| {r['group']} | {r['check']} | {r['metric']} | {r['measured']:.3e} | "
            f"{r['tolerance']} | {'yes' if r['passed'] else '**NO**'} |"
        )
    for key, value in EXTRA.items():
        if key == "loss_curves":
            continue
        lines += ["", f"## {key}", "", "```json", json.dumps(value, indent=2, default=str), "```"]
    (report_dir / "parity.md").write_text("\n".join(lines) + "\n")
    curves = EXTRA.get("loss_curves")
    if curves:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for backend, hist in curves.items():
            epochs = np.arange(1, len(hist) + 1)
            ax.plot(epochs, hist, marker="o" if backend == "tensorflow" else "x",
                    linestyle="-" if backend == "tensorflow" else "--", label=backend)  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (Poisson NLL)")
        ax.set_title("TensorFlow vs PyTorch, same data/weights/batches")
        ax.legend()
        fig.tight_layout()
        fig.savefig(report_dir / "loss_curves.png", dpi=100)
        plt.close(fig)


def run_backends(indir: pathlib.Path, outdir: pathlib.Path, tasks: str,
                 backends=BACKENDS, env: dict | None = None) -> dict[str, float]:  # fmt: skip
    """Run ``runner.py`` for each backend in parallel subprocesses; return wall times."""
    procs = {}
    t0 = time.perf_counter()
    full_env = {**os.environ, **(env or {})}
    for backend in backends:
        log = open(outdir / f"log.{backend}.{tasks.replace(',', '+')}.txt", "w")
        cmd = [sys.executable, str(RUNNER), "--backend", backend, "--task", tasks,
               "--in", str(indir), "--out", str(outdir)]  # fmt: skip
        procs[backend] = (
            subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env),
            log,
        )
    walls = {}
    for backend, (proc, log) in procs.items():
        rc = proc.wait(timeout=900)
        log.close()
        walls[backend] = time.perf_counter() - t0
        if rc != 0:
            text = pathlib.Path(log.name).read_text()[-4000:]
            raise RuntimeError(f"runner for {backend} ({tasks}) failed with rc={rc}:\n{text}")
    return walls


def load_out(outdir: pathlib.Path, task: str, backend: str) -> dict[str, np.ndarray]:
    """Outputs of one task from one backend; a task error becomes a test failure naming it."""
    err = outdir / f"{task}.{backend}.error.txt"
    if err.exists():
        pytest.fail(f"{backend} runner, task {task} raised:\n{err.read_text()[-3000:]}")
    with np.load(outdir / f"{task}.{backend}.npz", allow_pickle=False) as f:
        return dict(f)
