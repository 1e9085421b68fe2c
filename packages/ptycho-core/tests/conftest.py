"""A small simulated scan and a training configuration for the workflow tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ptychopinn.config import ModelConfig, TrainingConfig
from ptychopinn.data import simulate

# tests/ is not a package (pytest --import-mode=importlib); make core_fake_backend importable.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def scan():
    return simulate("lines", n_images=100, N=64, object_size=128, seed=1, poisson=False)


@pytest.fixture
def config(tmp_path):
    return TrainingConfig(model=ModelConfig(N=64), nepochs=2, output_dir=tmp_path)
