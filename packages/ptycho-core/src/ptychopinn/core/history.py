"""The training history: one schema, the same key names from every backend.

A history maps a key to one float per epoch (``dict[str, list[float]]``). Keys are

- ``lr``: the learning rate used in the epoch;
- ``<stage>_loss``: the weighted total loss, for ``stage`` in ``train``, ``val``
  (the validation split, when there is one) and ``test`` (the test data, evaluated
  once after training: a one-element list);
- ``<stage>_<term>``: a named loss term (:data:`LOSS_TERMS`), logged exactly when
  it is part of the loss (:func:`loss_terms`: a term whose weight is 0 is neither
  computed nor logged).

Epoch values are means over samples (each batch's mean weighted by its size).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "LOSS_TERMS",
    "LR",
    "STAGES",
    "TEST_LOSS",
    "TRAIN_LOSS",
    "VAL_LOSS",
    "History",
    "HistoryError",
    "check_history",
    "epoch_line",
    "history_key",
    "is_history_key",
    "loss_terms",
    "record_epoch",
]

History = dict[str, list[float]]

STAGES = ("train", "val", "test")
#: Named loss terms (METHOD.md §6): Poisson NLL, amplitude MAE, real-space MAE against
#: the true object, total variation; supervised: amplitude and phase MAE.
LOSS_TERMS = ("nll", "mae", "realspace_mae", "tv", "amp_mae", "phase_mae")
LR = "lr"
TRAIN_LOSS = "train_loss"
VAL_LOSS = "val_loss"
TEST_LOSS = "test_loss"


class HistoryError(ValueError):
    """A history key outside the schema, or values that are not one float per epoch."""


def history_key(stage: str, term: str = "loss") -> str:
    """The history key of ``term`` (``"loss"`` or a :data:`LOSS_TERMS` name) in ``stage``."""
    if stage not in STAGES:
        raise HistoryError(f"unknown history stage {stage!r}; expected one of {STAGES}")
    if term != "loss" and term not in LOSS_TERMS:
        raise HistoryError(f"unknown loss term {term!r}; expected 'loss' or one of {LOSS_TERMS}")
    return f"{stage}_{term}"


def is_history_key(key: str) -> bool:
    """True for ``lr`` and ``<stage>_loss`` / ``<stage>_<term>``."""
    if key == LR:
        return True
    stage, _, term = str(key).partition("_")
    return stage in STAGES and (term == "loss" or term in LOSS_TERMS)


def loss_terms(config: Any, *, has_truth: bool) -> tuple[str, ...]:
    """The named terms a backend computes and logs for ``config`` (a TrainingConfig).

    The one policy both backends follow: pinn — ``nll``, ``mae``, ``realspace_mae``
    and ``tv`` each when its weight is > 0 (``realspace_mae`` also needs ground-truth
    patches, ``has_truth``); supervised — ``amp_mae`` and ``phase_mae``.
    """
    if config.model.model_type == "supervised":
        return ("amp_mae", "phase_mae")
    terms = []
    if config.nll_weight > 0:
        terms.append("nll")
    if config.mae_weight > 0:
        terms.append("mae")
    if config.realspace_mae_weight > 0 and has_truth:
        terms.append("realspace_mae")
    if config.realspace_weight > 0:
        terms.append("tv")
    return tuple(terms)


def record_epoch(history: History, values: Mapping[str, float]) -> None:
    """Append one epoch's ``values`` to ``history``; every key must be in the schema."""
    for key, value in values.items():
        if not is_history_key(key):
            raise HistoryError(f"history key {key!r} is not in the schema ({__name__})")
        history.setdefault(key, []).append(float(value))


def check_history(history: Mapping[str, Any]) -> History:
    """Return ``history`` as ``dict[str, list[float]]``; raise HistoryError on a key
    outside the schema or a value that is not a sequence of numbers."""
    out: History = {}
    for key, values in history.items():
        if not is_history_key(str(key)):
            raise HistoryError(f"history key {key!r} is not in the schema ({__name__})")
        try:
            out[str(key)] = [float(v) for v in values]
        except (TypeError, ValueError):
            raise HistoryError(
                f"history[{key!r}] must be a sequence of numbers, got {values!r}"
            ) from None
    return out


def epoch_line(epoch: int, max_epochs: int, metrics: Mapping[str, float], seconds: float) -> str:
    """The one-line progress report of a finished epoch (1-based ``epoch``).

    Shows the ``*loss`` entries of ``metrics`` in sorted order, e.g.
    ``epoch 3/20: train_loss 0.12, val_loss 0.2 (5.1 s)``; both backends log it where
    the console is not a terminal.
    """
    shown = ", ".join(
        f"{k} {float(v):.4g}" for k, v in sorted(metrics.items()) if k.endswith("loss")
    )
    return f"epoch {epoch}/{max_epochs}: {shown or 'no loss logged'} ({seconds:.1f} s)"
