"""A results folder as tables: every finished run (runs.csv) and mean +- std per variant (summary.md).

Each run folder holds the worker's `result.json` (test scores of the best checkpoint, wall time, size)
and the CSVLogger's `metrics.csv` (validation scores per epoch, throughput, gradient norms per step).
"""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from unetskip.ablation.grid import EFFECTS, VARIANT_NAMES
from unetskip.ablation.plots import grad_norm_figure, val_dice_figure
from unetskip.ablation.study import LOG_FILE, SETTINGS_FILE
from unetskip.ablation.worker import RESULT_FILE

# Scores taken at the best validation epoch and from the test of the best checkpoint.
SCORES = ("dice_macro", "iou_macro", "pet_iou_pooled", "pet_iou_per_image", "pet_iou_border_band")
SELECT_BY = "val/dice_macro"
# runs.csv's columns, in order.
COLUMNS = (
    "variant",
    "skip_connections",
    "residual",
    "seed",
    "epochs",
    "params",
    "best_epoch",
    *(f"val_{score}" for score in SCORES),
    *(f"test_{score}" for score in SCORES),
    "wall_time_s",
    "img_per_sec",
    "run_dir",
)
# summary.md's columns: (runs.csv column, header, decimals).
SUMMARY_COLUMNS = (
    ("test_dice_macro", "test Dice", 3),
    ("test_iou_macro", "test IoU", 3),
    ("test_pet_iou_pooled", "test pet IoU (pooled)", 3),
    ("test_pet_iou_per_image", "test pet IoU (per image)", 3),
    ("test_pet_iou_border_band", "test border-band IoU", 3),
    ("val_dice_macro", "best val Dice", 3),
    ("wall_time_s", "wall time (s)", 0),
    ("img_per_sec", "train img/s", 1),
)
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

    @property
    def variant(self) -> str:
        return str(self.row["variant"])


def load_run(run_dir: Path) -> RunRecord:
    """A finished run folder as a RunRecord."""
    result = json.loads((run_dir / RESULT_FILE).read_text())
    rows = read_metrics(run_dir / "metrics.csv")
    val_rows = [row for row in rows if SELECT_BY in row]
    best = max(val_rows, key=lambda row: row[SELECT_BY], default={})
    throughput = [value for _, value in curve(rows, "train/img_per_sec")]
    record = {
        "variant": result["variant"],
        "skip_connections": result["skip_connections"],
        "residual": result["residual"],
        "seed": result["seed"],
        "epochs": result["epochs"],
        "params": result["params"],
        "best_epoch": int(best["epoch"]) if "epoch" in best else None,
        **{f"val_{score}": best.get(f"val/{score}") for score in SCORES},
        **{f"test_{score}": result["test"].get(f"test/{score}") for score in SCORES},
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
    return RunRecord(record, curve(rows, SELECT_BY), grad_norms)


def load_study(results_dir: Path) -> tuple[list[RunRecord], list[Path]]:
    """The finished runs of a results folder (in grid order), and the run folders that did not finish."""
    runs_dir = results_dir / "runs"
    if not (results_dir / SETTINGS_FILE).is_file() or not runs_dir.is_dir():
        raise FileNotFoundError(
            f"{results_dir} is not a study's results folder (it needs {SETTINGS_FILE} and runs/): "
            "run `python -m unetskip.ablation run --out` on it first"
        )
    run_dirs = sorted(path for path in runs_dir.iterdir() if path.is_dir())
    finished = [load_run(path) for path in run_dirs if (path / RESULT_FILE).is_file()]
    unfinished = [path for path in run_dirs if not (path / RESULT_FILE).is_file()]
    order = {name: index for index, name in enumerate(VARIANT_NAMES)}
    finished.sort(key=lambda record: (order.get(record.variant, len(order)), record.row["seed"]))
    return finished, unfinished


def write_runs_csv(records: Sequence[RunRecord], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        for record in records:
            writer.writerow({key: "" if record.row[key] is None else record.row[key] for key in COLUMNS})


def column_values(records: Sequence[RunRecord], variant: str, column: str) -> list[float]:
    """The non-missing values of `column` over the runs of `variant`."""
    values = [record.row[column] for record in records if record.variant == variant]
    return [float(value) for value in values if value is not None and math.isfinite(float(value))]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN for the std of a single value, both NaN for none)."""
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def format_mean_std(values: Sequence[float], decimals: int) -> str:
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.{decimals}f}" if math.isnan(std) else f"{mean:.{decimals}f} ± {std:.{decimals}f}"


def variants_in(records: Sequence[RunRecord]) -> list[str]:
    """The variants that have finished runs, in grid order (records are sorted that way)."""
    return list(dict.fromkeys(record.variant for record in records))


def summary_table(records: Sequence[RunRecord]) -> str:
    """Markdown table: one row per variant, mean ± std over its seeds of every summary column."""
    header = ["variant", "long skips", "short skips", "runs", "params"]
    header += [title for _, title, _ in SUMMARY_COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for variant in variants_in(records):
        runs = [record for record in records if record.variant == variant]
        first = runs[0].row
        cells = [
            variant,
            "yes" if first["skip_connections"] else "no",
            "yes" if first["residual"] else "no",
            str(len(runs)),
            f"{first['params']:,}",
        ]
        cells += [
            format_mean_std(column_values(records, variant, column), d) for column, _, d in SUMMARY_COLUMNS
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def effects_table(
    records: Sequence[RunRecord], columns: Sequence[str] = ("test_dice_macro", "test_pet_iou_border_band")
) -> str:
    """Markdown table of each switch's effect: the difference of the variants' means, beside the larger
    of their standard deviations over seeds (an effect well inside that spread is not resolved)."""
    titles = {column: title for column, title, _ in SUMMARY_COLUMNS}
    header = ["effect of", "variants"]
    for column in columns:
        header += [f"Δ {titles[column]}", "seed std (larger)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    present = set(variants_in(records))
    for label, with_it, without in EFFECTS:
        if not {with_it, without} <= present:
            continue
        cells = [label, f"{with_it} − {without}"]
        for column in columns:
            (mean_a, std_a), (mean_b, std_b) = (
                mean_std(column_values(records, v, column)) for v in (with_it, without)
            )
            stds = [std for std in (std_a, std_b) if not math.isnan(std)]
            cells += [f"{mean_a - mean_b:+.3f}", f"{max(stds):.3f}" if stds else "n/a (1 seed)"]
        lines.append("| " + " | ".join(cells) + " |")
    if len(lines) == 2:
        return "(needs finished runs of two variants that differ in one switch)"
    return "\n".join(lines)


def summary_markdown(
    records: Sequence[RunRecord], unfinished: Sequence[Path], settings: dict[str, list[str]]
) -> str:
    """The whole summary.md."""
    configs = " ".join(f"--config {config}" for config in settings["configs"])
    extra = " ".join(settings["extra_args"])
    parts = [
        "# Ablation study: long and short skip connections",
        "",
        f"Base: `{configs}{' -- ' + extra if extra else ''}`. Long skips: encoder-to-decoder "
        "concatenations (`skip_connections`); short skips: residual shortcuts in every block "
        "(`residual`). Mean ± sample std over seeds; val scores at the epoch of best val Dice, test "
        "scores of that checkpoint.",
        "",
        summary_table(records),
        "",
        "## Effect of each switch",
        "",
        effects_table(records),
    ]
    if not any(record.grad_norms for record in records):
        parts += [
            "",
            "No gradient norms (`grad_norm/encoder_<i>`, `grad_norm/decoder_<i>`) were logged by these runs.",
        ]
    if unfinished:
        parts += ["", "## Runs that did not finish", ""]
        parts += [f"- `{path.name}`: see `{path / LOG_FILE}`" for path in unfinished]
    return "\n".join(parts) + "\n"


def write_report(results_dir: Path) -> list[Path]:
    """Write runs.csv, summary.md, val_dice.png and grad_norm.png into `results_dir`; return their paths."""
    records, unfinished = load_study(results_dir)
    settings = json.loads((results_dir / SETTINGS_FILE).read_text())
    paths = [results_dir / name for name in ("runs.csv", "summary.md", "val_dice.png", "grad_norm.png")]
    write_runs_csv(records, paths[0])
    paths[1].write_text(summary_markdown(records, unfinished, settings))
    val_dice_figure(records).savefig(paths[2], dpi=120)
    grad_norm_figure(records).savefig(paths[3], dpi=120)
    return paths
