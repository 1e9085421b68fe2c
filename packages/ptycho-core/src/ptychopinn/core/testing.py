"""The conformance kit: one set of tests every :class:`~ptychopinn.core.Backend` passes.

In the style of tike's operator test mixin: a backend's test suite subclasses
:class:`BackendConformance` and says how to make its backend; pytest then runs every
``test_*`` method below against it. Both backends (``tests-ptycho-tf``,
``tests-ptycho-torch``) and the application's NumPy test backend (``tests/app``) run
it, so they agree on what the contract means, not only on its signatures::

    from ptychopinn.core.testing import BackendConformance

    class TestTorchConformance(BackendConformance):
        backend_class = TorchBackend

What is checked: the backend is a ``Backend``; ``train`` returns a ``TrainResult``
whose history follows :mod:`ptychopinn.core.history` (``train_loss`` and ``lr`` per
epoch, the ``train_<term>`` of :func:`~ptychopinn.core.history.loss_terms`, one
``test_loss``) and writes no bundle; ``predict`` gives (B, N, N, 1) complex64; each
bad input raises the contract's error type (``DataError``, ``ModelMismatchError``,
``BundleError``); ``import_weights`` is strict and atomic (a failed import leaves the
model unchanged); a bundle round-trips (weights and predictions); a bundle written
by another backend loads through ``portable.npz``, and one without it fails naming
both backends. Training runs once per test class (two epochs on 24 simulated
patterns, N=64, ``n_filters_scale=1``).

Imports no deep-learning framework (numpy, pytest and the light packages only):
install ``ptycho-core[testing]`` for pytest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ptychopinn.config import ExecutionConfig, ModelConfig, TrainingConfig, layer_plan
from ptychopinn.data import BundleError, GroupedData, group, read_bundle, simulate

from .bundle import build_manifest, package_versions, write_model_bundle
from .constants import BUNDLE_NAME
from .errors import DataError, ModelMismatchError
from .history import LR, TEST_LOSS, TRAIN_LOSS, check_history, history_key, loss_terms
from .protocol import Backend
from .results import TrainResult

__all__ = ["BackendConformance", "Trained", "conformance_data"]

_CONFIG_BACKENDS = ("tensorflow", "pytorch")


def conformance_data(gridsize: int = 1) -> GroupedData:
    """The kit's data: 24 simulated ``lines`` patterns (N=64, 1e6 photons, seed 3), grouped."""
    scan = simulate("lines", n_images=24, N=64, object_size=128, nphotons=1e6, seed=3)
    return group(scan, gridsize=gridsize, seed=0)


@dataclass(frozen=True)
class Trained:
    """One training run of the backend under test, shared by a test class."""

    backend: Backend
    data: GroupedData
    config: TrainingConfig
    result: TrainResult[Any]
    output_dir: Path


class BackendConformance:
    """Mixin of conformance tests; subclass it in a ``Test*`` class and set
    :attr:`backend_class` (and, if needed, override :meth:`execution_config`)."""

    #: The backend under test; each test makes a fresh instance with no arguments.
    backend_class: type[Backend]
    #: Epochs of the shared training run.
    nepochs = 2

    def make_backend(self) -> Backend:
        """The backend under test (a fresh instance of :attr:`backend_class`)."""
        return self.backend_class()

    def execution_config(self) -> ExecutionConfig:
        """A quiet single-process CPU execution (override for another device)."""
        return ExecutionConfig(
            accelerator="cpu", devices=1, enable_progress_bar=False, logger="none"
        )

    def training_config(self, backend: Backend, output_dir: Path) -> TrainingConfig:
        """A tiny training configuration (both MAE and NLL terms, a validation split)."""
        return TrainingConfig(
            model=ModelConfig(N=64, n_filters_scale=1),
            nepochs=self.nepochs,
            batch_size=8,
            validation_fraction=0.25,
            nll_weight=1.0,
            mae_weight=1.0,
            output_dir=output_dir,
            backend=backend.name if backend.name in _CONFIG_BACKENDS else "tensorflow",
            seed=0,
        )

    # ------------------------------------------------------------------ fixtures
    def run_training(self, output_dir: Path) -> Trained:
        """Train a fresh backend on :func:`conformance_data` into ``output_dir``."""
        backend = self.make_backend()
        data = conformance_data()
        config = self.training_config(backend, output_dir)
        result = backend.train(data, data, config, self.execution_config())
        return Trained(backend, data, config, result, output_dir)

    @pytest.fixture(scope="class")
    @classmethod
    def trained(cls, tmp_path_factory: pytest.TempPathFactory) -> Trained:
        """Train the backend once for the whole class."""
        return cls().run_training(tmp_path_factory.mktemp(f"conformance-{cls.__name__}"))

    def _fresh_model(self, trained: Trained) -> Any:
        """A second model of the same configuration: the trained one's bundle reloaded."""
        path = trained.output_dir / "fresh" / BUNDLE_NAME
        trained.backend.save_bundle(trained.result.model, path)
        return trained.backend.load_bundle(path)

    # ------------------------------------------------------------------ protocol
    def test_is_a_backend(self) -> None:
        backend = self.make_backend()
        assert isinstance(backend, Backend), f"{type(backend).__name__} is not a Backend"
        assert isinstance(backend.name, str) and backend.name

    def test_train_result_and_history_schema(self, trained: Trained) -> None:
        result = trained.result
        assert isinstance(result, TrainResult)
        assert Path(result.output_dir) == Path(trained.config.output_dir)
        history = check_history(result.history)  # every key in the schema
        n = self.nepochs
        assert len(history[TRAIN_LOSS]) == n, history
        assert len(history[LR]) == n, history
        terms = loss_terms(trained.config, has_truth=trained.data.Y is not None)
        assert terms == ("nll", "mae")
        for term in terms:
            assert len(history[history_key("train", term)]) == n, (term, history)
        assert len(history[TEST_LOSS]) == 1, history
        assert all(math.isfinite(v) for values in history.values() for v in values)
        assert not any(k.endswith(("_realspace_mae", "_tv")) for k in history), (
            "a term of weight 0 must be neither computed nor logged"
        )

    def test_train_does_not_write_the_bundle(self, trained: Trained) -> None:
        assert not list(Path(trained.output_dir).rglob(BUNDLE_NAME))

    def test_predict_shape_and_dtype(self, trained: Trained) -> None:
        patches = trained.backend.predict(trained.result.model, trained.data, 5)
        b, n = len(trained.data), trained.data.N
        assert patches.shape == (b, n, n, 1) and patches.dtype == np.complex64
        assert np.all(np.isfinite(patches))

    # ------------------------------------------------------------------ bad input
    def test_bad_inputs_raise_the_contract_errors(self, trained: Trained) -> None:
        backend, data, model = trained.backend, trained.data, trained.result.model
        config = trained.config
        with pytest.raises(DataError):
            backend.train([1, 2], None, config, self.execution_config())  # type: ignore[arg-type]
        with pytest.raises(ModelMismatchError):
            backend.train(data, None, config.replace(model=config.model.replace(gridsize=2)))
        bad = data.subset(np.arange(4))
        bad.X = bad.X.copy()
        bad.X[0, 0, 0, 0] = np.nan
        with pytest.raises(DataError):
            backend.predict(model, bad)
        with pytest.raises(ModelMismatchError):
            backend.predict(model, conformance_data(gridsize=2))

    def test_import_weights_is_strict(self, trained: Trained) -> None:
        backend, model = trained.backend, trained.result.model
        weights = backend.export_weights(model)
        assert set(weights) == set(layer_plan(trained.config.model).parameter_shapes())
        name = sorted(k for k in weights if k not in ("probe", "log_scale"))[0]
        missing = {k: v for k, v in weights.items() if k != name}
        with pytest.raises(ModelMismatchError):
            backend.import_weights(model, missing)
        with pytest.raises(ModelMismatchError):
            backend.import_weights(model, {**weights, name: np.zeros((3, 1), np.float32)})
        with pytest.raises(ModelMismatchError):
            backend.import_weights(model, {**weights, name: weights[name].astype(np.complex64)})

    def test_failed_import_leaves_the_model_unchanged(self, trained: Trained) -> None:
        backend = trained.backend
        model = self._fresh_model(trained)
        before = backend.export_weights(model)
        shifted = {k: v + 1 if k != "probe" else v * 2 for k, v in before.items()}
        last = list(layer_plan(trained.config.model).parameter_shapes())[-1]
        shifted[last] = np.full_like(shifted[last], np.nan)
        with pytest.raises(ModelMismatchError):
            backend.import_weights(model, shifted)
        after = backend.export_weights(model)
        for k, v in before.items():
            np.testing.assert_array_equal(after[k], v, err_msg=f"{k} changed by a failed import")
        # ... and a valid import does change it
        shifted[last] = before[last] + 1
        backend.import_weights(model, shifted)
        np.testing.assert_array_equal(backend.export_weights(model)[last], shifted[last])

    # ------------------------------------------------------------------ bundles
    def test_bundle_round_trip(self, trained: Trained) -> None:
        backend, model, data = trained.backend, trained.result.model, trained.data
        path = backend.save_bundle(model, trained.output_dir / "rt" / BUNDLE_NAME)
        manifest = read_bundle(path).manifest
        assert manifest["backend"] == backend.name
        assert manifest["N"] == data.N and manifest["gridsize"] == 1
        loaded = backend.load_bundle(path)
        want, got = backend.export_weights(model), backend.export_weights(loaded)
        assert set(want) == set(got)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        np.testing.assert_allclose(
            backend.predict(loaded, data), backend.predict(model, data), rtol=1e-5, atol=1e-6
        )

    def _foreign_bundle(self, trained: Trained, path: Path, with_portable: bool = True) -> Path:
        """A bundle as another backend would write it: its own native member, and
        ``portable.npz`` holding the trained weights plus one."""
        other = "pytorch" if trained.backend.name == "tensorflow" else "tensorflow"
        weights = trained.backend.export_weights(trained.result.model)
        weights = {k: (v + 1 if k != "probe" else v).astype(v.dtype) for k, v in weights.items()}
        manifest = build_manifest(
            backend=other,
            config=trained.config.replace(backend=other),
            intensity_scale=trained.data.intensity_scale,
            intensity_scale_trained=float(np.exp(weights["log_scale"])),
            norm_factor=trained.data.norm_factor,
            versions=package_versions({}),
        )
        if with_portable:
            return write_model_bundle(path, manifest, "weights.other", b"native", weights)
        from ptychopinn.data import write_bundle

        return write_bundle(path, manifest, {"weights.other": b"native"})

    def test_bundle_of_another_backend_loads_through_portable(self, trained: Trained) -> None:
        backend = trained.backend
        path = self._foreign_bundle(trained, trained.output_dir / "foreign" / BUNDLE_NAME)
        loaded = backend.load_bundle(path)
        want = {k: v for k, v in self._portable_of(path).items()}
        got = backend.export_weights(loaded)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)

    def test_foreign_bundle_without_portable_names_both(self, trained: Trained) -> None:
        path = self._foreign_bundle(trained, trained.output_dir / "bare" / BUNDLE_NAME, False)
        with pytest.raises(BundleError, match=r"portable\.npz") as info:
            trained.backend.load_bundle(path)
        assert "tensorflow" in str(info.value) and "pytorch" in str(info.value)

    def test_missing_bundle_is_file_not_found(self, trained: Trained) -> None:
        with pytest.raises(FileNotFoundError):
            trained.backend.load_bundle(trained.output_dir / "nowhere" / BUNDLE_NAME)

    @staticmethod
    def _portable_of(path: Path) -> dict[str, np.ndarray]:
        from ptychopinn.data import load_portable

        return load_portable(read_bundle(path).members["portable.npz"])
