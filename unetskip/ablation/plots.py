"""The study's figures: validation Dice per epoch, and gradient norms per stage over training.

Figures are built without pyplot (no global backend or figure list): save them with `savefig`, or let
a notebook display them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from unetskip.ablation.grid import VARIANT_NAMES

if TYPE_CHECKING:
    from unetskip.ablation.report import RunRecord

COLORS = dict(zip(VARIANT_NAMES, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=True))
NO_GRAD_NORMS = (
    "No gradient norms were logged by these runs\n"
    "(expected keys: grad_norm/encoder_<i>, grad_norm/decoder_<i>;\n"
    "they come from the training's gradient-norm logging)."
)


def mean_and_band(curves: Sequence[Sequence[tuple[int, float]]]) -> tuple[np.ndarray, ...]:
    """x, mean, min and max over curves of (x, y) points, at every x that any curve has."""
    by_x: dict[int, list[float]] = {}
    for points in curves:
        for x, y in points:
            by_x.setdefault(x, []).append(y)
    xs = np.array(sorted(by_x))
    ys = [np.array(by_x[x]) for x in xs]
    return (
        xs,
        np.array([y.mean() for y in ys]),
        np.array([y.min() for y in ys]),
        np.array([y.max() for y in ys]),
    )


def by_variant(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    grouped: dict[str, list[RunRecord]] = {}
    for record in records:
        grouped.setdefault(record.variant, []).append(record)
    return grouped


def val_dice_figure(records: Sequence[RunRecord]) -> Figure:
    """Validation Dice against epoch: the mean over seeds per variant, and a band from min to max."""
    figure = Figure(figsize=(7, 4.5))
    axis = figure.subplots()
    for variant, runs in by_variant(records).items():
        epochs, mean, low, high = mean_and_band([run.val_dice for run in runs])
        color = COLORS.get(variant)
        seeds = f"{len(runs)} seed" + ("s" if len(runs) > 1 else "")
        axis.plot(epochs + 1, mean, color=color, label=f"{variant} ({seeds})")
        axis.fill_between(epochs + 1, low, high, color=color, alpha=0.2)
    axis.set(
        xlabel="epoch",
        ylabel="validation Dice (macro)",
        title="Validation Dice: mean, band = min-max over seeds",
    )
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    return figure


def grad_norm_figure(records: Sequence[RunRecord]) -> Figure:
    """Gradient norm against step: the first encoder stage of every variant, then one panel per
    variant with every stage (encoder solid, decoder dashed); means over seeds. Says so when the runs
    logged none."""
    grouped = {
        variant: runs for variant, runs in by_variant(records).items() if any(run.grad_norms for run in runs)
    }
    if not grouped:
        figure = Figure(figsize=(7, 2.5))
        axis = figure.subplots()
        axis.text(0.5, 0.5, NO_GRAD_NORMS, ha="center", va="center", wrap=True)
        axis.set_axis_off()
        return figure
    figure = Figure(figsize=(4.5 * (len(grouped) + 1), 4))
    axes = figure.subplots(1, len(grouped) + 1, squeeze=False)
    first, *panels = axes[0]
    for (variant, runs), axis in zip(grouped.items(), panels, strict=True):
        stages = sorted({stage for run in runs for stage in run.grad_norms}, key=stage_order)
        colors = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, max(len(stages), 1)))
        for stage, color in zip(stages, colors, strict=True):
            steps, mean, _, _ = mean_and_band([run.grad_norms.get(stage, []) for run in runs])
            style = "-" if stage.startswith("encoder") else "--"
            axis.plot(steps, mean, style, color=color, label=stage)
            if stage == "encoder_0":
                first.plot(steps, mean, color=COLORS.get(variant), label=variant)
        axis.set(xlabel="step", ylabel="gradient norm", yscale="log", title=variant)
        axis.legend(fontsize="small")
    first.set(xlabel="step", ylabel="gradient norm", yscale="log", title="first encoder stage (encoder_0)")
    first.legend()
    figure.tight_layout()
    return figure


def stage_order(stage: str) -> tuple[int, int]:
    """encoder_0, encoder_1, ..., then decoder_0, decoder_1, ..."""
    kind, index = stage.split("_")
    return (0 if kind == "encoder" else 1, int(index))
