"""(2) Model: both networks, the same portable weights, the same batch -> same outputs.

For every combination of N (64, 128), gridsize (1, 2), object_big, probe_big and
model_type (pinn, supervised), with n_filters_scale=1 and batch 2: the object patches,
the predicted diffraction amplitudes, each backend's own training loss and the
inference-path object agree to <= 1e-4 max relative error.
"""

from __future__ import annotations

import json

import inputs as parity_inputs
import numpy as np
import pytest
from parity_harness import BACKENDS, check, load_out, rel_err

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
        err = rel_err(
            _get(model_out, "pytorch", cid, name), _get(model_out, "tensorflow", cid, name)
        )
        from parity_harness import record

        if not record(f"model:{name}", cid, err, TOL):
            failures.append(f"{name}: {err:.3e}")
    assert not failures, f"{cid}: pytorch vs tensorflow exceed {TOL}: {failures}"


GRAD_CONFIGS = [c for c in CONFIGS if c.get("grads")]
# Weight gradients are float32 reductions over B·N²·C terms with cancellation: the two
# backends sum in different orders (torch against itself, full batch vs per-sample sums,
# differs by up to ~1e-3 on a near-zero bias gradient), so 1e-4 is too tight here.
# N64 g1 probe_big measured 6.4e-3 (phase_head.bias) until ptycho-torch 0.1.2 computed
# upsample + thin conv as one sub-pixel convolution -- the same arithmetic in another
# order -- and 9.8e-4 since: summation order, not a model difference (FINDINGS §1).
TOL_GRAD = 1e-3
# phase_head.bias shifts the whole phase, which the loss ignores (the global-phase
# freedom, METHOD §4): its gradient is ~0 (7.8e-3 against 88 for log_scale, N64 g1
# probe_big) and its relative error is cancellation noise -- 2.6e-2 on a 2-core AVX2-only
# CPU for an absolute difference (2.1e-4) like every other tensor's. Each tensor's error
# is therefore taken relative to max(its own max |grad|, GRAD_FLOOR x the largest
# gradient of the model): a tensor 100x below the largest is held to 1e-5 of it.
GRAD_FLOOR = 1e-2

ADAM_DEFECT = (
    "optimiser mismatch: TF uses keras Adam (epsilon 1e-7 added to the uncorrected sqrt(v), i.e. "
    "an effective 1e-7/sqrt(1-beta2^t)), torch uses torch.optim.Adam (epsilon 1e-8 added to the "
    "bias-corrected sqrt(v)); METHOD §6 only says 'Adam, lr 1e-3', so parameters with small "
    "gradients take different steps"
)


def _adam_marks(cfg):
    return [pytest.mark.xfail(strict=True, reason=ADAM_DEFECT)]


@pytest.mark.parametrize("cfg", [pytest.param(c, id=c["id"]) for c in GRAD_CONFIGS])
def test_weight_gradients(model_out, cfg):
    """d(loss)/d(every canonical parameter), same weights and batch: worst tensor <= TOL_GRAD
    relative to its own scale, floored at GRAD_FLOOR x the model's largest gradient."""
    cid = cfg["id"]
    _get(model_out, "tensorflow", cid, "loss")
    _get(model_out, "pytorch", cid, "loss")
    names = [k[len(cid) + 6 :] for k in model_out["tensorflow"] if k.startswith(f"{cid}/grad/")]
    ref = {n: np.asarray(model_out["tensorflow"][f"{cid}/grad/{n}"], np.float64) for n in names}
    floor = GRAD_FLOOR * max(float(np.max(np.abs(g))) if g.size else 0.0 for g in ref.values())
    errs = {}
    for n, b in ref.items():
        a = np.asarray(model_out["pytorch"][f"{cid}/grad/{n}"], np.float64)
        assert a.shape == b.shape, f"{n}: shape {a.shape} vs {b.shape}"
        scale = max(float(np.max(np.abs(b))) if b.size else 0.0, floor, 1e-30)
        errs[n] = float(np.max(np.abs(a - b))) / scale if b.size else 0.0
    worst = max(errs, key=errs.get)
    check("model:grad", f"{cid} (worst: {worst})", errs[worst], TOL_GRAD)


@pytest.mark.parametrize(
    "cfg", [pytest.param(c, id=c["id"], marks=_adam_marks(c)) for c in GRAD_CONFIGS]
)
def test_optimizer_steps(model_out, cfg):
    """Three steps of each backend's Adam (as train() builds it) on the same batch -> weights."""
    cid = cfg["id"]
    _get(model_out, "tensorflow", cid, "loss")
    names = [k[len(cid) + 7 :] for k in model_out["tensorflow"] if k.startswith(f"{cid}/after/")]
    errs = {n: rel_err(model_out["pytorch"][f"{cid}/after/{n}"], model_out["tensorflow"][f"{cid}/after/{n}"])
            for n in names}  # fmt: skip
    worst = max(errs, key=errs.get)
    check("model:adam x3", f"{cid} weights (worst: {worst})", errs[worst], TOL_GRAD)
