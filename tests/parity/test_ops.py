"""(1) Operators: TensorFlow vs PyTorch vs the NumPy reference, float32, shared random inputs."""

from __future__ import annotations

import inputs as parity_inputs
import pytest
from parity_harness import BACKENDS, check, load_out, rel_err

TOL = 1e-5  # max relative error, float32 (issue 8)
TOL_AMP = 1e-6  # forward diffraction amplitude (issue 8: "where the spec demands it")

FORWARD = [
    "translate_real", "translate_complex", "extract", "merge_big", "merge_small",
    "reextract", "illuminate", "illuminate_masked", "nll",
]  # fmt: skip


@pytest.fixture(scope="module")
def ops_out(phase_a):
    outdir = phase_a
    return {b: load_out(outdir, "ops", b) for b in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", FORWARD)
def test_forward_matches_numpy(parity, ops_out, backend, name):
    check(
        f"ops:{backend} vs numpy", name, rel_err(ops_out[backend][name], parity.ops_ref[name]), TOL
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_diffract_amplitude(parity, ops_out, backend):
    err = rel_err(ops_out[backend]["diffract"], parity.ops_ref["diffract"])
    check(f"ops:{backend} vs numpy", "diffract (amplitude)", err, TOL_AMP)


@pytest.mark.parametrize("name", [*FORWARD, "diffract"])
def test_forward_tf_vs_torch(ops_out, name):
    err = rel_err(ops_out["pytorch"][name], ops_out["tensorflow"][name])
    check("ops:pytorch vs tensorflow", name, err, TOL_AMP if name == "diffract" else TOL)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["grad_nll", "grad_translate"])
def test_gradient_matches_numpy(parity, ops_out, backend, name):
    check(
        f"grad:{backend} vs numpy", name, rel_err(ops_out[backend][name], parity.ops_ref[name]), TOL
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("tag", ["big", "small"])
def test_chain_gradient_directional(parity, ops_out, backend, tag):
    """merge→reextract→illuminate→diffract→NLL: <∇L, v> vs float64 central differences."""
    out = ops_out[backend]
    check(f"grad:{backend} vs numpy", f"chain loss (probe_big={tag == 'big'})",
          rel_err(out[f"chain_loss_{tag}"], parity.ops_ref[f"chain_loss_{tag}"]), TOL)  # fmt: skip
    dd = parity_inputs.directional(parity.ops_in, out[f"grad_chain_amp_{tag}"],
                                   out[f"grad_chain_phase_{tag}"])  # fmt: skip
    check(f"grad:{backend} vs numpy", f"chain d/d(amp,phase) directional (probe_big={tag == 'big'})",
          rel_err(dd, parity.ops_ref[f"dirderiv_{tag}"]), TOL)  # fmt: skip


@pytest.mark.parametrize("name", ["grad_nll", "grad_translate", "grad_chain_amp_big",
                                  "grad_chain_phase_big", "grad_chain_amp_small",
                                  "grad_chain_phase_small"])  # fmt: skip
def test_gradient_tf_vs_torch(ops_out, name):
    err = rel_err(ops_out["pytorch"][name], ops_out["tensorflow"][name])
    check("grad:pytorch vs tensorflow", name, err, TOL)
