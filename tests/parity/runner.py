"""Run one backend on the shared parity inputs and save its outputs as NPZ.

Usage (one process per backend; never import TensorFlow and torch together)::

    python tests/parity/runner.py --backend tensorflow|pytorch|numpy \
        --task ops[,model,train,bundle_save,bundle_load] --in DIR --out DIR

Each task reads ``DIR/<task>.npz`` (+ ``DIR/<task>.json`` for settings) written by the
parent test process and writes ``OUT/<task>.<backend>.npz``. ``numpy`` runs the
reference operators of ``ptychopinn.data.physics`` (ops only).

Deliberate-difference hook (for demonstrating that the parity tests can fail):
``PARITY_INJECT_BACKEND=<backend>`` + ``PARITY_INJECT_PROBE_SCALE=<factor>`` multiplies
the probe by ``factor`` inside that backend's ``illuminate`` (a monkeypatch applied in
this process only; no backend source is touched), i.e. a different probe normalisation.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
import traceback

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


# --------------------------------------------------------------------------- adapters
class Ops:
    """The physics operators of one backend behind one channels-last NumPy interface."""

    name = ""

    def translate(self, img, shifts): ...
    def extract(self, canvas, pos, N): ...
    def merge(self, patches, rel, probe_big, P): ...
    def reextract(self, canvas, rel, N): ...
    def illuminate(self, obj, probe, mask): ...
    def diffract(self, psi): ...
    def nll(self, pred, target): ...
    # gradients (real inputs only, so that complex-gradient conventions do not enter)
    def grad_nll(self, pred, target): ...
    def grad_translate(self, img, shifts, weights): ...
    def grad_chain(self, amp, phase, rel, probe, target, scale, probe_big): ...


def _inject_factor(backend: str) -> float:
    if os.environ.get("PARITY_INJECT_BACKEND") == backend:
        return float(os.environ.get("PARITY_INJECT_PROBE_SCALE", "1"))
    return 1.0


def _patch_illuminate(module, factor: float) -> None:
    if factor == 1.0:
        return
    original = module.illuminate

    def illuminate(obj, probe, *args, **kwargs):
        return original(obj, probe * factor, *args, **kwargs)

    module.illuminate = illuminate
    print(f"[runner] INJECTED probe scale x{factor} into {module.__name__}", file=sys.stderr)


class NumpyOps(Ops):
    name = "numpy"

    def __init__(self):
        from ptychopinn.data import physics

        _patch_illuminate(physics, _inject_factor("numpy"))
        self.p = physics

    def translate(self, img, shifts):
        return self.p.translate(img, shifts)

    def extract(self, canvas, pos, N):
        return self.p.extract(canvas, pos, N)

    def merge(self, patches, rel, probe_big, P):
        return self.p.merge(patches, rel, probe_big=probe_big, P=P)

    def reextract(self, canvas, rel, N):
        return self.p.reextract(canvas, rel, N)

    def illuminate(self, obj, probe, mask):
        return self.p.illuminate(obj, probe, mask=mask)

    def diffract(self, psi):
        return self.p.diffract(psi)

    def nll(self, pred, target):
        return np.float64(self.p.poisson_nll(pred, target))

    def chain_loss(self, amp, phase, rel, probe, target, scale, probe_big):
        """The training-path composite in float64 (reference for directional derivatives)."""
        p = self.p
        obj = amp * np.exp(1j * phase)
        canvas = p.merge(obj, rel, probe_big=probe_big)
        patches = p.reextract(canvas, rel, amp.shape[1])
        pred = scale * p.diffract(p.illuminate(patches, probe))
        return p.poisson_nll(pred, target)


class TFOps(Ops):
    name = "tensorflow"

    def __init__(self):
        import tensorflow as tf

        from ptychopinn.tf import physics

        _patch_illuminate(physics, _inject_factor("tensorflow"))
        self.tf, self.p = tf, physics

    def _t(self, x):
        return self.tf.convert_to_tensor(x)

    def translate(self, img, shifts):
        return self.p.translate(self._t(img), self._t(shifts)).numpy()

    def extract(self, canvas, pos, N):
        return self.p.extract(self._t(canvas), self._t(pos), N).numpy()

    def merge(self, patches, rel, probe_big, P):
        return self.p.merge(self._t(patches), self._t(rel), probe_big=probe_big, P=P).numpy()

    def reextract(self, canvas, rel, N):
        return self.p.reextract(self._t(canvas), self._t(rel), N).numpy()

    def illuminate(self, obj, probe, mask):
        return self.p.illuminate(self._t(obj), self._t(probe), mask=mask).numpy()

    def diffract(self, psi):
        return self.p.diffract(self._t(psi)).numpy()

    def nll(self, pred, target):
        return self.p.poisson_nll(self._t(pred), self._t(target)).numpy()

    def grad_nll(self, pred, target):
        tf = self.tf
        x = tf.Variable(pred)
        with tf.GradientTape() as tape:
            loss = self.p.poisson_nll(x, self._t(target))
        return tape.gradient(loss, x).numpy()

    def grad_translate(self, img, shifts, weights):
        tf = self.tf
        x = tf.Variable(img)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(self.p.translate(x, self._t(shifts)) * self._t(weights))
        return tape.gradient(loss, x).numpy()

    def grad_chain(self, amp, phase, rel, probe, target, scale, probe_big):
        tf = self.tf
        a, ph = tf.Variable(amp), tf.Variable(phase)
        n = amp.shape[1]
        with tf.GradientTape() as tape:
            obj = tf.complex(a * tf.cos(ph), a * tf.sin(ph))
            canvas = self.p.merge(obj, self._t(rel), probe_big=probe_big)
            patches = self.p.reextract(canvas, self._t(rel), n)
            pred = scale * self.p.diffract(self.p.illuminate(patches, self._t(probe)))
            loss = self.p.poisson_nll(pred, self._t(target))
        ga, gp = tape.gradient(loss, [a, ph])
        return float(loss.numpy()), ga.numpy(), gp.numpy()

    # ------------------------------------------------------------------ model
    def build(self, cfg: dict, s0: float, probe):
        from ptychopinn.tf.model import build_model

        return build_model(_model_config(cfg), probe, s0)

    def import_weights(self, model, weights):
        from ptychopinn.tf.weights import import_weights

        import_weights(model, weights)

    def export_weights(self, model):
        from ptychopinn.tf.weights import export_weights

        return export_weights(model)

    def model_forward(self, model, cfg: dict, X, rel, Y) -> dict:
        """Training path (object patches, predicted amplitude, the backend's own loss) + inference."""
        from ptychopinn.config import TrainingConfig
        from ptychopinn.tf.training import _Trainer

        tf = self.tf
        batch = {"input": tf.constant(X), "input_positions": tf.constant(rel), "Y": tf.constant(Y)}
        _, pred_amp, _, obj, _, _ = model.training_model([batch["input"], batch["input_positions"]])
        trainer = _Trainer(model, TrainingConfig(model=_model_config(cfg)))
        # The backend's own loss (a private method: TF exposes no public loss function).
        # Looked up on the class: an early version named it ``_losses``, which Keras'
        # ``Layer._losses`` list shadowed on instances.
        parts = getattr(type(trainer), "_loss_parts", None) or type(trainer).__dict__["_losses"]
        loss = parts(trainer, batch, training=False)["loss"]
        infer = model.diffraction_to_obj([batch["input"], batch["input_positions"]])
        return {"obj": obj.numpy(), "pred_amp": pred_amp.numpy(), "loss": np.float64(loss.numpy()),
                "infer": infer.numpy()}  # fmt: skip

    def model_grads_and_steps(self, model, cfg: dict, X, rel, Y, steps: int = 3) -> dict:
        """Gradients of the backend's own loss w.r.t. every canonical parameter, then the
        weights after ``steps`` steps of the optimiser train() builds (same batch each step)."""
        from ptychopinn.config import ExecutionConfig, TrainingConfig
        from ptychopinn.tf.training import _optimizer, _Trainer

        tf = self.tf
        config = TrainingConfig(model=_model_config(cfg))
        trainer = _Trainer(model, config)
        parts = getattr(type(trainer), "_loss_parts", None) or type(trainer).__dict__["_losses"]
        batch = {"input": tf.constant(X), "input_positions": tf.constant(rel), "Y": tf.constant(Y)}
        names, variables = [], []
        for spec in model.plan.conv_layers():
            layer = model.conv(spec.name)
            names += [f"{spec.name}.weight", f"{spec.name}.bias"]
            variables += [layer.kernel, layer.bias]
        names.append("log_scale")
        variables.append(model.scaler.log_scale)

        def canon(name, g):
            g = np.asarray(g)
            return np.transpose(g, (3, 2, 0, 1)) if name.endswith(".weight") else g

        out = {}
        opt = _optimizer(config, ExecutionConfig())
        for step in range(steps):
            with tf.GradientTape() as tape:
                loss = parts(trainer, batch, training=True)["loss"]
            grads = tape.gradient(loss, variables)
            if step == 0:
                out.update({f"grad/{n}": canon(n, g) for n, g in zip(names, grads)})
            opt.apply_gradients(zip(grads, variables))
        out.update({f"after/{k}": v for k, v in self.export_weights(model).items() if k != "probe"})
        return out

    # ------------------------------------------------------------------ training / bundles
    def patch_initial_weights(self, weights) -> None:
        """train() has no initial-weights option: wrap its model builder to import them."""
        import ptychopinn.tf.training as training

        original = training.build_model

        def build_model(*args, **kwargs):
            net = original(*args, **kwargs)
            self.import_weights(net, weights)
            return net

        training.build_model = build_model

    def train(self, data, config, execution):
        from ptychopinn.tf import train

        result = train(data, None, config, execution)
        return result.model, {k: list(v) for k, v in result.history.items()}

    def predict(self, model, data):
        from ptychopinn.tf import predict

        return predict(model, data)

    def save_bundle(self, model, path):
        from ptychopinn.tf import save_bundle

        return save_bundle(model, path)

    def load_bundle(self, path):
        from ptychopinn.tf import load_bundle

        return load_bundle(path)


class TorchOps(Ops):
    """torch physics is channels-first ((B, C, N, N), positions (B, 2, C)); adapt here."""

    name = "pytorch"

    def __init__(self):
        import torch

        from ptychopinn.torch import physics

        _patch_illuminate(physics, _inject_factor("pytorch"))
        torch.use_deterministic_algorithms(True)
        self.torch, self.p = torch, physics

    def _t(self, x):
        return self.torch.from_numpy(np.ascontiguousarray(x))

    @staticmethod
    def _cf(x):  # (B, N, N, C) -> (B, C, N, N)
        return x.permute(0, 3, 1, 2)

    @staticmethod
    def _cl(x):  # (B, C, N, N) -> (B, N, N, C)
        return x.permute(0, 2, 3, 1)

    def _rel(self, rel):  # (B, 1, 2, C) -> (B, 2, C)
        return self._t(rel)[:, 0]

    def translate(self, img, shifts):
        return self.p.translate(self._t(img), self._t(shifts)).numpy()

    def extract(self, canvas, pos, N):
        return self.p.extract(self._t(canvas), self._t(pos), N).numpy()

    def merge(self, patches, rel, probe_big, P):
        out = self.p.merge(self._cf(self._t(patches)), self._rel(rel), probe_big=probe_big, P=P)
        return self._cl(out).numpy()

    def reextract(self, canvas, rel, N):
        return self._cl(self.p.reextract(self._cf(self._t(canvas)), self._rel(rel), N)).numpy()

    def illuminate(self, obj, probe, mask):
        return self._cl(
            self.p.illuminate(self._cf(self._t(obj)), self._t(probe), mask=mask)
        ).numpy()

    def diffract(self, psi):
        return self._cl(self.p.diffract(self._cf(self._t(psi)))).numpy()

    def nll(self, pred, target):
        return self.p.poisson_nll(self._t(pred), self._t(target)).numpy()

    def grad_nll(self, pred, target):
        x = self._t(pred).requires_grad_(True)
        self.p.poisson_nll(x, self._t(target)).backward()
        return x.grad.numpy()

    def grad_translate(self, img, shifts, weights):
        x = self._t(img).requires_grad_(True)
        (self.p.translate(x, self._t(shifts)) * self._t(weights)).sum().backward()
        return x.grad.numpy()

    def grad_chain(self, amp, phase, rel, probe, target, scale, probe_big):
        torch = self.torch
        a = self._t(amp).requires_grad_(True)
        ph = self._t(phase).requires_grad_(True)
        r = self._rel(rel)
        n = amp.shape[1]
        obj = self._cf(torch.complex(a * torch.cos(ph), a * torch.sin(ph)))
        canvas = self.p.merge(obj, r, probe_big=probe_big)
        patches = self.p.reextract(canvas, r, n)
        pred = scale * self.p.diffract(self.p.illuminate(patches, self._t(probe)))
        loss = self.p.poisson_nll(self._cl(pred), self._t(target))
        loss.backward()
        return float(loss.detach()), a.grad.numpy(), ph.grad.numpy()

    # ------------------------------------------------------------------ model
    def build(self, cfg: dict, s0: float, probe):
        from ptychopinn.torch.model import PtychoPINN

        return PtychoPINN(_model_config(cfg), probe, s0)

    def import_weights(self, model, weights):
        from ptychopinn.torch.workflow import import_weights

        import_weights(model, weights)

    def export_weights(self, model):
        from ptychopinn.torch.workflow import export_weights

        return export_weights(model)

    def model_forward(self, model, cfg: dict, X, rel, Y) -> dict:
        """Training path (object patches, predicted amplitude, the backend's own loss) + inference."""
        from ptychopinn.config import TrainingConfig
        from ptychopinn.torch.training import compute_loss

        batch = {"x": self._cf(self._t(X)), "relative": self._rel(rel), "y": self._cf(self._t(Y))}
        with self.torch.no_grad():
            out = model(batch["x"], batch["relative"])
            loss = compute_loss(model, out, batch, TrainingConfig(model=_model_config(cfg)))["loss"]
            infer = model.diffraction_to_obj(batch["x"], batch["relative"])
        return {"obj": self._cl(out.obj).numpy(), "pred_amp": self._cl(out.pred_amp).numpy(),
                "loss": np.float64(loss.item()), "infer": self._cl(infer).numpy()}  # fmt: skip

    def model_grads_and_steps(self, model, cfg: dict, X, rel, Y, steps: int = 3) -> dict:
        """Gradients of the backend's own loss w.r.t. every canonical parameter, then the
        weights after ``steps`` steps of the optimiser train() builds (same batch each step)."""
        from ptychopinn.config import TrainingConfig
        from ptychopinn.torch.training import PtychoLightningModule, compute_loss

        config = TrainingConfig(model=_model_config(cfg))
        batch = {"x": self._cf(self._t(X)), "relative": self._rel(rel), "y": self._cf(self._t(Y))}
        holder = PtychoLightningModule.__new__(PtychoLightningModule)  # only for its optimiser
        torch = self.torch
        params = {k: v for k, v in model.canonical_parameters().items() if k != "probe"}
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad],
                               lr=config.learning_rate)  # fmt: skip
        del holder
        out = {}
        for step in range(steps):
            opt.zero_grad()
            loss = compute_loss(model, model(batch["x"], batch["relative"]), batch, config)["loss"]
            loss.backward()
            if step == 0:
                out.update({f"grad/{n}": p.grad.detach().numpy().copy() for n, p in params.items()})
            opt.step()
        out.update({f"after/{k}": v for k, v in self.export_weights(model).items() if k != "probe"})
        return out

    # ------------------------------------------------------------------ training / bundles
    def patch_initial_weights(self, weights) -> None:
        """train() has no initial-weights option: wrap the network class it instantiates."""
        import ptychopinn.torch.training as training

        base = training.PtychoPINN
        runner = self

        class WithInitialWeights(base):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                runner.import_weights(self, weights)

        training.PtychoPINN = WithInitialWeights

    def train(self, data, config, execution):
        from ptychopinn.torch import workflow

        result = workflow.train(data, None, config, execution)
        return result.model, {k: list(v) for k, v in result.history.items()}

    def predict(self, model, data):
        from ptychopinn.torch import workflow

        return workflow.predict(model, data)

    def save_bundle(self, model, path):
        from ptychopinn.torch import workflow

        return workflow.save_bundle(model, path)

    def load_bundle(self, path):
        from ptychopinn.torch import workflow

        return workflow.load_bundle(path)


# --------------------------------------------------------------------------- tasks
def _model_config(cfg: dict):
    from ptychopinn.config import ModelConfig

    return ModelConfig(**{k: v for k, v in cfg.items() if k not in ("id", "data", "grads")})


def _weights(inp: dict, cid: str) -> dict[str, np.ndarray]:
    prefix = f"w/{cid}/"
    return {k[len(prefix) :]: v for k, v in inp.items() if k.startswith(prefix)}


def task_model(ops: Ops, inp: dict, settings: dict, args=None) -> dict:
    """Every model config: build, import the shared portable weights, one forward pass.

    Also checks the import is faithful: export right after import must give the same arrays.
    """
    out: dict[str, np.ndarray] = {}
    errors = {}
    for cfg in settings["configs"]:
        cid, key = cfg["id"], cfg.get("data", f"{cfg['N']}_{cfg['gridsize']}")
        try:
            weights = _weights(inp, cid)
            model = ops.build(cfg, settings["s0"][key], inp[f"{key}/probe"])
            ops.import_weights(model, weights)
            back = ops.export_weights(model)
            out[f"{cid}/roundtrip"] = np.float64(
                max(float(np.max(np.abs(np.asarray(back[k]) - weights[k]))) for k in weights)
            )
            res = ops.model_forward(model, cfg, inp[f"{key}/X"], inp[f"{key}/rel"], inp[f"{key}/Y"])
            if cfg.get("grads"):
                res.update(ops.model_grads_and_steps(
                    model, cfg, inp[f"{key}/X"], inp[f"{key}/rel"], inp[f"{key}/Y"]))  # fmt: skip
            for name, value in res.items():
                out[f"{cid}/{name}"] = np.asarray(value)
        except Exception:
            errors[cid] = traceback.format_exc()
            print(errors[cid], file=sys.stderr)
    out["errors"] = np.asarray(json.dumps(errors))
    return out


def task_ops(ops: Ops, inp: dict, settings: dict, args=None) -> dict:
    """Every operator on the shared inputs, plus gradients (backends only)."""
    out: dict[str, np.ndarray] = {}
    out["translate_real"] = ops.translate(inp["tr_img_real"], inp["tr_shifts"])
    out["translate_complex"] = ops.translate(inp["tr_img_complex"], inp["tr_shifts"])
    out["extract"] = ops.extract(inp["ex_canvas"], inp["ex_pos"], int(settings["N"]))
    for big in (True, False):
        tag = "big" if big else "small"
        out[f"merge_{tag}"] = ops.merge(inp["obj"], inp["rel"], big, int(settings["P"]))
    out["reextract"] = ops.reextract(inp["canvas"], inp["rel"], int(settings["N"]))
    out["illuminate"] = ops.illuminate(inp["obj"], inp["probe"], False)
    out["illuminate_masked"] = ops.illuminate(inp["obj"], inp["probe"], True)
    out["diffract"] = ops.diffract(inp["psi"])
    out["nll"] = np.asarray(ops.nll(inp["nll_pred"], inp["nll_target"]), np.float64)
    if ops.name != "numpy":
        out["grad_nll"] = ops.grad_nll(inp["nll_pred"], inp["nll_target"])
        out["grad_translate"] = ops.grad_translate(
            inp["tr_img_real"], inp["tr_shifts"], inp["tr_weights"]
        )
        for big in (True, False):
            tag = "big" if big else "small"
            loss, ga, gp = ops.grad_chain(
                inp["amp"], inp["phase"], inp["rel"], inp["probe"], inp["chain_target"],
                float(settings["scale"]), big,
            )  # fmt: skip
            out[f"chain_loss_{tag}"] = np.asarray(loss, np.float64)
            out[f"grad_chain_amp_{tag}"] = ga
            out[f"grad_chain_phase_{tag}"] = gp
    return {k: np.asarray(v) for k, v in out.items()}


GROUPED_ARRAYS = ("X", "diffraction", "Y", "coords_nn", "coords_offsets", "coords_relative",
                  "nn_indices", "probe", "object")  # fmt: skip


def grouped_from(inp: dict, settings: dict, prefix: str = "data/"):
    """Rebuild the parent's GroupedData from its arrays (identical in both backends)."""
    from ptychopinn.data.grouping import GroupedData

    arrays = {k: inp[prefix + k] for k in GROUPED_ARRAYS if prefix + k in inp}
    return GroupedData(**arrays, norm_factor=float(settings["norm_factor"]),
                       intensity_scale=float(settings["intensity_scale"]))  # fmt: skip


def task_train(ops: Ops, inp: dict, settings: dict, args) -> dict:
    """Train 3 epochs from the shared initial weights; predict; save a bundle.

    Driven identically in both backends through the public options: no validation split
    (``validation_fraction=0``), no early stopping, no checkpoints, no logger, CPU, one
    device, deterministic, the same seed (so the same ``GroupedData.batch_order`` per epoch).
    The initial weights are injected by wrapping the model constructor (no public option).
    """
    from ptychopinn.config import ExecutionConfig, ModelConfig, TrainingConfig

    data = grouped_from(inp, settings)
    init = _weights(inp, "init")
    ops.patch_initial_weights(init)
    config = TrainingConfig(
        model=ModelConfig(**settings["model"]), batch_size=int(settings["batch_size"]),
        nepochs=int(settings["nepochs"]), learning_rate=float(settings["learning_rate"]),
        validation_fraction=0.0, seed=int(settings["seed"]),
        output_dir=args.outdir / f"train_{ops.name}", backend=ops.name,
    )  # fmt: skip
    execution = ExecutionConfig(
        accelerator="cpu", devices=1, logger="none", enable_progress_bar=False,
        enable_checkpointing=False, early_stop_patience=None, deterministic=True,
    )  # fmt: skip
    model, history = ops.train(data, config, execution)
    # One history schema (ptychopinn.core.history): the same key from both backends.
    out = {"loss": np.asarray(history["train_loss"], np.float64),
           "history": np.asarray(json.dumps(history))}  # fmt: skip
    out["pred"] = ops.predict(model, data)
    path = ops.save_bundle(model, args.outdir / f"bundle.{ops.name}.zip")
    out["bundle"] = np.asarray(str(path))
    out["pred_reloaded"] = ops.predict(ops.load_bundle(path), data)
    for name, value in ops.export_weights(model).items():
        out[f"final/{name}"] = np.asarray(value)
    return out


def task_bundle_load(ops: Ops, inp: dict, settings: dict, args) -> dict:
    """Load the OTHER backend's bundle with this backend's public load_bundle; predict."""
    other = "pytorch" if ops.name == "tensorflow" else "tensorflow"
    data = grouped_from(inp, settings)
    model = ops.load_bundle(args.outdir / f"bundle.{other}.zip")
    out = {"pred": ops.predict(model, data)}
    for name, value in ops.export_weights(model).items():
        out[f"weights/{name}"] = np.asarray(value)
    return out


TASKS = {"ops": task_ops, "model": task_model, "train": task_train, "bundle_load": task_bundle_load}
BACKENDS = {"numpy": NumpyOps, "tensorflow": TFOps, "pytorch": TorchOps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", required=True, choices=sorted(BACKENDS))
    parser.add_argument("--task", required=True, help="comma-separated: " + ",".join(TASKS))
    parser.add_argument("--in", dest="indir", required=True, type=pathlib.Path)
    parser.add_argument("--out", dest="outdir", required=True, type=pathlib.Path)
    args = parser.parse_args(argv)
    args.outdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ops = BACKENDS[args.backend]()
    timings = {"import": time.perf_counter() - t0}
    for task in args.task.split(","):
        t1 = time.perf_counter()
        source = "train" if task == "bundle_load" else task  # bundles reuse the train data
        with np.load(args.indir / f"{source}.npz", allow_pickle=False) as f:
            inp = dict(f)
        settings_file = args.indir / f"{source}.json"
        settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
        try:
            result = TASKS[task](ops, inp, settings, args)
        except Exception:  # a backend defect or missing API: report it, run the other tasks
            (args.outdir / f"{task}.{args.backend}.error.txt").write_text(traceback.format_exc())
            traceback.print_exc()
            continue
        np.savez(args.outdir / f"{task}.{args.backend}.npz", **result)
        timings[task] = time.perf_counter() - t1
    (args.outdir / f"timings.{args.backend}.json").write_text(json.dumps(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
