"""One error hierarchy for every backend; one bad-input marker for the application."""

from pathlib import Path

import pytest

import ptychopinn.data.errors
from ptychopinn.config import BackendNotInstalledError, BadInput, ConfigError
from ptychopinn.core import errors
from ptychopinn.core.errors import (
    BadInputError,
    DataError,
    ModelMismatchError,
    NonFiniteLossError,
    PtychoError,
    UnsupportedOptionError,
)


@pytest.mark.parametrize(
    "cls", [BadInputError, DataError, ModelMismatchError, UnsupportedOptionError]
)
def test_input_errors_carry_the_marker_and_stay_value_errors(cls):
    exc = cls("bad")
    assert isinstance(exc, BadInput) and isinstance(exc, ValueError)
    assert isinstance(exc, PtychoError) and not isinstance(exc, RuntimeError)


def test_the_marker_is_the_registrys_and_the_configs():
    assert errors.BadInput is BadInput
    assert issubclass(ConfigError, BadInput) and issubclass(BackendNotInstalledError, BadInput)


def test_non_finite_loss_is_a_failure_not_bad_input():
    exc = NonFiniteLossError(3, 41, Path("/x/last.ckpt"), detail="loss=nan")
    assert isinstance(exc, RuntimeError) and isinstance(exc, PtychoError)
    assert not isinstance(exc, BadInput)
    assert (exc.epoch, exc.step, exc.last_checkpoint) == (3, 41, Path("/x/last.ckpt"))
    assert str(exc).startswith("non-finite training loss at epoch 3 (global step 41) (loss=nan);")
    assert "/x/last.ckpt" in str(exc)


def test_non_finite_loss_without_checkpoint_says_so():
    exc = NonFiniteLossError(1, 0, None)
    assert exc.last_checkpoint is None and exc.detail is None
    assert "last good checkpoint: none" in str(exc)


def test_health_errors_are_ptycho_datas_own_classes():
    assert errors.TrainingCollapsedError is ptychopinn.data.errors.TrainingCollapsedError
    assert errors.TrainingStalledWarning is ptychopinn.data.errors.TrainingStalledWarning
