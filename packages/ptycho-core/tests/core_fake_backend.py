"""A NumPy backend (test code) implementing ``ptychopinn.core.Backend``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptychopinn.config import ModelConfig, layer_plan
from ptychopinn.core import Backend, TrainResult
from ptychopinn.data.physics import extract


@dataclass
class FakeModel:
    config: ModelConfig
    weights: dict
    predict_calls: list = field(default_factory=list)


class NumpyBackend(Backend):
    """Implements ``ptychopinn.core.Backend``: "predicts" the true patches at each group centre."""

    name = "numpy-test"

    def __init__(self):
        self.train_calls = []

    def train(self, train, test, config, execution=None):
        self.train_calls.append((train, test, config, execution))
        shapes = layer_plan(config.model).parameter_shapes()
        weights = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
        history = {"train_loss": [2.0, 1.0], "lr": [1e-3, 1e-3]}
        return TrainResult(FakeModel(config.model, weights), history, Path(config.output_dir))

    def predict(self, model, data, batch_size=None):
        model.predict_calls.append(batch_size)
        return extract(data.object, data.coords_offsets[:, 0, :, 0], data.N)[..., None]

    def save_bundle(self, model, path):
        return Path(path)

    def load_bundle(self, path):
        raise NotImplementedError

    def export_weights(self, model):
        return dict(model.weights)

    def import_weights(self, model, weights):
        model.weights = dict(weights)
