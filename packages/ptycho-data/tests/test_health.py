"""The training-health policy: collapse of the predicted object, stall of the loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptychopinn.config import ModelConfig, TrainingConfig
from ptychopinn.data import (
    TrainingCollapsedError,
    check_collapse,
    check_object_collapse,
    check_stall,
    health,
)


def _structured(b: int = 16, n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    amp = 0.5 + 0.2 * rng.random((b, n, n, 1))
    phase = rng.uniform(-1.0, 1.0, (b, n, n, 1))
    return amp.astype(np.float32), phase.astype(np.float32)


# ---------------------------------------------------------------------- collapse
def test_constant_object_is_collapsed_with_numbers_and_remedies():
    amp = np.ones((16, 64, 64, 1), np.float32)
    phase = np.full((16, 64, 64, 1), np.pi, np.float32)
    cfg = TrainingConfig(learning_rate=3e-3, batch_size=32)
    v = check_collapse(amp, phase, 7, config=cfg)
    assert v.collapsed and v.epoch == 7 and v.n_groups == 16 and v.window == (32, 32)
    assert v.amp_mean == pytest.approx(1.0) and v.amp_std == 0.0 and v.amp_rel_std == 0.0
    assert abs(abs(v.phase_mean) - math.pi) < 1e-6 and v.phase_std < 1e-6
    for fragment in (
        "epoch 7",
        "constant",
        "learning_rate (now 0.003)",
        "mae_weight=1 with nll_weight=0",
        "amp_activation (now 'sigmoid')",
        "batch_size (now 32)",
        "collapse_check=False",
    ):
        assert fragment in v.message, v.message
    err = v.error()
    assert isinstance(err, TrainingCollapsedError) and isinstance(err, RuntimeError)
    assert err.epoch == 7 and err.verdict is v and str(err) == v.message
    d = v.as_dict()
    assert d["collapsed"] and d["amp_rel_std"] == 0.0 and "message" not in d


def test_structured_object_is_healthy():
    amp, phase = _structured()
    v = check_collapse(amp, phase, 1)
    assert not v.collapsed and v.message == ""
    assert v.amp_rel_std > 0.05 and v.phase_std > 0.1
    assert v.amp_std_pixels > 0 and v.amp_std_groups > 0


def test_only_the_central_window_is_measured():
    # constant inside the central N/2 window, structured (or zero) padding outside
    amp = np.ones((4, 64, 64), np.float32)
    phase = np.zeros((4, 64, 64), np.float32)
    amp[:, :16] = 0.0
    phase[:, :, :16] = np.random.default_rng(0).uniform(-3, 3, (4, 64, 16))
    assert check_collapse(amp, phase, 2).collapsed
    assert not check_collapse(amp, phase, 2, central=False).collapsed


def test_every_channel_of_a_group_is_measured():
    amp = np.ones((16, 64, 64, 4))
    phase = np.full_like(amp, np.pi)
    v = check_collapse(amp, phase, 2)
    assert v.collapsed and v.n_groups == 16 and v.channels == 4
    assert "16 groups (central 32x32 window of each of the 4 channels)" in v.message
    amp[:, :, :, 3] = _structured(16)[0][..., 0]  # one channel still has structure
    assert not check_collapse(amp, phase, 2).collapsed


def test_amplitude_only_or_phase_only_structure_is_not_a_collapse():
    amp, phase = _structured()
    flat_amp = np.ones_like(amp)
    flat_phase = np.zeros_like(phase)
    assert not check_collapse(amp, flat_phase, 3).collapsed  # amplitude object
    assert not check_collapse(flat_amp, phase, 3).collapsed  # phase object


def test_groups_that_differ_but_are_flat_inside_are_not_a_collapse():
    amp = np.ones((8, 64, 64, 1)) * np.linspace(0.5, 1.0, 8)[:, None, None, None]
    v = check_collapse(amp, np.zeros_like(amp), 1)
    assert not v.collapsed
    assert v.amp_std_pixels == pytest.approx(0.0, abs=1e-12) and v.amp_std_groups > 0.1


def test_phase_near_the_branch_cut_does_not_wrap():
    # arg O flips between +pi and -pi for a constant O = -1 (+ float noise)
    rng = np.random.default_rng(1)
    obj = -np.ones((16, 64, 64, 1)) + 1e-7j * rng.standard_normal((16, 64, 64, 1))
    v = check_object_collapse(obj, 4)
    assert v.collapsed and v.phase_std < 1e-5
    assert abs(abs(v.phase_mean) - math.pi) < 1e-5


def test_dark_and_nearly_constant_outputs():
    zeros = np.zeros((4, 64, 64, 1))
    assert check_object_collapse(zeros.astype(np.complex64), 1).collapsed
    # amplitude 1 - 1e-6 noise (partly saturated sigmoid) still counts as constant
    rng = np.random.default_rng(2)
    amp = 1 - 1e-6 * rng.random((16, 64, 64, 1))
    assert check_collapse(amp, np.full_like(amp, np.pi), 1).collapsed
    # a faint but real 1 % contrast does not
    amp = 1 - 1e-2 * rng.random((16, 64, 64, 1))
    assert not check_collapse(amp, np.zeros_like(amp), 1).collapsed


def test_non_finite_output_is_not_reported_as_collapse():
    amp = np.ones((2, 64, 64))
    amp[0, 32, 32] = np.nan
    assert not check_collapse(amp, np.zeros_like(amp), 1).collapsed


def test_collapse_input_errors():
    with pytest.raises(ValueError, match="shapes differ"):
        check_collapse(np.ones((2, 8, 8)), np.ones((2, 8, 4)), 1)
    with pytest.raises(ValueError, match="patches"):
        check_collapse(np.ones((8, 8)), np.ones((8, 8)), 1)


def test_fixed_batch_indices():
    assert health.fixed_batch_indices(5).tolist() == [0, 1, 2, 3, 4]
    idx = health.fixed_batch_indices(100)
    assert len(idx) == 16 and idx[0] == 0 and idx[-1] == 99 and np.all(np.diff(idx) > 0)
    assert health.fixed_batch_indices(0).size == 0
    assert len(health.fixed_batch_indices(100, 4)) == 4


# ------------------------------------------------------------------------- stall
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_flat_loss_stalls_whatever_its_sign(sign):
    losses = [sign * v for v in (5.0, 3.0, 2.0, 2.0, 2.0 + 1e-7, 2.0)]
    v = check_stall(losses, patience=3, rtol=1e-5, monitor="val_loss")
    assert v.stalled and v.epoch == 6 and v.max_change is not None and v.max_change <= 1e-5
    for fragment in ("epoch 6", "val_loss", "3 epochs", "learning_rate", "stall_patience=None"):
        assert fragment in v.message, v.message
    assert not check_stall(losses, patience=4, rtol=1e-5).stalled  # 3.0 -> 2.0 in the window


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_falling_loss_does_not_stall(sign):
    losses = [sign * (10.0 - 0.5 * i) for i in range(12)]
    v = check_stall(losses, 12, patience=5, rtol=1e-5)
    assert not v.stalled and v.message == "" and v.max_change is not None and v.max_change > 0.01
    # a loss crossing zero: relative to max(|ref|, tiny), never a division by ~0
    crossing = [0.2, 0.1, 0.0, -0.1, -0.2]
    assert not check_stall(crossing, patience=3, rtol=1e-5).stalled


def test_slow_drift_is_measured_against_the_window_start():
    # each step is tiny, but the window moves by 9e-5 relative in total
    losses = [1.0 - 1e-5 * i for i in range(10)]
    assert not check_stall(losses, patience=9, rtol=5e-5).stalled
    assert check_stall(losses, patience=9, rtol=1e-4).stalled


def test_stall_needs_enough_finite_epochs():
    assert not check_stall([1.0, 1.0], patience=2, rtol=0.0).stalled
    assert check_stall([1.0, 1.0, 1.0], patience=2, rtol=0.0).stalled
    assert not check_stall([1.0, float("nan"), 1.0], patience=2, rtol=1e-3).stalled
    assert check_stall([0.0, 0.0], patience=1, rtol=0.0).stalled
    with pytest.raises(ValueError, match="patience"):
        check_stall([1.0], patience=0, rtol=1e-5)
    with pytest.raises(ValueError, match="rtol"):
        check_stall([1.0], patience=1, rtol=-1.0)


def test_remedies_name_current_values():
    text = health.remedies(TrainingConfig(model=ModelConfig(amp_activation="swish")))
    assert "amp_activation (now 'swish')" in text
    assert "(now mae_weight=0.0, nll_weight=1.0)" in text
    assert "learning_rate" in health.remedies() and "now" not in health.remedies()


def test_result_extras_records_the_reason_and_the_last_check():
    from ptychopinn.data.health import check_collapse, result_extras

    flat = np.ones((2, 64, 64, 1))
    verdict = check_collapse(flat, np.zeros_like(flat), epoch=3)
    out = result_extras("stalled", 4, verdict)
    assert out["stopped_reason"] == "stalled" and out["stopped_epoch"] == 4
    assert out["collapse_check"] == verdict.as_dict()
    assert "collapse_check" not in result_extras(None, None, None)
