"""(golden) Stored reference outputs: the NumPy operators and one fixed-weight forward pass.

``tests/parity/golden/reference.npz`` (< 1 MB) holds the operator inputs and the NumPy
reference outputs (``ops_in/``, ``ops_ref/``), and the inputs and outputs of one model
forward pass (N=64, gridsize 2, object_big, probe_big, pinn, n_filters_scale=1, the
deterministic weights of ``inputs.portable_weights``; ``model_in/``, ``model_out/``,
produced by the TensorFlow backend). Tests compare against it; rewriting it needs
``pytest tests/parity --regen-golden``, which prints the diff against the old file.
"""

from __future__ import annotations

import io
import json

import inputs as parity_inputs
import numpy as np
import pytest
from parity_harness import BACKENDS, GOLDEN, check, load_out, rel_err

TOL_OPS = 1e-6  # the NumPy reference against itself (same code, maybe other BLAS/FFT)
TOL_MODEL = 1e-4  # a float32 forward pass, either backend
MODEL_KEYS = ("obj", "pred_amp", "loss", "infer")


def _diff(old: dict | None, new: dict) -> list[str]:
    if old is None:
        return [f"new golden file with {len(new)} arrays"]
    lines = []
    for k in sorted(set(old) | set(new)):
        if k not in old:
            lines.append(f"+ {k} {new[k].shape}")
        elif k not in new:
            lines.append(f"- {k}")
        elif old[k].shape != new[k].shape or old[k].dtype != new[k].dtype:
            lines.append(f"~ {k}: {old[k].shape}/{old[k].dtype} -> {new[k].shape}/{new[k].dtype}")
        elif old[k].dtype.kind in "fc":
            err = rel_err(new[k], old[k])
            if err > 0:
                lines.append(f"~ {k}: max rel change {err:.3e}")
        elif not np.array_equal(old[k], new[k]):
            lines.append(f"~ {k}: changed")
    return lines or ["no change"]


@pytest.fixture(scope="module")
def golden(parity, phase_a, request):
    """The stored golden arrays; with --regen-golden, rewritten first (diff printed)."""
    if not parity.regen:
        if parity.golden is None:
            pytest.fail(f"{GOLDEN} is missing: create it with pytest tests/parity --regen-golden")
        return parity.golden
    tf_out = load_out(phase_a, "model", "tensorflow")
    new: dict[str, np.ndarray] = {}
    new.update({f"ops_in/{k}": v for k, v in parity.ops_in.items()})
    new.update({f"ops_ref/{k}": np.asarray(v) for k, v in parity.ops_ref.items()})
    new.update({f"model_in/{k}": np.asarray(v) for k, v in parity.golden_model_in.items()})
    new.update({f"model_out/{k}": tf_out[f"golden/{k}"] for k in MODEL_KEYS})
    new["meta"] = np.asarray(json.dumps({"ops_settings": parity.ops_settings,
                                         "model_config": parity_inputs.GOLDEN_CONFIG,
                                         "model_out_backend": "tensorflow"}))  # fmt: skip
    old = None
    if GOLDEN.exists():
        with np.load(GOLDEN, allow_pickle=False) as f:
            old = dict(f)
    buf = io.BytesIO()
    np.savez_compressed(buf, **new)
    assert buf.tell() < 1_000_000, f"golden file would be {buf.tell()} bytes (limit 1 MB)"
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_bytes(buf.getvalue())
    print(f"\n[regen-golden] wrote {GOLDEN} ({buf.tell()} bytes); diff against the old file:")
    for line in _diff(old, new):
        print("  " + line)
    return new


def test_golden_size():
    assert GOLDEN.exists() and GOLDEN.stat().st_size < 1_000_000


def test_numpy_reference_matches_golden(parity, golden):
    """The NumPy reference operators have not drifted from the stored outputs."""
    gold = {k[len("ops_ref/") :]: v for k, v in golden.items() if k.startswith("ops_ref/")}
    assert gold.keys() == parity.ops_ref.keys()
    worst = max(gold, key=lambda k: rel_err(parity.ops_ref[k], gold[k]))
    check("golden", f"numpy reference ops vs golden (worst: {worst})",
          rel_err(parity.ops_ref[worst], gold[worst]), TOL_OPS)  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", MODEL_KEYS)
def test_model_forward_matches_golden(phase_a, golden, backend, name):
    out = load_out(phase_a, "model", backend)
    errors = json.loads(str(out["errors"]))
    assert "golden" not in errors, errors.get("golden")
    err = rel_err(out[f"golden/{name}"], golden[f"model_out/{name}"])
    check(f"golden:{backend}", f"fixed-weight forward {name}", err, TOL_MODEL)
