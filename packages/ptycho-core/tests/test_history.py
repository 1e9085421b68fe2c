"""The history schema: fixed key names, one term policy."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ptychopinn.config import ModelConfig, TrainingConfig
from ptychopinn.core.history import (
    LOSS_TERMS,
    HistoryError,
    check_history,
    epoch_line,
    history_key,
    is_history_key,
    loss_terms,
    record_epoch,
)


@pytest.mark.parametrize(
    "key", ["lr", "train_loss", "val_loss", "test_loss", "train_nll", "val_tv", "test_amp_mae"]
)
def test_schema_keys(key):
    assert is_history_key(key)


@pytest.mark.parametrize(
    "key", ["loss", "learning_rate", "nll", "val_mse", "epoch", "test_", "train_lr", "mae"]
)
def test_other_spellings_are_not_in_the_schema(key):
    assert not is_history_key(key)


def test_history_key_builds_and_rejects():
    assert history_key("train") == "train_loss"
    assert history_key("val", "nll") == "val_nll"
    with pytest.raises(HistoryError, match="stage"):
        history_key("fit")
    with pytest.raises(HistoryError, match="term"):
        history_key("train", "mse")


def test_record_epoch_appends_and_refuses_unknown_keys():
    history = {}
    record_epoch(history, {"train_loss": 2, "lr": 1e-3})
    record_epoch(history, {"train_loss": 1.5, "lr": 5e-4})
    assert history == {"train_loss": [2.0, 1.5], "lr": [1e-3, 5e-4]}
    with pytest.raises(HistoryError, match="'loss'"):
        record_epoch(history, {"loss": 1.0})


def test_check_history():
    assert check_history({"train_loss": (1, 2)}) == {"train_loss": [1.0, 2.0]}
    with pytest.raises(HistoryError, match="learning_rate"):
        check_history({"learning_rate": [1.0]})
    with pytest.raises(HistoryError, match="sequence of numbers"):
        check_history({"train_loss": ["x"]})


weights = st.sampled_from([0.0, 0.5, 1.0])


@given(nll=weights, mae=weights, rs=weights, tv=weights, truth=st.booleans())
def test_loss_terms_are_exactly_the_weighted_ones(nll, mae, rs, tv, truth):
    if nll == mae == 0:
        nll = 1.0  # a config with no data term is rejected by TrainingConfig
    cfg = TrainingConfig(
        nll_weight=nll, mae_weight=mae, realspace_mae_weight=rs, realspace_weight=tv
    )
    terms = loss_terms(cfg, has_truth=truth)
    assert ("nll" in terms) == (nll > 0)
    assert ("mae" in terms) == (mae > 0)
    assert ("realspace_mae" in terms) == (rs > 0 and truth)
    assert ("tv" in terms) == (tv > 0)
    assert set(terms) <= set(LOSS_TERMS)


def test_supervised_terms():
    cfg = TrainingConfig(model=ModelConfig(model_type="supervised"))
    assert loss_terms(cfg, has_truth=True) == ("amp_mae", "phase_mae")


def test_epoch_line_shows_the_losses_sorted_and_the_seconds():
    line = epoch_line(2, 3, {"val_loss": 0.25, "lr": 1e-3, "train_loss": 0.5}, 5.04)
    assert line == "epoch 2/3: train_loss 0.5, val_loss 0.25 (5.0 s)"
    assert epoch_line(1, 1, {"lr": 1e-3}, 0.0) == "epoch 1/1: no loss logged (0.0 s)"
