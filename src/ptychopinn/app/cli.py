"""The ``ptychopinn`` command line: simulate → train → infer → evaluate, demo, info, convert.

Every subcommand is a thin layer over ``ptychopinn.app.pipeline`` (and ``demo``,
``conversion``); backends are reached only through ``ptychopinn.core.get_backend``.
Errors reach the user as one line on stderr with exit code 2 (bad usage or data) or 1
(the job failed); ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from .errors import EXIT_USAGE, InputError, exit_code_for, one_line
from .logs import LogSession, configure_logging, quiet_framework_environment

__all__ = ["build_parser", "main"]

PROG = "ptychopinn"
logger = logging.getLogger(__name__)
OBJECT_TYPES = ("lines", "grf", "points", "diagonals")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in the help (not the empty ones: None, False, []) and epilogs as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default == []:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line and exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        self.exit(EXIT_USAGE, f"{PROG}: error: {' '.join(message.split())}{hint}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be finite")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _fraction(text: str) -> float:
    value = _positive_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1")
    return value


def _devices(text: str) -> int | str | list[int]:
    """'auto', a device count, or a comma-separated list of device ids ('0,1')."""
    if text == "auto":
        return text
    try:
        if "," in text:
            return [int(t) for t in text.split(",") if t.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not 'auto', a device count or a list of ids like 0,1"
        ) from None


def _config_default(section: str, key: str) -> str:
    """'config <section>.<key>, default <value>' for an option that overrides a config field."""
    from ptychopinn.config import SECTIONS

    return f"config {section}.{key}; default {getattr(SECTIONS[section](), key)}"


EPILOGS = {
    "simulate": """examples:
  ptychopinn simulate -o sim --n-images 2000
  ptychopinn simulate -o sim --object grf --scan grid --probe-defocus 4 --nphotons 1e6
  ptychopinn simulate -o sim --probe my_probe.npy --test-fraction 0.2
writes data.npz (everything), train.npz, test.npz, object.png and report.md""",
    "train": """examples:
  ptychopinn train --train-data sim/train.npz --test-data sim/test.npz --nepochs 20 -o run
  ptychopinn train --config my.yaml --set training.batch_size=32 --backend pytorch
  ptychopinn train --train-data scan.h5 --accelerator gpu --precision bf16-mixed -o run
writes wts.h5.zip (the bundle), history.json, config.yaml, loss.png, report.md and
ptychopinn.log; without --backend it uses the only installed backend""",
    "infer": """examples:
  ptychopinn infer --model run/wts.h5.zip --data sim/test.npz -o recon
  ptychopinn infer --model run/wts.h5.zip --data scan.h5 --pixel-size-m 1e-8 --batch-size 256
writes recon.npz, reconstruction.png, product.h5 (ptychodus), report.md, and with a
true object in the data also comparison.png and metrics.json""",
    "evaluate": """examples:
  ptychopinn evaluate --recon recon/recon.npz --truth sim/data.npz
  ptychopinn evaluate --recon recon/recon.npz --truth truth.npy --no-register -o eval
writes metrics.json, evaluation.png, frc.png and report.md""",
    "demo": """examples:
  ptychopinn demo
  ptychopinn demo --backend pytorch -o demo-torch
  ptychopinn demo --nepochs 2 --n-images 200 -q
simulates, trains, reconstructs and evaluates; pictures/, metrics.json, report.md""",
    "info": """examples:
  ptychopinn info
  ptychopinn info --no-devices --json""",
    "ptychodus": """examples:
  ptychopinn ptychodus                                  # the GUI
  ptychopinn ptychodus -b train -i run -o run          # train from run/diffraction.h5 + product.h5
  ptychopinn ptychodus -b reconstruct -i run -o recon  # loads run/model.zip
every argument after 'ptychodus' is ptychodus's own (ptychopinn ptychodus -h).""",
    "convert": """examples:
  ptychopinn convert legacy.npz scan.h5 --pixel-size-m 1e-8
  ptychopinn convert scan.h5 scan.npz
  ptychopinn convert raw_counts.npz scan.h5 --measurement intensity
  ptychopinn convert sim/data.npz run --to ptychodus   # run/diffraction.h5 + run/product.h5""",
    "config": """examples:
  ptychopinn config show
  ptychopinn config show my.yaml --set model.N=128 --format json""",
}


def _config_option(
    parser: Any, section: str, key: str, what: str, *flags: str, **kwargs: Any
) -> None:
    """An option that overrides config field `section.key`; its help names the field."""
    parser.add_argument(*flags, help=f"{what} ({_config_default(section, key)})", **kwargs)


def _common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS lets -v/-q work before or after the subcommand name.
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="debug messages, other libraries' logs and tracebacks",
    )
    noise.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="only warnings, errors and the result lines; no progress bars",
    )


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML/JSON config file (ptycho-config layout)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value (repeatable), e.g. --set training.nepochs=5",
    )


def _add_backend_arg(parser: argparse.ArgumentParser, default_text: str) -> None:
    parser.add_argument("--backend", help=f"tensorflow or pytorch (default: {default_text})")


def _add_execution_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("execution")
    x = "execution"
    _config_option(group, x, "accelerator", "auto, cpu, gpu, cuda or mps", "--accelerator")
    _config_option(
        group, x, "devices", "'auto', a count, or ids like 0,1", "--devices", type=_devices
    )
    _config_option(group, x, "strategy", "auto, single_device, ddp, mirrored, ...", "--strategy")
    _config_option(group, x, "precision", "32, 64, 16-mixed or bf16-mixed", "--precision")
    _config_option(
        group, x, "num_workers", "data-loading worker processes", "--num-workers", type=int
    )
    _config_option(group, x, "logger", "csv, tensorboard, mlflow or none", "--logger")
    _config_option(
        group,
        x,
        "early_stop_patience",
        "epochs without improvement before stopping",
        "--early-stop-patience",
        type=int,
    )
    _config_option(
        group,
        x,
        "gradient_clip_val",
        "gradient clipping value",
        "--gradient-clip-val",
        type=_positive_float,
    )
    _config_option(
        group,
        x,
        "accumulate_grad_batches",
        "batches per optimiser step",
        "--accumulate-grad-batches",
        type=_positive_int,
    )
    _config_option(
        group,
        x,
        "deterministic",
        "deterministic kernels",
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=None,
    )
    _config_option(
        group,
        x,
        "jit_compile",
        "XLA (TensorFlow) / torch.compile (PyTorch)",
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=None,
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``ptychopinn`` command."""
    from ptychopinn.config.configs import STITCH_WEIGHTS

    parser = _Parser(
        prog=PROG,
        description="Physics-informed neural-network ptychography: "
        "simulate, train, infer, evaluate on TensorFlow or PyTorch.",
        epilog="Start with 'ptychopinn demo'. Each command has --help.",
    )
    parser.add_argument(
        "--version", action="store_true", help="print every installed ptycho* package and exit"
    )
    _common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # config
    p_config = sub.add_parser(
        "config", help="inspect configuration files", epilog=EPILOGS["config"]
    )
    _common(p_config)
    config_sub = p_config.add_subparsers(dest="config_command", metavar="ACTION")
    p_show = config_sub.add_parser(
        "show",
        help="print the resolved configuration (defaults < file < --set)",
        epilog=EPILOGS["config"],
    )
    _common(p_show)
    p_show.add_argument("file", type=Path, nargs="?", help="YAML/JSON config file")
    p_show.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one value (repeatable)",
    )
    p_show.add_argument("--format", choices=("yaml", "json"), default="yaml", help="output format")

    # simulate
    p_sim = sub.add_parser(
        "simulate",
        help="simulate a dataset; write NPZ with train/test split",
        epilog=EPILOGS["simulate"],
    )
    _common(p_sim)
    p_sim.add_argument(
        "-o", "--output-dir", type=Path, default=Path("simulated"), help="output folder"
    )
    p_sim.add_argument(
        "--object", choices=OBJECT_TYPES, default="lines", help="kind of simulated object"
    )
    p_sim.add_argument("--n-images", type=_positive_int, default=512, help="scan positions")
    p_sim.add_argument("-N", "--N", dest="N", type=int, default=64, help="pattern size 64/128/256")
    p_sim.add_argument(
        "--object-size",
        type=_positive_int,
        help="object side in pixels (default: what the scan covers)",
    )
    p_sim.add_argument("--nphotons", type=_positive_float, default=1e9, help="mean counts/pattern")
    p_sim_probe = p_sim.add_mutually_exclusive_group()
    p_sim_probe.add_argument(
        "--probe", type=Path, help="NPZ/NPY file with a probe (default: built in)"
    )
    p_sim_probe.add_argument(
        "--probe-defocus",
        type=_finite_float,
        default=0.0,
        help="curve the built-in probe's wavefront (pi*D rad at r=N/4; 0: flat disk, "
        "which leaves the conjugate-twin ambiguity; 4 is a structured probe)",
    )
    p_sim.add_argument(
        "--scan", choices=("random", "grid"), default="random", help="scan pattern of positions"
    )
    p_sim.add_argument("--seed", type=int, default=0, help="random seed (object, scan, noise)")
    p_sim.add_argument(
        "--test-fraction", type=_fraction, default=0.5, help="share of rows held out for testing"
    )

    # train
    p_train = sub.add_parser(
        "train",
        help="train a model; write the bundle, history and plots",
        epilog=EPILOGS["train"],
    )
    _common(p_train)
    p_train.add_argument("--train-data", type=Path, help="NPZ or ptychodus product")
    p_train.add_argument("--test-data", type=Path, help="optional held-out data")
    _add_config_args(p_train)
    _add_backend_arg(
        p_train, "the config's training.backend, else the only installed one; tensorflow if both"
    )
    _config_option(
        p_train, "training", "output_dir", "output folder", "-o", "--output-dir", type=Path
    )
    p_train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a previous run in the output folder (by default a folder holding a "
        "bundle, history or checkpoints is refused; one in use by a running training "
        "always is)",
    )
    t = "training"
    _config_option(
        p_train,
        t,
        "nepochs",
        "training epochs",
        "--nepochs",
        "--epochs",
        dest="nepochs",
        type=_positive_int,
    )
    _config_option(p_train, t, "batch_size", "groups per batch", "--batch-size", type=_positive_int)
    _config_option(
        p_train, t, "learning_rate", "optimiser step size", "--learning-rate", type=_positive_float
    )
    p_train.add_argument(
        "--n-groups",
        type=_positive_int,
        help="training groups (config training.n_groups; default: all)",
    )
    _config_option(
        p_train,
        "model",
        "gridsize",
        "patterns per group side, C = gridsize²",
        "--gridsize",
        type=_positive_int,
    )
    _config_option(
        p_train,
        "model",
        "n_filters_scale",
        "network width multiplier",
        "--n-filters-scale",
        type=_positive_int,
    )
    p_train.add_argument(
        "--nphotons",
        type=_positive_float,
        help="photons per pattern for the intensity scale (config training.nphotons; "
        "default: the data's recorded count, else 1e9)",
    )
    p_train.add_argument("--seed", type=int, help=f"random seed ({_config_default(t, 'seed')})")
    _add_execution_args(p_train)

    # infer
    p_infer = sub.add_parser(
        "infer", help="reconstruct with a trained bundle; stitch; export", epilog=EPILOGS["infer"]
    )
    _common(p_infer)
    p_infer.add_argument("--model", type=Path, required=True, help="bundle (wts.h5.zip)")
    p_infer.add_argument("--data", type=Path, required=True, help="NPZ or ptychodus product")
    _add_config_args(p_infer)
    _add_backend_arg(p_infer, "the bundle's, if installed; else the installed one")
    _config_option(
        p_infer, "inference", "output_dir", "output folder", "-o", "--output-dir", type=Path
    )
    p_infer.add_argument(
        "--n-groups",
        type=_positive_int,
        help="groups to reconstruct (config inference.n_groups; default: one per scan point)",
    )
    _config_option(
        p_infer,
        "inference",
        "stitch_crop",
        "central pixels kept per patch",
        "--stitch-crop",
        type=_positive_int,
    )
    _config_option(
        p_infer,
        "inference",
        "stitch_weight",
        "how overlapping patches are averaged: by the probe intensity or uniformly",
        "--stitch-weight",
        choices=STITCH_WEIGHTS,
    )
    _config_option(
        p_infer,
        "execution",
        "inference_batch_size",
        "inference batch size",
        "--batch-size",
        type=_positive_int,
    )
    p_infer.add_argument(
        "--pixel-size-m", type=_positive_float, help="object pixel size, for positions in metres"
    )
    p_infer.add_argument(
        "--allow-large-canvas",
        action="store_true",
        help="stitch even when the positions need a canvas above 8192 px per side "
        "(refused by default: such positions are usually in the wrong units)",
    )

    # evaluate
    p_eval = sub.add_parser(
        "evaluate",
        help="compare a reconstruction with the ground truth",
        epilog=EPILOGS["evaluate"],
    )
    _common(p_eval)
    p_eval.add_argument("--recon", type=Path, required=True, help="recon.npz written by infer")
    p_eval.add_argument("--truth", type=Path, required=True, help="NPZ with objectGuess, or .npy")
    p_eval.add_argument(
        "-o", "--output-dir", type=Path, help="output folder (default: the reconstruction's)"
    )
    p_eval.add_argument(
        "--no-register",
        dest="register",
        action="store_false",
        help="do not register the reconstruction to the truth (sub-pixel) before the metrics",
    )

    # demo
    p_demo = sub.add_parser(
        "demo",
        help="simulate, train briefly, infer, evaluate; print summary",
        epilog=EPILOGS["demo"],
    )
    _common(p_demo)
    _add_backend_arg(p_demo, "the only installed backend; tensorflow if both are")
    from .demo import DEMO_DEFAULTS

    p_demo.add_argument(
        "-o", "--output-dir", type=Path, default=Path("ptychopinn-demo"), help="output folder"
    )
    p_demo.add_argument(
        "--nepochs",
        "--epochs",
        dest="nepochs",
        type=_positive_int,
        help=f"training epochs (default: {DEMO_DEFAULTS['nepochs']})",
    )
    p_demo.add_argument(
        "--n-images",
        type=_positive_int,
        help=f"simulated scan positions (default: {DEMO_DEFAULTS['n_images']})",
    )
    p_demo.add_argument("--seed", type=int, default=0, help="random seed")

    # info
    p_info = sub.add_parser(
        "info", help="versions, installed backends, visible devices", epilog=EPILOGS["info"]
    )
    _common(p_info)
    p_info.add_argument(
        "--no-devices", action="store_true", help="skip the (slow) device query per backend"
    )
    p_info.add_argument("--json", action="store_true", help="machine-readable output")

    # convert
    p_conv = sub.add_parser(
        "convert",
        help="convert between NPZ, legacy NPZ and ptychodus products",
        epilog=EPILOGS["convert"],
    )
    _common(p_conv)
    p_conv.add_argument("input", type=Path, help="NPZ, legacy NPZ or ptychodus product (.h5)")
    p_conv.add_argument("output", type=Path, help="file to write (its suffix picks --to)")
    p_conv.add_argument(
        "--to",
        choices=("npz", "legacy-npz", "product", "diffraction", "ptychodus"),
        help="output format (default: diffraction for a file named diffraction.h5, product "
        "for other .h5/.hdf5, npz otherwise; ptychodus: a folder with diffraction.h5 + "
        "product.h5 for ptychodus -b)",
    )
    p_conv.add_argument(
        "--measurement",
        choices=("amplitude", "intensity"),
        default=None,
        help="what the input's diffraction holds, for files without a 'measurement' key "
        "(default: the file's key, else amplitude; contradicting the file's key is an error)",
    )
    p_conv.add_argument(
        "--pixel-size-m", type=_positive_float, help="object pixel size in metres (for products)"
    )

    # ptychodus: its own command line follows, untouched (see _run_ptychodus)
    p_pty = sub.add_parser(
        "ptychodus",
        help="start ptychodus (GUI or -b batch) with ptychopinn's reconstructors listed",
        epilog=EPILOGS["ptychodus"],
        add_help=False,
    )
    p_pty.add_argument(
        "ptychodus_args", nargs=argparse.REMAINDER, help="ptychodus's own arguments (-h: its help)"
    )
    return parser


# --- commands -----------------------------------------------------------------------


def _print_versions() -> int:
    from .environment import ptycho_distributions

    dists = ptycho_distributions()
    own = dists.pop("ptychopinn-app", "unknown")
    print(f"{PROG} {own}")
    for name, version in dists.items():
        print(f"  {name} {version}")
    return 0


def _config_show(args: argparse.Namespace) -> int:
    import tempfile

    from ptychopinn.config import load_config, save_config

    if args.file is not None and not args.file.exists():
        raise FileNotFoundError(2, "No such file", str(args.file))
    configs = load_config(args.file, args.overrides)
    # save_config writes exactly the layout load_config reads (YAML or JSON by suffix).
    with tempfile.TemporaryDirectory() as tmp:
        written = save_config(configs, Path(tmp) / f"resolved.{args.format}")
        print(written.read_text(encoding="utf-8"), end="")
    return 0


def _info(args: argparse.Namespace, logs: LogSession) -> int:
    import platform

    from ptychopinn.config import BackendNotInstalledError

    from .environment import backend_statuses, choose_backend, ptycho_distributions, query_devices

    report: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": ptycho_distributions(),
        "backends": {},
    }
    statuses = backend_statuses()
    devices: dict[str, Any] = {}
    if not args.no_devices:
        from concurrent.futures import ThreadPoolExecutor

        # One subprocess per backend (never two frameworks in one process), in parallel.
        names = [s.name for s in statuses if s.installed]
        with ThreadPoolExecutor(max_workers=max(len(names), 1)) as pool:
            devices = dict(zip(names, pool.map(query_devices, names)))
    for status in statuses:
        entry: dict[str, Any] = {
            "installed": status.installed,
            "distribution": status.distribution,
            "version": status.version,
        }
        if status.name in devices:
            entry["devices"] = devices[status.name]
        report["backends"][status.name] = entry
    try:
        choice = choose_backend()
        report["default_backend"] = {"name": choice.name, "reason": choice.reason}
    except BackendNotInstalledError as exc:
        report["default_backend"] = {"name": None, "reason": str(exc)}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"python {report['python']} on {report['platform']} ({report['cpus']} CPUs)")
    print("packages:")
    for name, version in report["packages"].items():
        print(f"  {name} {version}")
    print("backends:")
    for name, entry in report["backends"].items():
        if not entry["installed"]:
            extra = {"tensorflow": "tf", "pytorch": "torch"}.get(name)
            hint = f"pip install 'ptychopinn-app[{extra}]'" if extra else entry["distribution"]
            print(f"  {name}: not installed (install: {hint})")
            continue
        line = f"  {name}: {entry['distribution']} {entry['version']}"
        listed = entry.get("devices")
        if isinstance(listed, list):
            line += f"; devices: {', '.join(listed) or 'none'}"
        elif listed is not None:
            line += f"; cannot load: {listed}"
        print(line)
    default = report["default_backend"]
    if default["name"] is None:
        print(f"default backend: none ({default['reason']})")
    else:
        print(f"default backend: {default['name']} ({default['reason']})")
    return 0


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    mapping = {
        "training.nepochs": args.nepochs,
        "training.batch_size": args.batch_size,
        "training.learning_rate": args.learning_rate,
        "training.n_groups": args.n_groups,
        "training.nphotons": args.nphotons,
        "training.seed": args.seed,
        "model.gridsize": args.gridsize,
        "model.n_filters_scale": args.n_filters_scale,
        "execution.accelerator": args.accelerator,
        "execution.devices": args.devices,
        "execution.strategy": args.strategy,
        "execution.precision": args.precision,
        "execution.num_workers": args.num_workers,
        "execution.logger": args.logger,
        "execution.early_stop_patience": args.early_stop_patience,
        "execution.gradient_clip_val": args.gradient_clip_val,
        "execution.accumulate_grad_batches": args.accumulate_grad_batches,
        "execution.deterministic": args.deterministic,
        "execution.jit_compile": args.jit_compile,
        "training.backend": args.backend,
        "training.output_dir": str(args.output_dir) if args.output_dir else None,
    }
    if _quiet(args):
        mapping["execution.enable_progress_bar"] = False
    return {k: v for k, v in mapping.items() if v is not None}


def _train(args: argparse.Namespace, logs: LogSession) -> int:
    from ptychopinn.config import load_config, parse_overrides

    from . import pipeline

    overrides = _train_overrides(args)
    # --set comes last: it wins over the shortcut flags.
    for section, key, value in parse_overrides(args.overrides):
        overrides[f"{section}.{key}"] = value
    chosen = "training.backend" in overrides or _file_backend(args.config, "training") is not None
    configs = load_config(args.config, overrides)
    logs.log_to(configs["training"].output_dir)
    result = pipeline.train(
        configs,
        train_path=args.train_data,
        test_path=args.test_data,
        overwrite=args.overwrite,
        backend_chosen=chosen,
        on_backend=lambda backend: _route_framework_logs(backend, logs),
    )
    print(f"bundle: {result.bundle_path}")
    print(f"report: {result.report_path}")
    return 0


def _infer(args: argparse.Namespace, logs: LogSession) -> int:
    from . import pipeline

    logs.log_to(args.output_dir or _configured_output(args.config, args.overrides))
    result = pipeline.infer(
        bundle_path=args.model,
        data_path=args.data,
        output_dir=args.output_dir,
        backend=args.backend,
        config_path=args.config,
        overrides=args.overrides,
        n_groups=args.n_groups,
        stitch_crop=args.stitch_crop,
        stitch_weight=args.stitch_weight,
        batch_size=args.batch_size,
        pixel_size_m=args.pixel_size_m,
        allow_large_canvas=args.allow_large_canvas,
        progress=not _quiet(args) and sys.stderr.isatty(),
    )
    print(f"reconstruction: {result.recon_path}")
    print(f"product: {result.product_path}")
    print(f"report: {result.report_path}")
    return 0


def _evaluate(args: argparse.Namespace, logs: LogSession) -> int:
    from . import pipeline

    logs.log_to(args.output_dir or args.recon.parent)
    result = pipeline.evaluate_files(
        args.recon, args.truth, output_dir=args.output_dir, register=args.register
    )
    metrics = result.metrics
    for part in ("amplitude", "phase"):
        values = metrics.get(part, {})
        shown = ", ".join(
            f"{k} {values[k]:.4g}"
            for k in ("ssim", "psnr", "mae")
            if isinstance(values.get(k), float)
        )
        print(f"{part}: {shown}")
    shift = metrics.get("shift")
    if isinstance(shift, list) and len(shift) == 2:
        print(f"registration shift (dy, dx): {shift[0]:.2f}, {shift[1]:.2f} px")
    for note in ("registration_note", "phase_note"):
        if isinstance(metrics.get(note), str):
            print(f"note: {metrics[note]}")
    print(f"metrics: {result.metrics_path}")
    print(f"report: {result.report_path}")
    return 0


def _simulate(args: argparse.Namespace, logs: LogSession) -> int:
    from . import pipeline

    logs.log_to(args.output_dir)
    paths = pipeline.simulate_files(
        output_dir=args.output_dir,
        object_type=args.object,
        n_images=args.n_images,
        N=args.N,
        object_size=args.object_size,
        nphotons=args.nphotons,
        probe_path=args.probe,
        probe_defocus=args.probe_defocus,
        scan=args.scan,
        seed=args.seed,
        test_fraction=args.test_fraction,
    )
    for label, path in paths.items():
        print(f"{label}: {path}")
    return 0


def _demo(args: argparse.Namespace, logs: LogSession) -> int:
    from . import demo

    logs.log_to(args.output_dir)
    summary = demo.run_demo(
        backend=args.backend or _default_backend(args),
        on_backend=lambda backend: _route_framework_logs(backend, logs),
        output_dir=args.output_dir,
        nepochs=args.nepochs,
        n_images=args.n_images,
        seed=args.seed,
        quiet=_quiet(args),
    )
    print(demo.format_summary(summary))
    return 0


def _convert(args: argparse.Namespace, logs: LogSession) -> int:
    from . import conversion

    written = conversion.convert(
        args.input,
        args.output,
        to=args.to,
        measurement=args.measurement,
        pixel_size_m=args.pixel_size_m,
    )
    print(f"wrote {written}")
    return 0


def _file_backend(config_path: Path | None, section: str) -> str | None:
    """The ``backend`` a config file sets in `section`, or None when it sets none."""
    if config_path is None:
        return None
    import yaml  # JSON is YAML too; load_config has already validated this file

    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeError, yaml.YAMLError):
        return None  # load_config reports the problem with the file's name
    body = raw.get(section) if isinstance(raw, dict) else None
    value = body.get("backend") if isinstance(body, dict) else None
    return None if value is None else str(value)


def _default_backend(args: argparse.Namespace) -> str:
    """The installed backend to use when the command line and config name none (logged)."""
    from .environment import choose_backend

    choice = choose_backend()
    logger.info("backend: %s (%s)", choice.name, choice.reason)
    return choice.name


# Frameworks that attach their own console handler when imported (Lightning does, to its
# `lightning` logger, whatever the root logger has), by the backend module that uses them.
_FRAMEWORK_LOGGERS = {"ptychopinn.torch": ("lightning", "tensorflow")}


def _route_framework_logs(backend: Any, logs: LogSession) -> None:
    """Once the job has its backend: import the framework it is about to use, so that the
    framework's own console handler is routed through this command's logging."""
    import importlib
    import importlib.util

    module = type(backend).__module__
    for owner, (framework, incompatible) in _FRAMEWORK_LOGGERS.items():
        if not module.startswith(owner + "."):
            continue
        # Never two frameworks in one process (ARCHITECTURE.md): the job would fail anyway.
        if incompatible not in sys.modules and importlib.util.find_spec(framework) is not None:
            importlib.import_module(framework)
    logs.adopt_library_handlers()


def _quiet(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "quiet", False))


def _configured_output(config: Path | None, overrides: Sequence[str]) -> Path | None:
    """infer's output folder from the config when -o is not given (None if unreadable:
    the job itself then reports the config's problem)."""
    from ptychopinn.config import load_config

    try:
        return Path(load_config(config, list(overrides))["inference"].output_dir)
    except Exception:
        return None


COMMANDS = {
    "simulate": _simulate,
    "train": _train,
    "infer": _infer,
    "evaluate": _evaluate,
    "demo": _demo,
    "info": _info,
    "convert": _convert,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ptychopinn`` command; return the exit code (0, 1 failure, 2 bad usage/data)."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["ptychodus"]:
        return _run_ptychodus(words[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    if not verbose:
        # Keep TensorFlow's C++ start-up chatter out of the way of our own messages.
        quiet_framework_environment()
    verbosity = 1 if verbose else -1 if _quiet(args) else 0
    words = [PROG, *(str(a) for a in (argv if argv is not None else sys.argv[1:]))]
    header = f"{' '.join(words)}  (ptychopinn-app {_own_version()})"
    with configure_logging(verbosity, header=header) as logs:
        try:
            if args.version:
                return _print_versions()
            if args.command is None:
                parser.print_help()
                return EXIT_USAGE
            if args.command == "config":
                if args.config_command != "show":
                    raise InputError("use 'ptychopinn config show FILE'")
                return _config_show(args)
            return COMMANDS[args.command](args, logs)
        except KeyboardInterrupt:
            logs.record(logging.ERROR, "interrupted")
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:
            code = exit_code_for(exc)
            if verbose:
                traceback.print_exc()
            message = one_line(exc)
            if code != EXIT_USAGE and not verbose:
                message = f"{type(exc).__name__}: {message} (run with --verbose for the traceback)"
            logs.record(logging.ERROR, message, exc if code != EXIT_USAGE else None)
            print(f"{PROG}: error: {message}", file=sys.stderr)
            return code


def _run_ptychodus(arguments: Sequence[str]) -> int:
    """``ptychopinn ptychodus ...``: ptychodus's command line, ptychopinn registered.

    Dispatched before argparse: ptychodus's options (``-v`` is its --version, ``-s`` its
    settings file) must reach ptychodus unparsed.
    """
    import importlib.util

    if importlib.util.find_spec("ptychodus") is None:
        print(
            f"{PROG}: error: ptychodus is not installed; install it with "
            "'pip install 'ptychopinn-app[ptychodus]'' (or, in a clone, "
            "'uv sync --extra ptychodus')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from .ptychodus_launcher import main as launch

    return launch(arguments)


def _own_version() -> str:
    from . import __version__

    return __version__
