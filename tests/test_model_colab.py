"""The Colab notebook is valid and runs the project's own train and export commands with flags they accept."""

from __future__ import annotations

import shlex

import nbformat

from model.train import parse_args
from robojam_format.layout import REPO_ROOT

NOTEBOOK = REPO_ROOT / "model" / "colab_train.ipynb"


def _shell_commands(nb) -> list[list[str]]:
    lines = [line for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines()]
    return [shlex.split(line[1:]) for line in lines if line.startswith("!python -m model.")]


def test_notebook_is_valid_nbformat_and_asks_for_a_gpu():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["accelerator"] == "GPU"


def test_notebook_trains_then_exports_with_the_cli():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    commands = _shell_commands(nb)
    modules = [c[2] for c in commands]
    assert modules == ["model.train", "model.export"]
    settings, out, download = parse_args(commands[0][3:])  # the flags are ones the CLI accepts
    assert (settings.units, settings.layers, settings.mixtures) == (512, 2, 5)
    assert download is True
    export = commands[1]
    assert export[3] == str(out / "best.keras")
    assert export[export.index("--out") + 1].endswith(".npz")
    install = [c.source for c in nb.cells if "pip install" in c.source]
    assert install and ".[train-gpu]" in install[0]
