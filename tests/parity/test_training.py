"""(3) Training and (4) bundles across backends.

(3) Same data (a 17x17 grid scan, gridsize 2), same initial portable weights, the same
batch order (both backends walk ``GroupedData.batch_order(shuffle=True, seed + epoch)``),
Adam lr 1e-3, batch 16, 3 epochs: per-epoch training losses within 1 % (first epoch) and 5 % (last epoch); the
stitched amplitudes' SSIM against the ground truth within 0.02 of each other.

(4) A bundle written by one backend, loaded by the other's public ``load_bundle`` (via
``portable.npz``), predicts what the writer predicted, to <= 1e-4 relative.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from parity_harness import BACKENDS, EXTRA, check, load_out, record, rel_err

TOL_FIRST = 0.01
TOL_LAST = 0.05
TOL_SSIM = 0.02
TOL_BUNDLE = 1e-4


@pytest.fixture(scope="module")
def train_out(phase_a):
    out = {b: load_out(phase_a, "train", b) for b in BACKENDS}
    EXTRA["loss_curves"] = {b: out[b]["loss"].tolist() for b in BACKENDS}
    EXTRA["training_history"] = {b: json.loads(str(out[b]["history"])) for b in BACKENDS}
    return out


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def test_epoch_count(train_out):
    for b in BACKENDS:
        assert len(train_out[b]["loss"]) == 3, (b, train_out[b]["loss"])


def test_history_has_one_schema(train_out):
    """Both backends emit the same history keys (ptychopinn.core.history), per epoch."""
    tf, pt = EXTRA["training_history"]["tensorflow"], EXTRA["training_history"]["pytorch"]
    assert set(tf) == set(pt) == {"train_loss", "train_nll", "lr"}, (sorted(tf), sorted(pt))
    assert all(len(v) == 3 for h in (tf, pt) for v in h.values())
    np.testing.assert_allclose(tf["lr"], pt["lr"])  # the same schedule


def test_first_epoch_loss(train_out):
    tf, pt = train_out["tensorflow"]["loss"], train_out["pytorch"]["loss"]
    check("train", "epoch 1 loss |torch-tf|/|tf|", _rel(pt[0], tf[0]), TOL_FIRST, kind="rel diff")


def test_last_epoch_loss(train_out):
    tf, pt = train_out["tensorflow"]["loss"], train_out["pytorch"]["loss"]
    for e in range(1, len(tf) - 1):
        record("train", f"epoch {e + 1} loss (info)", _rel(pt[e], tf[e]), TOL_LAST, kind="rel diff")
    check("train", f"epoch {len(tf)} loss |torch-tf|/|tf|", _rel(pt[-1], tf[-1]), TOL_LAST,
          kind="rel diff")  # fmt: skip


def test_final_weights_close(train_out):
    """Informational: how far the trained weights drifted apart (no tolerance in the issue)."""
    tf, pt = train_out["tensorflow"], train_out["pytorch"]
    worst = max(rel_err(pt[k], tf[k]) for k in tf if k.startswith("final/") and k != "final/probe")
    record("train", "final weights max rel err (info, worst tensor)", worst, 1.0)


def _stitched_amplitude_ssim(parity, pred: np.ndarray) -> tuple[float, np.ndarray]:
    from ptychopinn.stitch import evaluate, reassemble

    offsets = parity.train_in["data/coords_offsets"][:, 0, :, 0]
    stitched = reassemble(pred, offsets, crop=20)
    metrics = evaluate(stitched, parity.train_in["data/object"])
    return float(metrics["amplitude"]["ssim"]), np.abs(stitched.image)


def test_stitched_ssim(parity, train_out):
    ssim_tf, amp_tf = _stitched_amplitude_ssim(parity, train_out["tensorflow"]["pred"])
    ssim_pt, amp_pt = _stitched_amplitude_ssim(parity, train_out["pytorch"]["pred"])
    record("train", "stitched amplitude SSIM vs truth, tensorflow (info)", ssim_tf, 0.0, op=">=",
           kind="SSIM")  # fmt: skip
    record("train", "stitched amplitude SSIM vs truth, pytorch (info)", ssim_pt, 0.0, op=">=",
           kind="SSIM")  # fmt: skip
    from ptychopinn.stitch import ssim

    record("train", "SSIM(torch stitched amp, tf stitched amp) (info)", ssim(amp_tf, amp_pt), 0.0,
           op=">=", kind="SSIM")  # fmt: skip
    check("train", "|SSIM_torch - SSIM_tf| (stitched amplitude vs truth)", abs(ssim_pt - ssim_tf),
          TOL_SSIM, kind="abs diff")  # fmt: skip


@pytest.mark.parametrize("backend", BACKENDS)
def test_own_bundle_roundtrip(train_out, backend):
    out = train_out[backend]
    check(f"bundle:{backend}", "own bundle reload -> same predictions",
          rel_err(out["pred_reloaded"], out["pred"]), TOL_BUNDLE)  # fmt: skip


@pytest.mark.parametrize(
    ("writer", "reader"), [("tensorflow", "pytorch"), ("pytorch", "tensorflow")]
)
def test_cross_backend_bundle(phase_b, train_out, writer, reader):
    loaded = load_out(phase_b, "bundle_load", reader)
    ref = train_out[writer]
    for k in ref:
        if k.startswith("final/"):
            assert np.array_equal(loaded["weights/" + k[len("final/") :]], ref[k]), k
    check(f"bundle:{writer}->{reader}", "predictions of the loaded bundle vs the writer's",
          rel_err(loaded["pred"], ref["pred"]), TOL_BUNDLE)  # fmt: skip
