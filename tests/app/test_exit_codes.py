"""Exit codes: the BadInput marker is exit 2, a failed job 1 (no class-name matching)."""

import zipfile
from pathlib import Path

import pytest

from ptychopinn.app.errors import EXIT_FAILURE, EXIT_USAGE, InputError, exit_code_for
from ptychopinn.config import BackendNotInstalledError, BadInput, ConfigError
from ptychopinn.core import (
    DataError,
    ModelMismatchError,
    NonFiniteLossError,
    TrainingCollapsedError,
    UnsupportedOptionError,
)


class MarkedRuntimeError(BadInput, RuntimeError):
    """A bad-input error that is not a ValueError: the marker alone decides."""


@pytest.mark.parametrize(
    "exc",
    [
        InputError("x"),
        ConfigError("x"),
        BackendNotInstalledError("pip install ptycho-torch"),
        DataError("x"),
        ModelMismatchError("x"),
        UnsupportedOptionError("logger='mlflow'"),
        MarkedRuntimeError("x"),
        FileNotFoundError(2, "No such file", "a.npz"),
        zipfile.BadZipFile("x"),
    ],
)
def test_bad_input_is_exit_2(exc):
    assert exit_code_for(exc) == EXIT_USAGE


@pytest.mark.parametrize(
    "exc",
    [
        NonFiniteLossError(2, 10, Path("last.ckpt")),
        TrainingCollapsedError("collapsed at epoch 1"),
        RuntimeError("x"),
        KeyError("x"),
    ],
)
def test_failed_job_is_exit_1(exc):
    assert exit_code_for(exc) == EXIT_FAILURE


def test_a_class_named_like_the_registrys_error_is_not_enough():
    imposter = type("BackendNotInstalledError", (RuntimeError,), {})
    assert exit_code_for(imposter("x")) == EXIT_FAILURE
