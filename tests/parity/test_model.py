"""(2) Model: both networks, the same portable weights, the same batch -> same outputs.

For every combination of N (64, 128), gridsize (1, 2), object_big, probe_big and
model_type (pinn, supervised), with n_filters_scale=1 and batch 2: the object patches,
the predicted diffraction amplitudes, each backend's own training loss and the
inference-path object agree to <= 1e-4 max relative error.
"""

from __future__ import annotations

import json

import pytest
from parity_harness import BACKENDS, check, load_out, rel_err

import inputs as parity_inputs

TOL = 1e-4
CONFIGS = parity_inputs.model_configs()


@pytest.fixture(scope="module")
def model_out(phase_a):
    return {b: load_out(phase_a, "model", b) for b in BACKENDS}


def _get(out, backend, cid, name):
    errors = json.loads(str(out[backend]["errors"]))
    if cid in errors:
        pytest.fail(f"{backend} failed on {cid}:\n{errors[cid][-2500:]}")
    return out[backend][f"{cid}/{name}"]


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c["id"] for c in CONFIGS])
def test_model_parity(model_out, cfg):
    cid = cfg["id"]
    for backend in BACKENDS:
        rt = float(_get(model_out, backend, cid, "roundtrip"))
        check(f"model:{backend} import/export", cid, rt, 0.0, kind="max abs diff")
    failures = []
    for name in ("obj", "pred_amp", "loss", "infer"):
        err = rel_err(_get(model_out, "pytorch", cid, name), _get(model_out, "tensorflow", cid, name))
        from parity_harness import record

        if not record(f"model:{name}", cid, err, TOL):
            failures.append(f"{name}: {err:.3e}")
    assert not failures, f"{cid}: pytorch vs tensorflow exceed {TOL}: {failures}"
