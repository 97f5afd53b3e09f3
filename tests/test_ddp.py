"""Lightning's DDP on a CPU (gloo, 2 processes): what one process computes and writes, two do the same.

The split sizes are odd on purpose: 5 validation images over 2 processes (3 + 2, so one process has an
extra batch) and 5 test images to predict. Padding with repeated images would change the metrics and
write a mask twice.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import make_pet_folder
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from test_cli import tiny_args

from unetskip.cli import cli_main
from unetskip.data import OxfordPetDataModule
from unetskip.models import UNet
from unetskip.segmentation_module import SegmentationModule

REPO = Path(__file__).resolve().parents[1]
DDP_CPU = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


def torchrun(args: list[str], cwd: Path) -> None:
    """`torchrun --standalone --nproc_per_node 2 -m unetskip ARGS`, the documented multi-process command."""
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


class MaskWriter(BasePredictionWriter):
    """A minimal predict-to-folder writer: each process writes the masks of its own batches only.

    Files are opened with "x", so writing any mask a second time raises.
    """

    def __init__(self, out_dir: Path) -> None:
        super().__init__(write_interval="batch")
        self.out_dir = out_dir

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx
    ):
        for name, probs in zip(batch["name"], prediction, strict=True):
            with open(self.out_dir / f"{name}.png", "xb") as file:
                Image.fromarray(probs.argmax(0).byte().numpy()).save(file, format="PNG")
            (self.out_dir / f"{name}.rank{trainer.global_rank}").touch()


def test_two_process_predict_writes_every_mask_once(ddp_fit, tmp_path):
    root, _ = ddp_fit
    datamodule = OxfordPetDataModule(root=str(root), image_size=32, batch_size=2, num_workers=0)
    datamodule.setup("test")
    names = {sample.name for sample in datamodule.datasets["test"].samples}
    assert len(names) == 5
    torch.manual_seed(0)
    module = SegmentationModule(UNet(base_channels=4, depth=2))
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_fork",  # forked from this process: no second start-up
        callbacks=[MaskWriter(tmp_path)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.predict(module, dataloaders=datamodule.test_dataloader(), return_predictions=False)
    assert {p.stem for p in tmp_path.glob("*.png")} == names
    by_rank = {rank: {p.name.split(".rank")[0] for p in tmp_path.glob(f"*.rank{rank}")} for rank in (0, 1)}
    assert by_rank[0] and by_rank[1] and not by_rank[0] & by_rank[1]  # both worked, on disjoint images
    assert all(Image.open(tmp_path / f"{name}.png").size == (32, 32) for name in names)
