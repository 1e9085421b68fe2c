"""--help (defaults, a help line for every option, examples), simulate's report.md, and a
colourbar on every image panel of the pictures."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from ptychopinn.app import reports
from ptychopinn.app.cli import build_parser


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in _subcommands(sub).items()})
    return found


COMMANDS = _subcommands(build_parser())


def test_every_command_is_covered():
    assert set(COMMANDS) >= {"simulate", "train", "infer", "evaluate", "demo", "info", "convert"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_and_every_command_an_example(name):
    sub = COMMANDS[name]
    for action in sub._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        assert action.help and action.help.strip(), (name, action.option_strings or action.dest)
    assert sub.epilog and f"ptychopinn {name.split()[0]}" in sub.epilog, name
    text = sub.format_help()
    assert "examples:" in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_help_shows_defaults():
    simulate = COMMANDS["simulate"].format_help()
    assert "scan positions (default: 512)" in simulate
    assert "(default: simulated)" in simulate
    train = " ".join(COMMANDS["train"].format_help().split())
    assert "training epochs (config training.nepochs; default 50)" in train
    assert "(config model.gridsize; default 1)" in train
    assert "the only installed one; tensorflow if both" in train


def test_simulate_writes_a_report(tmp_path):
    from ptychopinn.app.pipeline import simulate_files

    paths = simulate_files(tmp_path / "sim", n_images=20, N=64, object_size=128, seed=2)
    report = paths["report"].read_text()
    assert report.startswith("# ptychopinn simulation")
    assert "lines, 128x128 px" in report and "20 positions" in report
    assert "](object.png)" in report
    assert "train.npz" in report and "test.npz" in report


def test_every_image_panel_has_a_colourbar(tmp_path, monkeypatch):
    figures = []
    real_save = reports._save

    def keep(fig, path):
        figures.append(fig)
        return real_save(fig, path)

    monkeypatch.setattr(reports, "_save", keep)
    rng = np.random.default_rng(0)
    image = (rng.random((32, 32)) * np.exp(1j * rng.random((32, 32)))).astype(np.complex64)
    reports.save_image_figure(tmp_path / "a.png", image)
    reports.save_reconstruction_figure(tmp_path / "b.png", image, image * 0.9)
    reports.save_comparison_figure(
        tmp_path / "c.png", {"untrained": image, "trained": image, "truth": image}
    )
    assert len(figures) == 3
    for fig in figures:
        panels = [ax for ax in fig.axes if ax.images]
        assert panels
        for ax in panels:
            assert ax.images[0].colorbar is not None, ax.get_title()
    assert len([ax for ax in figures[2].axes if ax.images]) == 6
