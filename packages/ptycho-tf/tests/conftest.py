"""Shared fixtures of the ptycho-tf tests: quiet TensorFlow, tiny simulated data sets."""

from __future__ import annotations

import os

# Quiet TensorFlow's C++ logging before anything imports it (tests only, not the package).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest

from ptychopinn.config import ExecutionConfig, ModelConfig, TrainingConfig
from ptychopinn.data import GroupedData, group, simulate


@pytest.fixture(scope="session")
def scan_small():
    """A small, densely scanned simulated 'lines' object (N=64, 96 patterns, 128 px)."""
    return simulate("lines", n_images=96, N=64, object_size=128, seed=3, nphotons=1e9)


@pytest.fixture(scope="session")
def grouped1(scan_small) -> GroupedData:
    """gridsize-1 groups of the small scan."""
    return group(scan_small, gridsize=1, seed=0)


@pytest.fixture(scope="session")
def grouped2(scan_small) -> GroupedData:
    """gridsize-2 groups of the small scan."""
    return group(scan_small, gridsize=2, n_groups=48, seed=0)


def _tiny_training(tmp_path, gridsize: int = 1, **overrides) -> TrainingConfig:
    fields = {
        "model": ModelConfig(N=64, gridsize=gridsize, n_filters_scale=1),
        "nepochs": 1,
        "batch_size": 8,
        "output_dir": tmp_path / "out",
        "validation_fraction": 0.2,
        "seed": 0,
    }
    fields.update(overrides)
    return TrainingConfig(**fields)


@pytest.fixture
def tiny_config(tmp_path):
    """Factory of tiny TrainingConfigs (N=64, n_filters_scale=1, 1 epoch) under tmp_path."""

    def make(gridsize: int = 1, **overrides) -> TrainingConfig:
        return _tiny_training(tmp_path, gridsize, **overrides)

    return make


@pytest.fixture(scope="session")
def trained(tmp_path_factory, grouped1):
    """One tiny model trained for 2 epochs (gridsize 1), shared by the tests that only read it."""
    from ptychopinn.tf.training import train

    out = tmp_path_factory.mktemp("trained")
    cfg = _tiny_training(out, 1, nepochs=2)
    return cfg, train(grouped1, grouped1.subset(np.arange(8)), cfg, QUIET)


QUIET = ExecutionConfig(enable_progress_bar=False, accelerator="cpu")


@pytest.fixture
def quiet() -> ExecutionConfig:
    """An ExecutionConfig without a progress bar."""
    return QUIET


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator."""
    return np.random.default_rng(1234)
