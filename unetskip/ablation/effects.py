"""Each switch's effect as a seed-paired difference with a 95% t-interval, and the nuisance check.

The seed fixes the initialisation, the data order and the augmentations, so the runs of two variants
with the same seed (and depth) form a pair; the effect is the mean of the paired differences and its
interval a Student-t interval over them. The nuisance check repeats the study at another thread count,
which changes the floating-point order as another CPU does: an effect that does not hold there is noise.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from unetskip.ablation.grid import EFFECTS
from unetskip.ablation.records import RunRecord

Cell = tuple[str, int | None]  # (variant, blocks_per_stage); blocks None for a study without depth axis
# The effects' columns: (runs.csv column, title).
EFFECT_COLUMNS = (
    ("test_dice_macro", "test Dice"),
    ("test_pet_iou_border_band", "test border-band IoU"),
    ("final_train_loss", "final train loss"),
)
CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedEffect:
    """The effect of one switch on one column at one depth: differences with − without, paired by seed."""

    label: str  # e.g. "short skips, no long skips"
    with_it: str
    without: str
    blocks: int | None
    column: str
    differences: tuple[float, ...]
    seeds: tuple[int, ...] = ()  # the seed of each difference

    @property
    def mean(self) -> float:
        return statistics.fmean(self.differences)

    @property
    def half_width(self) -> float:
        """Half the 95% t-interval's width (NaN with fewer than two pairs)."""
        n = len(self.differences)
        if n < 2:
            return math.nan
        quantile = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1))
        return quantile * statistics.stdev(self.differences) / math.sqrt(n)

    @property
    def excludes_zero(self) -> bool:
        return abs(self.mean) > self.half_width  # False for NaN

    def interval(self) -> str:
        """`+0.012 [+0.004, +0.020]`, or the mean alone for one pair."""
        if math.isnan(self.half_width):
            return f"{self.mean:+.3f} (1 seed)"
        low, high = self.mean - self.half_width, self.mean + self.half_width
        return f"{self.mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def paired_values(runs: Sequence[RunRecord], column: str) -> dict[int, float]:
    """seed -> the finite value of `column`."""
    values = {int(run.row["seed"]): run.row[column] for run in runs}
    return {seed: float(v) for seed, v in values.items() if v is not None and math.isfinite(float(v))}


def paired_effects(
    cells: Mapping[Cell, Sequence[RunRecord]], columns: Sequence[str] = tuple(c for c, _ in EFFECT_COLUMNS)
) -> list[PairedEffect]:
    """Every switch's effect at every depth that has both variants, on every column with a pair."""
    depths = sorted({blocks for _, blocks in cells}, key=lambda blocks: blocks or 0)
    effects = []
    for label, with_it, without in EFFECTS:
        for blocks in depths:
            if (with_it, blocks) not in cells or (without, blocks) not in cells:
                continue
            for column in columns:
                a = paired_values(cells[with_it, blocks], column)
                b = paired_values(cells[without, blocks], column)
                seeds = tuple(sorted(a.keys() & b.keys()))
                differences = tuple(a[seed] - b[seed] for seed in seeds)
                if differences:
                    effects.append(PairedEffect(label, with_it, without, blocks, column, differences, seeds))
    return effects


def effects_by_row(effects: Sequence[PairedEffect]) -> dict[tuple[str, int | None], dict[str, PairedEffect]]:
    """(label, blocks) -> column -> effect, in the order of `effects`."""
    rows: dict[tuple[str, int | None], dict[str, PairedEffect]] = {}
    for effect in effects:
        rows.setdefault((effect.label, effect.blocks), {})[effect.column] = effect
    return rows


def paired_effects_markdown(
    cells: Mapping[Cell, Sequence[RunRecord]], nuisance: Mapping[Cell, Sequence[RunRecord]] | None = None
) -> str:
    """The paired-effects table, the list of intervals that exclude zero, and with `nuisance` (the cells
    of the same study at another thread count) how each of those effects fares there."""
    effects = paired_effects(cells)
    if not effects:
        return "(no seed-paired effects: needs runs of two variants that differ in one switch, same seeds)"
    axis = any(blocks is not None for _, blocks in cells)
    titles = dict(EFFECT_COLUMNS)
    header = ["effect of", "variants", *(["blocks/stage"] if axis else []), "seed pairs"]
    header += [f"Δ {titles[column]} [95% CI]" for column, _ in EFFECT_COLUMNS]
    lines = [
        "### Paired by seed, with 95% intervals",
        "",
        "Mean over seeds of (run with the switch − run without, same seed"
        + (" and depth" if axis else "")
        + "), with a 95% Student-t interval over those differences. A negative Δ final train loss means "
        "the switch lowers the training loss. * marks an interval that excludes zero.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    for (label, blocks), by_column in effects_by_row(effects).items():
        first = next(iter(by_column.values()))
        row = [label, f"{first.with_it} − {first.without}", *([str(blocks)] if axis else [])]
        row.append(str(len(first.differences)))
        for column, _ in EFFECT_COLUMNS:
            effect = by_column.get(column)
            row.append(
                "n/a" if effect is None else effect.interval() + (" *" if effect.excludes_zero else "")
            )
        lines.append("| " + " | ".join(row) + " |")
    resolved = [effect for effect in effects if effect.excludes_zero]
    lines.append("")
    if resolved:
        lines.append("Intervals that exclude zero:")
        lines += [f"- {describe(effect, titles)}" for effect in resolved]
    else:
        lines.append("No interval excludes zero.")
    if nuisance is not None:
        lines += ["", *nuisance_markdown(cells, nuisance, effects, titles)]
    return "\n".join(lines)


def describe(effect: PairedEffect, titles: Mapping[str, str]) -> str:
    depth = "" if effect.blocks is None else f" at {effect.blocks} blocks/stage"
    return f"{effect.label}{depth}, {titles[effect.column]}: {effect.interval()}"


def nuisance_markdown(
    cells: Mapping[Cell, Sequence[RunRecord]],
    nuisance: Mapping[Cell, Sequence[RunRecord]],
    effects: Sequence[PairedEffect],
    titles: Mapping[str, str],
) -> list[str]:
    """How far the same runs move at another thread count, and which effects hold there."""
    lines = ["## Nuisance check: the same seeds at another thread count", ""]
    moves = []
    for cell, runs in cells.items():
        other = paired_values(nuisance.get(cell, []), "test_dice_macro")
        mine = paired_values(runs, "test_dice_macro")
        moves += [abs(mine[seed] - other[seed]) for seed in mine.keys() & other.keys()]
    if not moves:
        return [*lines, "The nuisance folder has none of these runs (same variant, depth and seed)."]
    lines.append(
        f"{len(moves)} runs repeated: test Dice moved by {statistics.median(moves):.3f} (median) and "
        f"{max(moves):.3f} (largest) with nothing changed but the thread count."
    )
    repeated = {(e.label, e.blocks, e.column): e for e in paired_effects(nuisance)}
    lines += [
        "",
        "| effect (interval above excludes zero) | here, on the repeated seeds | at the other thread count "
        "| reading |",
        "| --- | --- | --- | --- |",
    ]
    for effect in effects:
        if not effect.excludes_zero:
            continue
        again = repeated.get((effect.label, effect.blocks, effect.column))
        same_sign = again is not None and math.copysign(1, again.mean) == math.copysign(1, effect.mean)
        if again is None:
            reading, shown = "not repeated", "n/a"
        elif not same_sign:
            reading, shown = "sign flips: noise", again.interval()
        elif math.isnan(again.half_width):
            reading, shown = "same sign; one seed there, no interval", again.interval()
        elif again.excludes_zero:
            reading, shown = "holds", again.interval()
        else:
            reading, shown = "does not hold: noise", again.interval()
        here = "n/a"
        if again is not None:
            same = [
                d for seed, d in zip(effect.seeds, effect.differences, strict=True) if seed in again.seeds
            ]
            here = f"{statistics.fmean(same):+.3f} ({len(same)} seeds)" if same else "n/a"
        lines.append(f"| {describe(effect, titles)} | {here} | {shown} | {reading} |")
    return lines
