"""Training health: the collapse and stall policy both backends apply after every epoch.

Pure NumPy; the backends only supply numbers:

- :func:`check_collapse` / :func:`check_object_collapse`: the object patches the
  network predicts on the inference path for a fixed batch
  (:func:`fixed_batch_indices`, at most 16 groups; the backends pass the network's
  amplitude and phase, every channel, before any merging -- a merged group mixes in
  its neighbours' borders and support edges and is never constant). *Collapsed*
  means the complex object is constant over the whole batch -- the amplitude's
  standard deviation over every pixel of every channel of every group is
  at most ``amp_rtol`` of its mean (or the amplitude is ~0 everywhere) and the
  phase's circular standard deviation is at most ``phase_atol`` radians. A
  saturated output activation (sigmoid at exactly 1, π·tanh at exactly π) passes
  no gradient, so such a network does not recover. Only the central N/2 × N/2
  window is measured: with ``pad_object`` the outer N/4 border is zero padding
  (or the probe_big outer branch), not the reconstruction.
- :func:`check_stall`: the monitored loss did not move by more than ``rtol``
  relative (``|L_i - L_ref| / max(|L_ref|, 1e-12)``, so negative losses work) for
  ``patience`` epochs.

Both verdicts carry a message naming the (1-based) epoch, the measured numbers and
what to try (:func:`remedies`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import TrainingCollapsedError, TrainingStalledWarning

__all__ = [
    "AMP_ATOL",
    "AMP_RTOL",
    "MAX_CHECK_GROUPS",
    "PHASE_ATOL",
    "STALL_TINY",
    "CollapseVerdict",
    "StallVerdict",
    "TrainingCollapsedError",
    "TrainingStalledWarning",
    "central_window",
    "check_collapse",
    "check_object_collapse",
    "check_stall",
    "fixed_batch_indices",
    "remedies",
    "result_extras",
]

#: At most this many groups are evaluated per epoch (one small forward pass).
MAX_CHECK_GROUPS = 16
# A saturated or dead network is constant to float32 rounding (~1e-7); an untrained
# one (Glorot, zero biases) measured 2e-4 relative amplitude and 1.5e-3 rad phase
# spread at N=256 (2e-3 / 2e-2 at N=64): the thresholds sit between, 10x from each.
#: Amplitude std over the batch at most this fraction of its mean: constant.
AMP_RTOL = 1e-5
#: ... or at most this in absolute terms (an amplitude that is ~0 everywhere).
AMP_ATOL = 1e-6
#: Phase circular std (radians) at most this: constant.
PHASE_ATOL = 1e-5
#: Floor of ``|L_ref|`` in the stall check's relative change.
STALL_TINY = 1e-12


def fixed_batch_indices(n_groups: int, max_groups: int = MAX_CHECK_GROUPS) -> np.ndarray:
    """The groups the health check evaluates: ``min(n, max_groups)`` evenly spaced indices.

    Deterministic (the same groups every epoch) and spread over the data set.
    """
    n = int(n_groups)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    k = min(n, int(max_groups))
    return np.unique(np.round(np.linspace(0, n - 1, k)).astype(np.int64))


def central_window(array: np.ndarray) -> np.ndarray:
    """The central N/2 × N/2 window of ``(B, N, N[, C])`` patches (axes 1 and 2)."""
    a = np.asarray(array)
    if a.ndim < 3:
        raise ValueError(f"expected (B, N, N[, C]) patches, got shape {a.shape}")
    n0, n1 = a.shape[1], a.shape[2]
    q0, q1 = n0 // 4, n1 // 4
    return a[:, q0 : q0 + max(n0 // 2, 1), q1 : q1 + max(n1 // 2, 1)]


def _groups_by_pixels(array: np.ndarray) -> np.ndarray:
    """(B, H, W[, C]) -> (B, H·W·C): every pixel of every channel of a group in one row."""
    a = np.asarray(array, dtype=np.float64)
    return a.reshape(a.shape[0], -1)


def _circular_std(resultant: np.ndarray | float) -> np.ndarray | float:
    """Circular standard deviation sqrt(-2 ln R) of a mean resultant length R."""
    r = np.clip(resultant, 1e-300, 1.0)
    return np.sqrt(np.maximum(-2.0 * np.log(r), 0.0))


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def remedies(config: Any = None) -> str:
    """What to try after a collapse or a stall; names the current values when ``config``
    (a TrainingConfig) is given."""

    def now(name: str, owner: Any) -> str:
        value = getattr(owner, name, None) if owner is not None else None
        return f" (now {value!r})" if value is not None else ""

    model = getattr(config, "model", None)
    weights = ""
    if config is not None and hasattr(config, "mae_weight") and hasattr(config, "nll_weight"):
        weights = f" (now mae_weight={config.mae_weight!r}, nll_weight={config.nll_weight!r})"
    return (
        f"try a lower learning_rate{now('learning_rate', config)}, e.g. 10x lower; "
        f"mae_weight=1 with nll_weight=0{weights}; "
        f"another amp_activation{now('amp_activation', model)}, e.g. 'swish' or 'softplus', "
        "which do not saturate; "
        f"a smaller batch_size{now('batch_size', config)}"
    )


# ---------------------------------------------------------------------- collapse
@dataclass(frozen=True)
class CollapseVerdict:
    """The collapse check's numbers for one epoch.

    ``amp_std`` is over every central pixel of every group; ``amp_std_pixels`` is the
    mean over groups of the std across one group's pixels (all its channels);
    ``amp_std_groups`` the std
    across groups of the group means (``*_rel`` divide by ``|amp_mean|``). The phase
    numbers are circular standard deviations in radians (no wrap at ±π).
    """

    collapsed: bool
    epoch: int
    n_groups: int
    window: tuple[int, int]
    channels: int
    amp_mean: float
    amp_std: float
    amp_std_pixels: float
    amp_std_groups: float
    phase_mean: float
    phase_std: float
    phase_std_pixels: float
    phase_std_groups: float
    message: str = ""

    def _rel(self, value: float) -> float:
        return value / max(abs(self.amp_mean), STALL_TINY)

    @property
    def amp_rel_std(self) -> float:
        """``amp_std / |amp_mean|``."""
        return self._rel(self.amp_std)

    @property
    def amp_rel_std_pixels(self) -> float:
        """``amp_std_pixels / |amp_mean|``."""
        return self._rel(self.amp_std_pixels)

    @property
    def amp_rel_std_groups(self) -> float:
        """``amp_std_groups / |amp_mean|``."""
        return self._rel(self.amp_std_groups)

    def as_dict(self) -> dict[str, Any]:
        """The numbers (and the relative amplitude stds) as a plain dict, without the message."""
        out = asdict(self)
        out.pop("message")
        out["window"] = list(self.window)
        out["amp_rel_std"] = self.amp_rel_std
        out["amp_rel_std_pixels"] = self.amp_rel_std_pixels
        out["amp_rel_std_groups"] = self.amp_rel_std_groups
        return out

    def error(self) -> TrainingCollapsedError:
        """The :class:`TrainingCollapsedError` to raise for this verdict."""
        return TrainingCollapsedError(self.message, verdict=self, epoch=self.epoch)


def check_collapse(
    amplitude: np.ndarray,
    phase: np.ndarray,
    epoch: int,
    *,
    central: bool = True,
    amp_rtol: float = AMP_RTOL,
    amp_atol: float = AMP_ATOL,
    phase_atol: float = PHASE_ATOL,
    config: Any = None,
) -> CollapseVerdict:
    """Is the predicted object constant over the batch?

    Args:
        amplitude, phase: ``(B, N, N)`` or ``(B, N, N, C)`` (channels-last) amplitude
            and phase (radians) of the object patches the network predicts for a fixed
            batch of B groups (:func:`fixed_batch_indices`), C channels per group.
        epoch: the 1-based epoch just finished (for the message).
        central: measure only the central N/2 × N/2 window (:func:`central_window`).
        amp_rtol, amp_atol: amplitude constant when ``std <= amp_rtol·|mean| + amp_atol``.
        phase_atol: phase constant when its circular std is ``<= phase_atol`` radians
            (not needed when the amplitude is ~0 everywhere).
        config: the TrainingConfig, to name current values in the message.

    Returns:
        A :class:`CollapseVerdict`; its ``message`` is empty unless collapsed.
        Non-finite values never count as a collapse (that is the non-finite loss check's job).
    """
    amp = np.asarray(amplitude)
    ph = np.asarray(phase)
    if amp.shape != ph.shape:
        raise ValueError(f"amplitude {amp.shape} and phase {ph.shape} shapes differ")
    if central:
        amp, ph = central_window(amp), central_window(ph)
    a = _groups_by_pixels(amp)
    p = _groups_by_pixels(ph)
    if a.size == 0:
        raise ValueError("the collapse check needs at least one group with pixels")
    window = (int(amp.shape[1]), int(amp.shape[2]))
    channels = int(amp.shape[3]) if amp.ndim == 4 else 1
    amp_mean = float(a.mean())
    amp_std = float(a.std())
    amp_std_pixels = float(a.std(axis=1).mean())
    amp_std_groups = float(a.mean(axis=1).std())
    z = np.exp(1j * p)
    z_groups = z.mean(axis=1)
    phase_mean = float(np.angle(z.mean()))
    phase_std = float(_circular_std(np.abs(z.mean())))
    phase_std_pixels = float(np.mean(_circular_std(np.abs(z_groups))))
    unit = z_groups / np.maximum(np.abs(z_groups), 1e-300)
    phase_std_groups = float(_circular_std(np.abs(unit.mean())))
    finite = bool(np.all(np.isfinite(a)) and np.all(np.isfinite(p)))
    amp_flat = amp_std <= amp_rtol * abs(amp_mean) + amp_atol
    dark = abs(amp_mean) <= amp_atol
    collapsed = finite and amp_flat and (dark or phase_std <= phase_atol)
    message = ""
    if collapsed:
        n = a.shape[0]
        rel = amp_std / max(abs(amp_mean), STALL_TINY)
        message = (
            f"training collapsed at epoch {epoch}: the predicted object is constant over "
            f"a fixed batch of {n} groups (central {window[0]}x{window[1]} window"
            f"{f' of each of the {channels} channels' if channels > 1 else ''}) -- "
            f"amplitude {amp_mean:.6g} with std {_fmt(amp_std)} ({rel:.2e} of the mean; "
            f"{_fmt(amp_std_pixels)} across pixels, {_fmt(amp_std_groups)} across groups), "
            f"phase {phase_mean:.6g} rad with circular std {_fmt(phase_std)} rad "
            f"({_fmt(phase_std_pixels)} across pixels, {_fmt(phase_std_groups)} across "
            "groups). The network's output no longer depends on its input (a saturated "
            "output activation passes no gradient), so more epochs will not recover it; "
            f"{remedies(config)}. ExecutionConfig.collapse_check=False disables this check."
        )
    return CollapseVerdict(
        collapsed=collapsed,
        epoch=int(epoch),
        n_groups=int(a.shape[0]),
        window=window,
        channels=channels,
        amp_mean=amp_mean,
        amp_std=amp_std,
        amp_std_pixels=amp_std_pixels,
        amp_std_groups=amp_std_groups,
        phase_mean=phase_mean,
        phase_std=phase_std,
        phase_std_pixels=phase_std_pixels,
        phase_std_groups=phase_std_groups,
        message=message,
    )


def check_object_collapse(obj: np.ndarray, epoch: int, **kwargs: Any) -> CollapseVerdict:
    """:func:`check_collapse` of complex object patches ``(B, N, N[, C])``: ``|O|`` and ``arg O``.

    For per-patch outputs (e.g. ``predict`` at gridsize 1); a group merged from several
    patches is never constant at its support edges, so training checks the network's
    per-channel amplitude and phase instead.
    """
    o = np.asarray(obj)
    return check_collapse(np.abs(o), np.angle(o), epoch, **kwargs)


# ------------------------------------------------------------------------- stall
@dataclass(frozen=True)
class StallVerdict:
    """The stall check's numbers: the largest relative change over the last ``patience``
    epochs (None when there are not enough finite values yet)."""

    stalled: bool
    epoch: int
    patience: int
    rtol: float
    monitor: str
    reference: float | None = None
    last: float | None = None
    max_change: float | None = None
    message: str = ""


def check_stall(
    losses: Sequence[float] | np.ndarray,
    epoch: int | None = None,
    *,
    patience: int,
    rtol: float,
    monitor: str = "loss",
    config: Any = None,
) -> StallVerdict:
    """Has the monitored loss stopped moving?

    Stalled when the last ``patience + 1`` values (one per epoch, oldest first) are
    finite and each differs from the first of them by at most
    ``rtol · max(|first|, 1e-12)``: no relative change above ``rtol`` over ``patience``
    epochs, whatever the sign of the loss.

    Args:
        losses: the monitored loss, one value per epoch so far.
        epoch: the 1-based epoch just finished (default ``len(losses)``).
        patience: epochs without movement that count as a stall (>= 1).
        rtol: relative tolerance (>= 0; 0 means exactly equal).
        monitor: the loss's name, for the message.
        config: the TrainingConfig, to name current values in the message.
    """
    if patience < 1:
        raise ValueError(f"patience must be >= 1, got {patience}")
    if not (rtol >= 0 and math.isfinite(rtol)):
        raise ValueError(f"rtol must be a finite number >= 0, got {rtol}")
    values = np.asarray(losses, dtype=np.float64).reshape(-1)
    e = int(epoch) if epoch is not None else int(values.size)
    if values.size < patience + 1:
        return StallVerdict(False, e, patience, float(rtol), monitor)
    window = values[-(patience + 1) :]
    if not np.all(np.isfinite(window)):
        return StallVerdict(False, e, patience, float(rtol), monitor)
    ref = float(window[0])
    change = float(np.max(np.abs(window - ref)) / max(abs(ref), STALL_TINY))
    stalled = change <= rtol
    message = ""
    if stalled:
        message = (
            f"training stopped early at epoch {e}: {monitor} has not moved for {patience} "
            f"epochs (largest relative change {change:.2e} <= stall_tolerance {rtol:g}; "
            f"{monitor} = {float(window[-1]):.6g}). A loss this flat usually means the "
            f"network stopped learning; check the reconstruction, and {remedies(config)}. "
            "ExecutionConfig.stall_patience=None disables this check."
        )
    return StallVerdict(
        stalled, e, patience, float(rtol), monitor, ref, float(window[-1]), change, message
    )


def result_extras(
    stopped_reason: str | None, stopped_epoch: int | None, last: CollapseVerdict | None
) -> dict[str, Any]:
    """What both backends put in ``TrainResult.extras``: ``stopped_reason`` (None unless
    the stall check stopped training), ``stopped_epoch`` and the last ``collapse_check``."""
    out: dict[str, Any] = {"stopped_reason": stopped_reason, "stopped_epoch": stopped_epoch}
    if last is not None:
        out["collapse_check"] = last.as_dict()
    return out
