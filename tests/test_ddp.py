"""Lightning's DDP on a CPU (gloo, 2 processes): what one process computes and writes, two do the same.

The split sizes are odd on purpose: 5 validation images over 2 processes (3 + 2, so one process has an
extra batch), and the 18 inputs of test_prediction's photo folder to predict (3 of them broken). Padding
with repeated images would change the metrics and write a mask twice.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import make_pet_folder
from test_cli import tiny_args
from test_prediction import BROKEN_IMAGES, GOOD_IMAGES, MASK_NAMES, make_photo_folder, snapshot

from unetskip.cli.lightning_cli import cli_main

REPO = Path(__file__).resolve().parents[1]
DDP_CPU = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


def torchrun(args: list[str], cwd: Path) -> str:
    """`torchrun --standalone --nproc_per_node 2 -m unetskip ARGS`, the documented multi-process command.

    Returns its standard output."""
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = subprocess.run(
        [*command, "-m", "unetskip", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


@pytest.fixture(scope="module")
def ddp_fit(tmp_path_factory):
    """3 epochs of 8 images, one image per batch, trained by 2 processes; returns (data folder, run folder).

    One image per batch because the loss (its Dice part) depends on how images are grouped into batches;
    enough steps at a high learning rate that the model predicts both classes, so that the metrics
    compared below are not those of a constant prediction.
    """
    tmp_path = tmp_path_factory.mktemp("ddp")
    root = make_pet_folder(tmp_path / "oxford-iiit-pet", num_trainval=13, num_test=5)
    torchrun(
        ["fit", *tiny_args(root, tmp_path), *DDP_CPU, "--data.val_fraction", "0.4", "--data.batch_size", "1"]
        + ["--trainer.max_epochs", "3", "--model.optimizer.init_args.lr", "0.02"]
        + ["--trainer.logger", "CSVLogger", "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")]
        + ["--trainer.logger.init_args.name", "unet"],
        cwd=tmp_path,
    )
    return root, tmp_path / "runs" / "unet"


def test_ddp_fit_writes_logs_and_checkpoints_once(ddp_fit):
    _, runs = ddp_fit
    assert [v.name for v in runs.iterdir()] == ["version_0"]  # rank 1 made no run folder of its own
    run = runs / "version_0"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(ckpts) == 2 and "last.ckpt" in ckpts  # best and last, each written once
    assert (run / "config.yaml").is_file() and (run / "metrics.csv").is_file()


def test_two_process_validation_equals_one_process(ddp_fit, tmp_path):
    _, runs = ddp_fit
    with open(runs / "version_0" / "metrics.csv") as file:
        rows = [row for row in csv.DictReader(file) if row["val/dice_macro"]]
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2]
    got = {k: float(v) for k, v in rows[-1].items() if k.startswith("val/")}  # after the last epoch

    # The same checkpoint evaluated by one process (its data settings, one image per batch, come with it).
    single = cli_main(
        ["validate", "--ckpt_path", str(runs / "version_0" / "checkpoints" / "last.ckpt")]
        + ["--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]
        + ["--trainer.default_root_dir", str(tmp_path)]
    )
    expected = {k: v.item() for k, v in single.trainer.callback_metrics.items() if k.startswith("val/")}
    assert len(single.datamodule.datasets["val"]) == 5 and single.datamodule.batch_size == 1
    assert 0 < expected["val/iou/background"] < 1 and 0 < expected["val/iou/pet"] < 1
    assert set(got) == set(expected) and "val/pet_iou_per_image" in got
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_two_process_predict_writes_what_one_process_writes(ddp_fit, tmp_path):
    """Every mask written once, by one of the two processes, as one process writes it; one manifest."""
    _, runs = ddp_fit
    ckpt = runs / "version_0" / "checkpoints" / "last.ckpt"
    photos = make_photo_folder(tmp_path / "photos")
    single, double = tmp_path / "single", tmp_path / "double"
    cli_main(["predict", "--ckpt_path", str(ckpt), "--input", str(photos), "--output", str(single)])
    stdout = torchrun(
        ["predict", "--ckpt_path", str(ckpt), "--input", str(photos), "--output", str(double), *DDP_CPU],
        cwd=tmp_path,
    )

    expected, got = snapshot(single), snapshot(double)
    assert set(got) == set(expected)  # no per-process manifest left behind
    assert {name for name in got if name.endswith(".png")} == set(MASK_NAMES.values())
    for name in expected.keys() - {"config.yaml"}:
        assert got[name] == expected[name], name  # the masks and the manifest, byte for byte
    assert stdout.count("predict: ") == 1  # rank 0 prints the summary of both processes
    summary = f"predict: {len(GOOD_IMAGES)} masks written to {double}, {len(BROKEN_IMAGES)} inputs skipped"
    assert summary in stdout
