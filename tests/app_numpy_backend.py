"""A NumPy backend (test code) implementing ``ptychopinn.core.Backend`` without any
deep-learning framework: the application's in-process tests use it, and it passes
the conformance kit (``tests/app/test_conformance.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import ptychopinn.config
from ptychopinn.core import Backend, TrainResult


@dataclass
class _Model:
    config: object
    weights: dict
    trained: bool = False
    calls: list = field(default_factory=list)
    intensity_scale: float = 1.0
    norm_factor: float = 1.0


class NumpyBackend(Backend):
    """Implements ``ptychopinn.core.Backend`` with NumPy and ptychopinn.data.bundle."""

    name = "numpy-test"
    NATIVE_MEMBER = "weights.npz"

    def __init__(self):
        self.trained_weights = None

    def _fresh(self, config):
        shapes = ptychopinn.config.layer_plan(config.model).parameter_shapes()
        rng = np.random.default_rng(0)
        out = {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}
        out["probe"] = out["probe"].astype(np.complex64)
        return out

    def train(self, train, test, config, execution=None, *, on_epoch_end=None):
        from ptychopinn.core import check_data
        from ptychopinn.core.history import history_key, loss_terms

        check_data(train, config.model, "train")
        if test is not None:
            check_data(test, config.model, "test")
        weights = self._fresh(config)
        weights["log_scale"] = np.asarray(np.log(train.intensity_scale), np.float32)
        self.trained_weights = weights
        losses = list(np.linspace(2.0, 1.0, config.nepochs))
        history = {"train_loss": losses, "val_loss": [v + 0.1 for v in losses]}
        history["lr"] = [config.learning_rate] * config.nepochs
        for term in loss_terms(config, has_truth=train.Y is not None):
            history[history_key("train", term)] = [v / 2 for v in losses]
        if test is not None:
            history["test_loss"] = [1.05]
        model = _Model(config, weights, True, [], train.intensity_scale, train.norm_factor)
        for epoch in range(config.nepochs):
            if on_epoch_end is not None and on_epoch_end(epoch, model):
                break
        return TrainResult(model, history, config.output_dir)

    def predict(self, model, data, batch_size=None):
        from ptychopinn.core import check_data

        check_data(data, model.config.model, "data")
        model.calls.append(batch_size)
        if model.trained:
            # The truth at each group's centre, where the application stitches it.
            from ptychopinn.data.physics import extract

            return extract(data.object, data.coords_offsets[:, 0, :, 0], data.N)[..., None]
        # Untrained: a noisy flat object (an exactly constant one trips ptycho-stitch's FRC).
        rng = np.random.default_rng(len(data))
        noise = rng.normal(scale=0.05, size=(len(data), data.N, data.N, 1))
        return ((0.5 + noise) * np.exp(1j * noise)).astype(np.complex64)

    def save_bundle(self, model, path):
        from ptychopinn.core.bundle import build_manifest, package_versions, write_model_bundle
        from ptychopinn.data import save_portable

        manifest = build_manifest(
            backend=self.name,
            config=model.config,
            intensity_scale=model.intensity_scale,
            intensity_scale_trained=float(np.exp(model.weights["log_scale"])),
            norm_factor=model.norm_factor,
            versions=package_versions({"numpy": np.__version__}),
        )
        native = save_portable(model.weights)
        return write_model_bundle(path, manifest, self.NATIVE_MEMBER, native, model.weights)

    def load_bundle(self, path):
        from ptychopinn.core.bundle import check_native_matches_portable, open_model_bundle
        from ptychopinn.data import load_portable

        loaded = open_model_bundle(path, backend=self.name, native_member=self.NATIVE_MEMBER)
        if loaded.native is not None:
            native = load_portable(loaded.native)
            check_native_matches_portable(native, loaded.portable, path, self.NATIVE_MEMBER)
        return _Model(
            loaded.config,
            loaded.portable,
            True,
            [],
            loaded.intensity_scale,
            loaded.norm_factor,
        )

    def export_weights(self, model):
        return dict(model.weights)

    def import_weights(self, model, weights):
        from ptychopinn.core.bundle import validate_portable

        shapes = ptychopinn.config.layer_plan(model.config.model).parameter_shapes()
        model.weights = validate_portable(weights, shapes, model="numpy-test")
        known = self.trained_weights or {}
        model.trained = all(np.array_equal(v, known.get(k)) for k, v in model.weights.items())
