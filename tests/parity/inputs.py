"""Shared, seeded parity inputs and the NumPy-side references (no deep-learning framework here).

Imported by the parent test process (``conftest.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import numpy as np

OPS_N = 24
OPS_B = 2
OPS_GRID = 2
OPS_SCALE = 5.0
FD_EPS = 1e-4
N_DIRECTIONS = 3


def _complex(rng, shape, lo=0.2, hi=1.0):
    amp = rng.uniform(lo, hi, shape)
    phase = rng.uniform(-np.pi, np.pi, shape)
    return (amp * np.exp(1j * phase)).astype(np.complex64)


def _probe(N: int) -> np.ndarray:
    yy, xx = np.mgrid[0:N, 0:N] - (N / 2 - 0.5)
    r2 = (xx**2 + yy**2) / (N / 4) ** 2
    return (np.exp(-r2) * np.exp(0.5j * r2)).astype(np.complex64)


def make_ops_inputs(seed: int = 1234) -> tuple[dict[str, np.ndarray], dict]:
    """Random float32/complex64 inputs for every operator (channels-last, METHOD.md §2)."""
    from ptychopinn.data import physics

    rng = np.random.default_rng(seed)
    N, B, C = OPS_N, OPS_B, OPS_GRID**2
    inp: dict[str, np.ndarray] = {}
    inp["tr_img_real"] = rng.normal(size=(3, 30, 26)).astype(np.float32)
    inp["tr_img_complex"] = _complex(rng, (3, 30, 26))
    inp["tr_shifts"] = np.array([[0.3, -1.7], [-2.25, 0.6], [3.0, 2.0]], np.float32)
    inp["tr_weights"] = rng.normal(size=(3, 30, 26)).astype(np.float32)
    inp["ex_canvas"] = _complex(rng, (40, 44))
    inp["ex_pos"] = np.array(
        [[20.0, 20.0], [13.4, 25.7], [30.5, 12.25], [5.2, 38.9], [40.1, 3.3]], np.float32
    )
    # grouped offsets: a 2x2 grid with ~6 px spacing plus sub-pixel jitter
    base = np.array([[0, 6, 0, 6], [0, 0, 6, 6]], np.float64)
    nn = base[None] + rng.uniform(-0.9, 0.9, (B, 2, C))
    rel = -(nn - nn.mean(axis=2, keepdims=True))
    inp["rel"] = rel[:, None].astype(np.float32)
    P = physics.merge_size(inp["rel"], N)
    amp = rng.uniform(0.2, 1.0, (B, N, N, C)).astype(np.float32)
    phase = rng.uniform(-1.0, 1.0, (B, N, N, C)).astype(np.float32)
    inp["amp"], inp["phase"] = amp, phase
    inp["obj"] = (amp * np.exp(1j * phase)).astype(np.complex64)
    inp["canvas"] = _complex(rng, (B, P, P, 1))
    inp["probe"] = _probe(N)
    inp["psi"] = _complex(rng, (B, N, N, C), 0.0, 2.0)
    pred = rng.uniform(0.0, 30.0, (B, N, N, C)).astype(np.float32)
    pred[0, :2, :2, 0] = 0.0  # exercises the λ ≥ 1e-12 clamp
    inp["nll_pred"] = pred
    inp["nll_target"] = physics.poisson_observe(pred * 1.1, rng).astype(np.float32)
    # a realistic target for the full training-path composite
    obj64 = amp.astype(np.float64) * np.exp(1j * phase.astype(np.float64))
    clean = OPS_SCALE * physics.diffract(
        physics.illuminate(
            physics.reextract(physics.merge(obj64, rel[:, None]), rel[:, None], N), inp["probe"]
        )
    )
    inp["chain_target"] = physics.poisson_observe(clean * 1.05, rng).astype(np.float32)
    inp["dir_amp"] = rng.normal(size=(N_DIRECTIONS, B, N, N, C)).astype(np.float32)
    inp["dir_phase"] = rng.normal(size=(N_DIRECTIONS, B, N, N, C)).astype(np.float32)
    settings = {"N": N, "P": int(P), "scale": OPS_SCALE}
    return inp, settings


def numpy_references(inp: dict[str, np.ndarray], settings: dict) -> dict[str, np.ndarray]:
    """NumPy reference outputs for the ops task, plus the gradient references.

    Gradients: Poisson NLL analytic; translate via its adjoint (translation by -d,
    exact for bilinear with zero fill); the training-path composite by float64
    central differences along fixed random directions (directional derivatives).
    """
    import runner

    ops = runner.NumpyOps()
    out = runner.task_ops(ops, inp, settings)
    p = ops.p
    pred = inp["nll_pred"].astype(np.float64)
    y = inp["nll_target"].astype(np.float64) ** 2
    lam = pred**2
    g = np.where(lam > 1e-12, (2 * pred - 2 * y / np.where(pred > 0, pred, 1)), 0.0) / pred.size
    out["grad_nll"] = g
    out["grad_translate"] = p.translate(inp["tr_weights"].astype(np.float64),
                                        -inp["tr_shifts"].astype(np.float64))  # fmt: skip
    amp = inp["amp"].astype(np.float64)
    phase = inp["phase"].astype(np.float64)
    rel = inp["rel"].astype(np.float64)
    probe = inp["probe"].astype(np.complex128)
    target = inp["chain_target"].astype(np.float64)
    for big in (True, False):
        tag = "big" if big else "small"

        def loss(a, ph, big=big):
            return ops.chain_loss(a, ph, rel, probe, target, settings["scale"], big)

        out[f"chain_loss_{tag}"] = np.float64(loss(amp, phase))
        dd = []
        for k in range(inp["dir_amp"].shape[0]):
            va = inp["dir_amp"][k].astype(np.float64)
            vp = inp["dir_phase"][k].astype(np.float64)
            hi = loss(amp + FD_EPS * va, phase + FD_EPS * vp)
            lo = loss(amp - FD_EPS * va, phase - FD_EPS * vp)
            dd.append((hi - lo) / (2 * FD_EPS))
        out[f"dirderiv_{tag}"] = np.asarray(dd)
    return out


def directional(inp: dict[str, np.ndarray], ga: np.ndarray, gp: np.ndarray) -> np.ndarray:
    """<grad, v> for each stored direction (float64)."""
    return np.array(
        [
            np.sum(ga.astype(np.float64) * inp["dir_amp"][k])
            + np.sum(gp.astype(np.float64) * inp["dir_phase"][k])
            for k in range(inp["dir_amp"].shape[0])
        ]
    )


# --------------------------------------------------------------------------- model task
MODEL_B = 2
MODEL_NPHOTONS = 1e6


def model_configs() -> list[dict]:
    """A covering set of the combinations the issue names (every value of every option,
    every (gridsize, object_big, probe_big) triple at N=64, each mode at both N)."""
    combos = [
        (64, g, ob, pb, "pinn") for g in (1, 2) for ob in (True, False) for pb in (True, False)
    ] + [
        (64, 2, True, True, "supervised"),
        (64, 1, False, False, "supervised"),
        (128, 2, True, True, "pinn"),
        (128, 1, False, True, "supervised"),
    ]
    grads = {(64, 2, True, True, "pinn"), (64, 1, True, True, "pinn"), (64, 2, True, False, "pinn"),
             (64, 2, True, True, "supervised")}  # fmt: skip
    cnn = [
        {"N": N, "gridsize": gs, "object_big": ob, "probe_big": pb, "model_type": mt,
         "n_filters_scale": 1, "id": f"N{N}_g{gs}_ob{int(ob)}_pb{int(pb)}_{mt}",
         "grads": (N, gs, ob, pb, mt) in grads}
        for N, gs, ob, pb, mt in combos
    ]  # fmt: skip
    # The residual trunk (architecture "resnet", two blocks), with and without probe_big.
    # Weight gradients are compared at g2/pb1 only: at g1/pb0 phase_head.bias's gradient
    # is a sum with heavy cancellation -- torch against itself (full batch vs the sum of
    # per-sample gradients, 4 samples) differs by 2.1e-2 there (2.4e-4 for the CNN's
    # N64_g1_ob1_pb1), so TF-vs-torch (1.5e-3) measures summation order, not the model.
    resnet = [
        {"N": 64, "gridsize": gs, "object_big": True, "probe_big": pb, "model_type": "pinn",
         "n_filters_scale": 1, "architecture": "resnet", "res_blocks": 2,
         "id": f"N64_g{gs}_ob1_pb{int(pb)}_pinn_resnet", "grads": gs == 2}
        for gs, pb in ((1, False), (2, True))
    ]  # fmt: skip
    return cnn + resnet


def grouped_data(N: int, gridsize: int, n_images: int = 16, seed: int = 1):
    """A small simulated, grouped dataset (grid scan with sub-pixel jitter: close neighbours)."""
    from ptychopinn.data.grouping import group
    from ptychopinn.data.simulation import simulate

    scan = simulate("lines", n_images=n_images, N=N, nphotons=MODEL_NPHOTONS, seed=seed,
                    scan="grid", jitter=0.3)  # fmt: skip
    return group(scan, gridsize=gridsize, seed=0, nphotons=MODEL_NPHOTONS)


def portable_weights(
    cfg: dict, s0: float, probe: np.ndarray, seed: int = 7
) -> dict[str, np.ndarray]:
    """Deterministic canonical weights (Glorot-uniform range, sine-hashed, RNG-version proof).

    Biases are small non-zero values and ``log_scale = log(s0) + 0.1`` so that the input
    scaling ``X·s0/s`` and the output scaling ``s·|F|`` are exercised, not cancelled.
    """
    from ptychopinn.config import ModelConfig, layer_plan

    plan = layer_plan(
        ModelConfig(**{k: v for k, v in cfg.items() if k not in ("id", "data", "grads")})
    )
    weights: dict[str, np.ndarray] = {}
    for i, (name, shape) in enumerate(plan.parameter_shapes().items()):
        if name == "log_scale":
            weights[name] = np.float32(np.log(s0) + 0.1).reshape(())
        elif name == "probe":
            weights[name] = probe.astype(np.complex64)
        else:
            n = int(np.prod(shape))
            u = np.sin(np.arange(n, dtype=np.float64) * 12.9898 + (i + seed) * 78.233) * 43758.5453
            u = 2 * (u - np.floor(u)) - 1  # uniform-ish in [-1, 1)
            if name.endswith(".weight"):
                fan_in, fan_out = shape[1] * 9, shape[0] * 9
                weights[name] = (
                    (u * np.sqrt(6 / (fan_in + fan_out))).reshape(shape).astype(np.float32)
                )
            else:
                weights[name] = (0.01 * u).reshape(shape).astype(np.float32)
    return weights


GOLDEN_CONFIG = {"N": 64, "gridsize": 2, "object_big": True, "probe_big": True,
                 "model_type": "pinn", "n_filters_scale": 1, "id": "golden", "data": "golden"}  # fmt: skip
GOLDEN_DATA_KEYS = ("X", "rel", "probe", "s0")  # Y is unused by a pinn forward: zeros


def golden_model_data() -> dict[str, np.ndarray]:
    """Fresh inputs of the golden forward pass (one group, N=64, gridsize 2)."""
    g = grouped_data(64, 2).subset(np.arange(1))
    return {"X": g.X, "rel": g.coords_relative, "probe": g.probe,
            "s0": np.float64(g.intensity_scale)}  # fmt: skip


def make_model_inputs(indir, golden_data: dict, configs=None) -> tuple[dict[str, np.ndarray], dict]:
    """Return the ``model.npz`` arrays (data per N/gridsize + weights per config) and settings.

    ``golden_data`` (stored inputs of the golden forward pass) is added as data key "golden".
    """
    configs = [*(configs if configs is not None else model_configs()), GOLDEN_CONFIG]
    arrays: dict[str, np.ndarray] = {}
    scales = {"golden": float(golden_data["s0"])}
    for name in ("X", "rel", "probe"):
        arrays[f"golden/{name}"] = golden_data[name]
    arrays["golden/Y"] = np.zeros(golden_data["X"].shape, np.complex64)
    for N in sorted({c["N"] for c in configs}):
        for gs in sorted({c["gridsize"] for c in configs if c["N"] == N}):
            g = grouped_data(N, gs).subset(np.arange(MODEL_B))
            key = f"{N}_{gs}"
            arrays[f"{key}/X"] = g.X
            arrays[f"{key}/rel"] = g.coords_relative
            arrays[f"{key}/Y"] = g.Y
            arrays[f"{key}/probe"] = g.probe
            scales[key] = float(g.intensity_scale)
    for cfg in configs:
        key = cfg.get("data", f"{cfg['N']}_{cfg['gridsize']}")
        w = portable_weights(cfg, scales[key], arrays[f"{key}/probe"])
        for name, value in w.items():
            arrays[f"w/{cfg['id']}/{name}"] = value
    settings = {"configs": configs, "s0": scales}
    return arrays, settings


# --------------------------------------------------------------------------- training task
# The demo's recipe (src/ptychopinn/app/demo.py): within 3 epochs the network learns the
# object's coarse structure, so the stitched reconstructions are comparable; with
# gridsize 1 / 12 steps neither backend had learned anything and their SSIMs differed by
# Adam's sign-like first steps on near-zero gradients (0.007-0.043).
TRAIN_MODEL = {"N": 64, "gridsize": 2, "object_big": True, "probe_big": False,
               "model_type": "pinn", "n_filters_scale": 1}  # fmt: skip
TRAIN_SETTINGS = {"batch_size": 16, "nepochs": 3, "learning_rate": 1e-3, "seed": 0}


def make_train_inputs() -> tuple[dict[str, np.ndarray], dict]:
    """A 17x17 grid scan (step 8, amplitude-only lines), shared initial weights, settings."""
    from ptychopinn.data.grouping import group
    from ptychopinn.data.simulation import simulate

    scan = simulate("lines", n_images=289, N=TRAIN_MODEL["N"], nphotons=MODEL_NPHOTONS, seed=3,
                    scan="grid", step=8.0, phase=False)  # fmt: skip
    data = group(scan, gridsize=TRAIN_MODEL["gridsize"], seed=0, nphotons=MODEL_NPHOTONS)
    arrays = {}
    for name in ("X", "diffraction", "Y", "coords_nn", "coords_offsets", "coords_relative",
                 "nn_indices", "probe", "object"):  # fmt: skip
        value = getattr(data, name)
        if value is not None:
            arrays[f"data/{name}"] = np.asarray(value)
    w = portable_weights({**TRAIN_MODEL, "id": "init"}, data.intensity_scale, data.probe, seed=11)
    w["log_scale"] = np.float32(np.log(data.intensity_scale)).reshape(())
    arrays.update({f"w/init/{k}": v for k, v in w.items()})
    settings = {**TRAIN_SETTINGS, "model": TRAIN_MODEL, "norm_factor": float(data.norm_factor),
                "intensity_scale": float(data.intensity_scale)}  # fmt: skip
    return arrays, settings
