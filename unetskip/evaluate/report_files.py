"""The files of an evaluation folder (summary.json, per_image.csv, confusion_matrix.csv and .png,
paired.csv) and the console summary; galleries are `unetskip.evaluate.gallery`'s."""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from unetskip.evaluate.paired import Difference

# Everything an evaluation writes into its folder, removed first by --overwrite.
OUTPUT_NAMES = (
    "summary.json",
    "per_image.csv",
    "paired.csv",
    "confusion_matrix.csv",
    "confusion_matrix.png",
    "worst.png",
    "gains.png",
    "losses.png",
    "index.html",
    "gallery",
)
CONSOLE_WORST = 5


def prepare_output(folder: Path, overwrite: bool) -> None:
    """Create `folder`, or with `overwrite` empty it of a previous evaluation's files.

    Raises:
        FileExistsError: `folder` exists and `overwrite` is False.
    """
    if folder.exists() and not overwrite:
        raise FileExistsError(f"the output folder {folder} exists: pass --overwrite or choose --output")
    for name in OUTPUT_NAMES:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def plain(value: Any) -> Any:
    """`value` with NaN floats as None (JSON has no NaN), recursively through dicts and lists."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def write_json(path: Path, content: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(plain(content), indent=2) + "\n")


def write_rows(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows of dicts (the first row's keys are the columns) as CSV; NaN written as `nan`."""
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_confusion(folder: Path, confmat: torch.Tensor, class_names: Sequence[str]) -> None:
    """confusion_matrix.csv (pixel counts, rows the true class) and confusion_matrix.png (each row
    divided by its sum: the share of the class's pixels predicted as each class)."""
    counts = confmat.cpu().numpy()
    with (folder / "confusion_matrix.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["true \\ predicted", *class_names])
        writer.writerows([name, *map(int, row)] for name, row in zip(class_names, counts, strict=True))
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    size = 1.2 + 0.9 * len(class_names)
    figure = Figure(figsize=(size + 1.2, size))
    axes = figure.add_subplot()
    shown = axes.imshow(shares, vmin=0, vmax=1, cmap="Blues")
    figure.colorbar(shown, ax=axes, label="share of the true class's pixels")
    ticks = range(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (row, column), share in np.ndenumerate(shares):
        axes.text(
            column, row, f"{share:.3f}", ha="center", va="center", color="white" if share > 0.5 else "black"
        )
    figure.tight_layout()
    figure.savefig(folder / "confusion_matrix.png", dpi=100)


def class_table(summary: Mapping[str, Mapping[str, float]], class_names: Sequence[str]) -> list[str]:
    """The per-class lines of the console: pooled and mean-over-images IoU and Dice."""
    pooled, per_image = summary["pooled"], summary["per_image"]
    width = max(len(name) for name in [*class_names, "macro"])
    lines = [f"{'class':<{width}}  pooled IoU  Dice   per-image IoU  Dice"]
    for name, key in [*((name, f"/{name}") for name in class_names), ("macro", "_macro")]:
        lines.append(
            f"{name:<{width}}  {pooled['iou' + key]:10.4f}  {pooled['dice' + key]:.4f}  "
            f"{per_image['iou' + key]:13.4f}  {per_image['dice' + key]:.4f}"
        )
    return lines


def effect_table(
    differences: Mapping[str, Mapping[str, Difference]], class_names: Sequence[str]
) -> list[str]:
    """The per-class lines of a paired comparison: pooled IoU of A and B and B - A with its interval."""
    width = max(len(name) for name in [*class_names, "macro", "pixel accuracy"])
    lines = [f"{'class':<{width}}  IoU A   IoU B   B - A [95% bootstrap]  (* excludes 0)"]
    rows = [*((name, f"iou/{name}") for name in class_names), ("macro", "iou_macro")]
    rows.append(("pixel accuracy", "pixel_accuracy"))
    for name, key in rows:
        difference = differences["pooled"][key]
        mark = " *" if difference.excludes_zero else ""
        lines.append(f"{name:<{width}}  {difference.a:.4f}  {difference.b:.4f}  {difference.text()}{mark}")
    return lines


def worst_lines(rows: Sequence[tuple[str, float]], sort_by: str) -> list[str]:
    """The console lines of the worst images: `0.123  path`."""
    return [f"worst {len(rows[:CONSOLE_WORST])} by {sort_by}:"] + [
        f"  {score:.4f}  {path}" for path, score in rows[:CONSOLE_WORST]
    ]
