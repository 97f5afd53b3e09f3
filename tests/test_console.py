"""The console of fit, test and predict, as a user sees it (`python -m unetskip` in a subprocess): the run
folder, the W&B line, the progress bar and the results, without Lightning's tips and info lines, torch's
`_pytree` deprecation warning or a model summary with a FLOPs column of zeros."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from conftest import tiny_flags
from lightning.pytorch.utilities._pytree import _tree_flatten

from unetskip.cli.console import PYTREE_DEPRECATION

REPO = Path(__file__).resolve().parents[1]
# Lines that every run printed before the console policy (unetskip.cli.console).
NOISE = (
    "litlogger",  # Lightning's tip
    "LeafSpec",  # torch's FutureWarning from Lightning's _pytree.py, with the venv's path
    "FLOPs",  # the model summary
    "Seed set to",
    "GPU available",
    "`weights_only` was not set",
    "No seed found",  # test and predict, which have no seed_everything
    "tensorboardX",  # Lightning's default logger without TensorBoard installed
)


def run_unetskip(args: list[str], folder: Path) -> str:
    """`python -m unetskip ARGS` in a subprocess working in `folder`: its stdout and stderr together."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(torch.get_num_threads()))
    command = [sys.executable, "-m", "unetskip", *args]
    result = subprocess.run(command, env=env, cwd=folder, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    return output


@pytest.fixture(scope="module")
def fitted(pet_root, tmp_path_factory) -> tuple[Path, str, Path]:
    """One epoch of the default config: (tmp dir, console output, the run's last.ckpt)."""
    tmp_path = tmp_path_factory.mktemp("console")
    output = run_unetskip(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "unet.yaml"),
            *tiny_flags(pet_root),
            "--trainer.max_epochs",
            "1",
        ],
        tmp_path,
    )
    (last,) = (tmp_path / "runs").glob("unetskip/*/checkpoints/last.ckpt")
    return tmp_path, output, last


def assert_quiet(output: str) -> None:
    for noise in NOISE:
        assert noise not in output, f"{noise!r} printed:\n{output}"


def test_fit_shows_the_run_folder_the_wandb_line_and_progress_only(fitted):
    tmp_path, output, last = fitted
    assert_quiet(output)
    assert f"run folder: {last.parent.parent.relative_to(tmp_path)}\n" in output
    assert "wandb: this run is offline, in " in output
    assert "Epoch 0" in output  # the progress bar
    # A warning about the user's own settings still shows: 2 steps < log_every_n_steps 10.
    assert "smaller than the logging interval Trainer(log_every_n_steps=10)" in output


def test_test_and_predict_show_their_results(fitted, pet_root):
    tmp_path, _, last = fitted
    data = ["--data.root", str(pet_root), "--data.num_workers", "0"]
    tested = run_unetskip(["test", "--ckpt_path", str(last), *data], tmp_path)  # Lightning's default logger
    assert_quiet(tested)
    assert "test/dice_macro" in tested and "run folder: runs" in tested
    images = str(pet_root / "images")
    predict = ["predict", "--ckpt_path", str(last), "--trainer.logger", "false"]
    predicted = run_unetskip([*predict, "--input", images, "--output", "masks"], tmp_path)
    assert_quiet(predicted)
    assert "masks written to masks" in predicted


def test_lightning_still_raises_the_pytree_warning_that_the_console_filters():
    """When this fails, Lightning no longer builds torch's deprecated LeafSpec (Lightning-AI/pytorch-lightning
    #21326): remove the filter from unetskip.cli.console."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _tree_flatten({"a": [1, 2]})
    assert any(PYTREE_DEPRECATION in str(warning.message) for warning in caught)
