"""A results folder as tables: every finished run (runs.csv) and mean +- std per variant (summary.md).

Each run folder holds the worker's `result.json` (test scores of the best checkpoint, wall time, size,
depth) and the CSVLogger's `metrics.csv` (training loss and validation scores per epoch, throughput,
gradient norms per step). A study with a depth axis (runs at several `blocks_per_stage`) is reported per
variant and depth, with its depth plots; each switch's effect is a seed-paired difference with a 95%
t-interval (`effects`).
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from unetskip.ablation.effects import Cell, paired_effects_markdown
from unetskip.ablation.grid import EFFECTS, VARIANT_NAMES
from unetskip.ablation.plots import depth_figure, grad_norm_figure, train_loss_figure, val_dice_figure
from unetskip.ablation.records import SCORES, RunRecord, load_run
from unetskip.ablation.study import LOG_FILE, SETTINGS_FILE
from unetskip.ablation.worker import RESULT_FILE

# Scores taken at the best validation epoch and from the test of the best checkpoint.
# runs.csv's columns, in order.
COLUMNS = (
    "variant",
    "skip_connections",
    "residual",
    "seed",
    "blocks_per_stage",
    "conv_layers",
    "threads",
    "epochs",
    "params",
    "best_epoch",
    *(f"val_{score}" for score in SCORES),
    *(f"test_{score}" for score in SCORES),
    "final_train_loss",
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
    ("final_train_loss", "final train loss", 3),
    ("wall_time_s", "wall time (s)", 0),
    ("img_per_sec", "train img/s", 1),
)


def load_study(results_dir: Path) -> tuple[list[RunRecord], list[Path]]:
    """The finished runs of a results folder (in grid order), and the run folders that did not finish."""
    runs_dir = results_dir / "runs"
    if not (results_dir / SETTINGS_FILE).is_file() or not runs_dir.is_dir():
        raise FileNotFoundError(
            f"{results_dir} is not a study's results folder (it needs {SETTINGS_FILE} and runs/): "
            "run `python -m unetskip ablation run --out` on it first"
        )
    run_dirs = sorted(path for path in runs_dir.iterdir() if path.is_dir())
    finished = [load_run(path) for path in run_dirs if (path / RESULT_FILE).is_file()]
    unfinished = [path for path in run_dirs if not (path / RESULT_FILE).is_file()]
    order = {name: index for index, name in enumerate(VARIANT_NAMES)}
    finished.sort(
        key=lambda record: (
            order.get(record.variant, len(order)),
            record.blocks_per_stage or 0,
            record.row["seed"],
        )
    )
    return finished, unfinished


def write_runs_csv(records: Sequence[RunRecord], path: Path) -> None:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        for record in records:
            writer.writerow({key: "" if record.row[key] is None else record.row[key] for key in COLUMNS})


def depths_of(records: Sequence[RunRecord]) -> list[int]:
    """The depths (blocks_per_stage) of a study with a depth axis, ascending; [] for a study whose runs
    all have one depth (or none recorded), which is reported per variant as before the axis."""
    depths = sorted({record.blocks_per_stage for record in records} - {None})
    return depths if len(depths) > 1 else []


def cells_of(records: Sequence[RunRecord], by_depth: bool | None = None) -> dict[Cell, list[RunRecord]]:
    """The runs of every cell of the grid, in grid order (records are sorted that way); by variant and
    depth when `by_depth` (default: when the records have a depth axis), else by variant."""
    axis = bool(depths_of(records)) if by_depth is None else by_depth
    grouped: dict[Cell, list[RunRecord]] = {}
    for record in records:
        grouped.setdefault((record.variant, record.blocks_per_stage if axis else None), []).append(record)
    return grouped


def column_values(runs: Sequence[RunRecord], column: str) -> list[float]:
    """The non-missing values of `column` over `runs`."""
    values = [record.row[column] for record in runs]
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
    """Markdown table: one row per variant (and depth, with the depth axis), mean ± std over its seeds
    of every summary column."""
    axis = bool(depths_of(records))
    header = ["variant", "long skips", "short skips"]
    header += ["blocks/stage", "conv layers"] if axis else []
    header += ["runs", "params", *(title for _, title, _ in SUMMARY_COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for (variant, blocks), runs in cells_of(records).items():
        first = runs[0].row
        cells = [variant, "yes" if first["skip_connections"] else "no", "yes" if first["residual"] else "no"]
        cells += [str(blocks), str(first["conv_layers"])] if axis else []
        cells += [str(len(runs)), f"{first['params']:,}"]
        cells += [format_mean_std(column_values(runs, column), d) for column, _, d in SUMMARY_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def effects_table(
    records: Sequence[RunRecord], columns: Sequence[str] = ("test_dice_macro", "test_pet_iou_border_band")
) -> str:
    """Markdown table of each switch's effect: the difference of the variants' means, beside the larger
    of their standard deviations over seeds (an effect well inside that spread is not resolved); per
    depth with the depth axis."""
    titles = {column: title for column, title, _ in SUMMARY_COLUMNS}
    axis = bool(depths_of(records))
    header = ["effect of", "variants", *(["blocks/stage"] if axis else [])]
    for column in columns:
        header += [f"Δ {titles[column]}", "seed std (larger)"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    cells_by = cells_of(records)
    for label, with_it, without in EFFECTS:
        for blocks in depths_of(records) or [None]:
            if (with_it, blocks) not in cells_by or (without, blocks) not in cells_by:
                continue
            cells = [label, f"{with_it} − {without}", *([str(blocks)] if axis else [])]
            for column in columns:
                (mean_a, std_a), (mean_b, std_b) = (
                    mean_std(column_values(cells_by[v, blocks], column)) for v in (with_it, without)
                )
                stds = [std for std in (std_a, std_b) if not math.isnan(std)]
                cells += [f"{mean_a - mean_b:+.3f}", f"{max(stds):.3f}" if stds else "n/a (1 seed)"]
            lines.append("| " + " | ".join(cells) + " |")
    if len(lines) == 2:
        return "(needs finished runs of two variants that differ in one switch)"
    return "\n".join(lines)


def summary_markdown(
    records: Sequence[RunRecord],
    unfinished: Sequence[Path],
    settings: dict[str, object],
    nuisance: Sequence[RunRecord] | None = None,
) -> str:
    """The whole summary.md (with `nuisance`: the same study's runs at another thread count)."""
    configs = " ".join(f"--config {config}" for config in settings["configs"])
    extra = " ".join(settings["extra_args"])
    threads = f" Runs at `--threads {settings['threads']}`." if settings.get("threads") else ""
    depths = depths_of(records)
    parts = [
        "# Ablation study: long and short skip connections",
        "",
        f"Base: `{configs}{' -- ' + extra if extra else ''}`. Long skips: encoder-to-decoder "
        "concatenations (`skip_connections`); short skips: residual shortcuts in every block "
        "(`residual`). Mean ± sample std over seeds; val scores at the epoch of best val Dice, test "
        f"scores of that checkpoint; final train loss: the mean training loss of the last epoch.{threads}",
    ]
    if depths:
        parts[-1] += (
            f" Depth axis: {', '.join(map(str, depths))} blocks per stage (`model.net.blocks_per_stage`); "
            "conv layers are counted in the built network (stem, blocks, upsampling, head; not the "
            "shortcut projections). Plots: depth.png (scores and final train loss against conv layers) "
            "and train_loss.png (training loss per epoch at every depth)."
        )
    parts += [
        "",
        summary_table(records),
        "",
        "## Effect of each switch",
        "",
        effects_table(records),
        "",
        paired_effects_markdown(
            cells_of(records), None if nuisance is None else cells_of(nuisance, bool(depths))
        ),
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


def write_report(results_dir: Path, nuisance_dir: Path | None = None) -> list[Path]:
    """Write runs.csv, summary.md, val_dice.png and grad_norm.png into `results_dir`, and with a depth
    axis depth.png and train_loss.png; return their paths. `nuisance_dir` is a results folder of the
    same study at another thread count: summary.md then says which effects hold in it."""
    records, unfinished = load_study(results_dir)
    nuisance = load_study(nuisance_dir)[0] if nuisance_dir is not None else None
    settings = json.loads((results_dir / SETTINGS_FILE).read_text())
    paths = [results_dir / name for name in ("runs.csv", "summary.md", "val_dice.png", "grad_norm.png")]
    write_runs_csv(records, paths[0])
    paths[1].write_text(summary_markdown(records, unfinished, settings, nuisance))
    val_dice_figure(records).savefig(paths[2], dpi=120)
    grad_norm_figure(records).savefig(paths[3], dpi=120)
    if depths_of(records):
        paths += [results_dir / "depth.png", results_dir / "train_loss.png"]
        depth_figure(records).savefig(paths[4], dpi=120)
        train_loss_figure(records).savefig(paths[5], dpi=120)
    return paths
