"""Predictions of the study's runs side by side (e.g. with and without long skips, on the same images)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.cli import instantiate_class
from matplotlib.figure import Figure

from unetskip.ablation.worker import RESULT_FILE
from unetskip.cli.lightning_cli import DEFAULT_DATA_CLASS
from unetskip.data.normalization import denormalize
from unetskip.runs.checkpoint_file import read_checkpoint
from unetskip.training.metrics import SegmentationScores
from unetskip.training.module import SegmentationModule

# Pairs of variants that differ in one switch, in the order a comparison prefers them.
PAIRS = (("long+short", "short"), ("long", "none"), ("short", "none"), ("long+short", "long"))


def finished_runs(results_dir: Path) -> dict[tuple[str, int, int], Path]:
    """(variant, blocks_per_stage, seed) -> run folder of every finished run (blocks 0 when unrecorded)."""
    finished = {}
    for result in sorted((results_dir / "runs").glob(f"*/{RESULT_FILE}")):
        record = json.loads(result.read_text())
        finished[record["variant"], record.get("blocks_per_stage") or 0, record["seed"]] = result.parent
    return finished


def pair_to_compare(results_dir: Path) -> tuple[str, str]:
    """The first of PAIRS whose two variants both have finished runs."""
    present = {variant for variant, _, _ in finished_runs(results_dir)}
    for pair in PAIRS:
        if set(pair) <= present:
            return pair
    raise FileNotFoundError(f"{results_dir} has no two finished variants that differ in one switch")


def runs_to_compare(results_dir: Path, variants: Sequence[str] = ("long+short", "short")) -> dict[str, Path]:
    """The run folders of `variants` at the largest depth and lowest seed at which all of them finished."""
    finished = finished_runs(results_dir)
    cells = sorted({(blocks, seed) for _, blocks, seed in finished}, key=lambda cell: (-cell[0], cell[1]))
    for blocks, seed in cells:
        if all((variant, blocks, seed) in finished for variant in variants):
            return {variant: finished[variant, blocks, seed] for variant in variants}
    raise FileNotFoundError(f"{results_dir} has no seed at which all of {list(variants)} finished")


def checkpoint_of(run_dir: Path) -> Path:
    """The checkpoint a finished run was tested with."""
    return run_dir / json.loads((run_dir / RESULT_FILE).read_text())["checkpoint"]


def load_run_model(run_dir: Path) -> SegmentationModule:
    """The tested model of a finished run, on the CPU in eval mode."""
    return SegmentationModule.from_checkpoint(read_checkpoint(checkpoint_of(run_dir))).eval()


def example_batch(run_dir: Path, num_images: int, split: str = "test") -> dict[str, torch.Tensor]:
    """The first `num_images` samples of `split` ("val" or "test") as the run's data settings make them."""
    hparams = read_checkpoint(checkpoint_of(run_dir), mmap=True)
    settings = dict(hparams["datamodule_hyper_parameters"])
    settings.pop("_instantiator", None)
    class_path = settings.pop("_class_path", DEFAULT_DATA_CLASS)  # the run's DataModule
    settings |= {"num_workers": 0, "persistent_workers": False, "batch_size": num_images}
    datamodule = instantiate_class((), {"class_path": class_path, "init_args": settings})
    datamodule.setup("test" if split == "test" else "fit")
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    return next(iter(loader))


def pet_iou(pred: torch.Tensor, target: torch.Tensor, model: SegmentationModule) -> float:
    """The pet IoU of one image: pred and target (H, W) class indices of `model`'s classes."""
    scores = SegmentationScores(model.class_names, model.hparams["ignore_index"])
    scores.update(pred[None], target[None])
    return scores.compute()["pet_iou_per_image"].item()


def comparison_figure(run_dirs: Mapping[str, Path], num_images: int = 4, split: str = "test") -> Figure:
    """One row per image: the image, its target, then each run's prediction titled with its pet IoU.

    The images come from the first run's data settings; every run predicts the same ones.
    """
    batch = example_batch(next(iter(run_dirs.values())), num_images, split)
    models = {name: load_run_model(run_dir) for name, run_dir in run_dirs.items()}
    with torch.no_grad():
        predictions = {name: model(batch["image"]).argmax(dim=1) for name, model in models.items()}
    ignore_index = next(iter(models.values())).hparams["ignore_index"]
    images = denormalize(batch["image"])  # (N, H, W, 3) uint8
    count = len(images)
    figure = Figure(figsize=(2.2 * (2 + len(run_dirs)), 2.2 * count))
    axes = figure.subplots(count, 2 + len(run_dirs), squeeze=False)
    for row in range(count):
        target = batch["mask"][row]
        shown = np.where(target.numpy() == ignore_index, 0.5, (target.numpy() > 0).astype(float))
        cells = [(images[row], batch["name"][row]), (shown, "target")]
        for name, pred in predictions.items():
            iou = pet_iou(pred[row], target, models[name])
            cells.append(((pred[row] > 0).numpy().astype(float), f"{name}: IoU {iou:.2f}"))
        for axis, (picture, title) in zip(axes[row], cells, strict=True):
            axis.imshow(picture, cmap="gray", vmin=0, vmax=1)
            axis.set_title(title, fontsize="small")
            axis.set_axis_off()
    figure.tight_layout()
    return figure
