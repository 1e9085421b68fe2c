"""Shared test settings: a small, deterministic torch on the CI's 2 cores."""

from __future__ import annotations

import os

import pytest
import torch

from ptychopinn.config import ExecutionConfig, ModelConfig, TrainingConfig
from ptychopinn.data import group, simulate

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def scan():
    """A small simulated `lines` scan (N=64)."""
    return simulate("lines", n_images=24, N=64, object_size=128, nphotons=1e6, seed=3)


@pytest.fixture(scope="session")
def grouped(scan):
    """gridsize 1 groups of the small scan."""
    return group(scan, gridsize=1, seed=0, nphotons=1e6)


@pytest.fixture(scope="session")
def grouped2(scan):
    """gridsize 2 groups of the small scan."""
    return group(scan, gridsize=2, n_groups=24, seed=0, nphotons=1e6)


def tiny_config(tmp_path, **kw) -> TrainingConfig:
    """A tiny, fast training configuration writing under ``tmp_path``."""
    model_kw = {k: kw.pop(k) for k in list(kw) if k in ModelConfig.field_names()}
    base = dict(
        model=ModelConfig(N=64, n_filters_scale=1, **model_kw),
        nepochs=2,
        batch_size=8,
        validation_fraction=0.2,
        nphotons=1e6,
        backend="pytorch",
        output_dir=tmp_path,
        seed=0,
    )
    base.update(kw)
    return TrainingConfig(**base)


def cpu_execution(**kw) -> ExecutionConfig:
    """A quiet single-process CPU execution config."""
    base = dict(accelerator="cpu", devices=1, enable_progress_bar=False, logger="csv")
    base.update(kw)
    return ExecutionConfig(**base)


@pytest.fixture
def make_config():
    """Factory of tiny training configs: ``make_config(tmp_path, **overrides)``."""
    return tiny_config


@pytest.fixture
def make_execution():
    """Factory of quiet CPU execution configs."""
    return cpu_execution
