"""A NumPy backend (test code) implementing ``ptychopinn.core.Backend``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptychopinn.config import ModelConfig, layer_plan
from ptychopinn.core import Backend, TrainResult, check_data
from ptychopinn.core.bundle import BundleFormat, package_versions, validate_portable
from ptychopinn.core.history import history_key, loss_terms, record_epoch
from ptychopinn.data import load_portable, save_portable
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


# --- a NumPy backend that keeps the whole contract (the conformance kit's self-test) ---


@dataclass
class KitModel:
    config: object  # TrainingConfig
    s0: float
    norm_factor: float
    weights: dict = field(default_factory=dict)


def _fresh_weights(config) -> dict:
    rng = np.random.default_rng(config.seed)
    shapes = layer_plan(config.model).parameter_shapes()
    out = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
    out["probe"] = out["probe"].astype(np.complex64)
    return out


class _KitBundle(BundleFormat[KitModel]):
    backend = "numpy-kit"
    native_member = "weights.native.npz"

    def versions(self):
        return package_versions({"numpy": np.__version__})

    def manifest_values(self, model):
        return model.config, model.s0, model.norm_factor

    def native_bytes(self, model):
        return save_portable(model.weights)

    def build(self, loaded):
        return KitModel(
            loaded.config, loaded.intensity_scale, loaded.norm_factor, _fresh_weights(loaded.config)
        )

    def load_native(self, model, data, path):
        model.weights = load_portable(data)

    def export_weights(self, model):
        return {k: v.copy() for k, v in model.weights.items()}

    def import_weights(self, model, weights):
        shapes = layer_plan(model.config.model).parameter_shapes()
        model.weights = {
            k: v.copy() for k, v in validate_portable(weights, shapes, model="kit").items()
        }


class KitBackend(Backend):
    """A NumPy backend: its "network" returns |X|·exp(i·0) scaled by the first bias."""

    name = "numpy-kit"
    _bundle = _KitBundle()

    def train(self, train, test, config, execution=None, *, on_epoch_end=None):
        check_data(train, config.model, "train")
        if test is not None:
            check_data(test, config.model, "test")
        weights = _fresh_weights(config)
        weights["log_scale"] = np.asarray(np.log(train.intensity_scale), np.float32)
        model = KitModel(config, train.intensity_scale, train.norm_factor, weights)
        history: dict = {}
        for epoch in range(config.nepochs):
            values = {"train_loss": 1.0 / (epoch + 1), "lr": config.learning_rate}
            for term in loss_terms(config, has_truth=train.Y is not None):
                values[history_key("train", term)] = 0.5 / (epoch + 1)
            record_epoch(history, values)
            if on_epoch_end is not None and on_epoch_end(epoch, model):
                break
        if test is not None:
            record_epoch(history, {"test_loss": 0.4})
        return TrainResult(model, history, Path(config.output_dir))

    def predict(self, model, data, batch_size=None):
        check_data(data, model.config.model, "data")
        scale = 1.0 + float(np.ravel(next(iter(model.weights.values())))[0])
        return (data.X[..., :1] * scale).astype(np.complex64)

    def save_bundle(self, model, path):
        return self._bundle.save(model, path)

    def load_bundle(self, path):
        return self._bundle.load(path)

    def export_weights(self, model):
        return self._bundle.export_weights(model)

    def import_weights(self, model, weights):
        self._bundle.import_weights(model, weights)
