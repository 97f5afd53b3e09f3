"""A finished run of the study as a record: its `result.json` and `metrics.csv` read into the runs.csv row
and the curves the plots need."""

from __future__ import annotations

import csv
import json
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from unetskip.ablation.worker import RESULT_FILE

SCORES = ("dice_macro", "iou_macro", "pet_iou_pooled", "pet_iou_per_image", "pet_iou_border_band")
SELECT_BY = "val/dice_macro"
TRAIN_LOSS = "train/loss_epoch"

# The gradient norms logged during training: grad_norm/encoder_<i> and grad_norm/decoder_<i>, where
# stage 0 is the full-resolution one; Lightning appends `_step` when a key is also logged per epoch.
GRAD_NORM_KEY = re.compile(r"^grad_norm/(?P<stage>(?:encoder|decoder)_\d+)(?:_step)?$")


def read_metrics(path: Path) -> list[dict[str, float]]:
    """The rows of a CSVLogger `metrics.csv`, each keeping only the columns that have a value."""
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        return [
            {key: float(value) for key, value in row.items() if value not in ("", None)}
            for row in csv.DictReader(file)
        ]


def curve(rows: Sequence[dict[str, float]], key: str, x: str = "epoch") -> list[tuple[int, float]]:
    """(x, value) of every row that logged `key`, with `x` the row's `epoch` or `step`."""
    return [(int(row[x]), row[key]) for row in rows if key in row and x in row]


@dataclass
class RunRecord:
    """One finished run: its runs.csv row and the curves the plots need."""

    row: dict[str, object]
    val_dice: list[tuple[int, float]]  # (epoch, val/dice_macro)
    grad_norms: dict[str, list[tuple[int, float]]]  # stage ("encoder_0", ...) -> (step, norm)
    train_loss: list[tuple[int, float]]  # (epoch, train/loss_epoch)

    @property
    def variant(self) -> str:
        return str(self.row["variant"])

    @property
    def blocks_per_stage(self) -> int | None:
        """The run's depth; None for runs made before the depth axis (their result.json lacks it)."""
        value = self.row["blocks_per_stage"]
        return None if value is None else int(value)


def load_run(run_dir: Path) -> RunRecord:
    """A finished run folder as a RunRecord."""
    result = json.loads((run_dir / RESULT_FILE).read_text())
    rows = read_metrics(run_dir / "metrics.csv")
    val_rows = [row for row in rows if SELECT_BY in row]
    best = max(val_rows, key=lambda row: row[SELECT_BY], default={})
    throughput = [value for _, value in curve(rows, "train/img_per_sec")]
    train_loss = curve(rows, TRAIN_LOSS)
    record = {
        "variant": result["variant"],
        "skip_connections": result["skip_connections"],
        "residual": result["residual"],
        "seed": result["seed"],
        "blocks_per_stage": result.get("blocks_per_stage"),
        "conv_layers": result.get("conv_layers"),
        "threads": result.get("threads"),
        "epochs": result["epochs"],
        "params": result["params"],
        "best_epoch": int(best["epoch"]) if "epoch" in best else None,
        **{f"val_{score}": best.get(f"val/{score}") for score in SCORES},
        **{f"test_{score}": result["test"].get(f"test/{score}") for score in SCORES},
        "final_train_loss": train_loss[-1][1] if train_loss else None,
        "wall_time_s": result["wall_time_s"],
        # The median over epochs: the first epoch also pays for starting the loader workers.
        "img_per_sec": statistics.median(throughput) if throughput else None,
        "run_dir": run_dir.name,
    }
    grad_norms: dict[str, list[tuple[int, float]]] = {}
    for key in sorted({key for row in rows for key in row}):
        match = GRAD_NORM_KEY.match(key)
        if match:
            grad_norms.setdefault(match["stage"], []).extend(curve(rows, key, x="step"))
    return RunRecord(record, curve(rows, SELECT_BY), grad_norms, train_loss)
