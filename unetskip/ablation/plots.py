"""The study's figures: validation Dice per epoch, gradient norms per stage over training, and with a
depth axis the scores and training loss against depth.

Figures are built without pyplot (no global backend or figure list): save them with `savefig`, or let
a notebook display them.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from unetskip.ablation.grid import VARIANT_NAMES
from unetskip.ablation.records import RunRecord

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
    """The runs per variant, or per variant and depth (`long, 4 blocks`) when they have several depths."""
    axis = len({record.blocks_per_stage for record in records}) > 1
    grouped: dict[str, list[RunRecord]] = {}
    for record in records:
        label = f"{record.variant}, {record.blocks_per_stage} blocks" if axis else record.variant
        grouped.setdefault(label, []).append(record)
    return grouped


def line_style(label: str) -> dict[str, object]:
    """The variant's color; with a depth in the label, a line that is thicker the deeper the net."""
    variant, _, depth = label.partition(", ")
    width = 1.0 + 0.4 * int(depth.split()[0]) if depth else 1.5
    return {"color": COLORS.get(variant), "linewidth": width}


def val_dice_figure(records: Sequence[RunRecord]) -> Figure:
    """Validation Dice against epoch: the mean over seeds per variant, and a band from min to max."""
    figure = Figure(figsize=(7, 4.5))
    axis = figure.subplots()
    for variant, runs in by_variant(records).items():
        epochs, mean, low, high = mean_and_band([run.val_dice for run in runs])
        style = line_style(variant)
        seeds = f"{len(runs)} seed" + ("s" if len(runs) > 1 else "")
        axis.plot(epochs + 1, mean, **style, label=f"{variant} ({seeds})")
        axis.fill_between(epochs + 1, low, high, color=style["color"], alpha=0.2)
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
                first.plot(steps, mean, **line_style(variant), label=variant)
        axis.set(xlabel="step", ylabel="gradient norm", yscale="log", title=variant)
        axis.legend(fontsize="small")
    first.set(xlabel="step", ylabel="gradient norm", yscale="log", title="first encoder stage (encoder_0)")
    first.legend()
    figure.tight_layout()
    return figure


def depth_figure(records: Sequence[RunRecord]) -> Figure:
    """Test Dice, test border-band IoU and final train loss against the number of conv layers: one line
    per variant (mean over seeds), a band from min to max over seeds."""
    panels = (
        ("test_dice_macro", "test Dice (macro)"),
        ("test_pet_iou_border_band", "test border-band IoU"),
        ("final_train_loss", "train loss, last epoch"),
    )
    figure = Figure(figsize=(15, 4.5))
    axes = figure.subplots(1, len(panels))
    variants: dict[str, list[RunRecord]] = {}
    for record in records:
        variants.setdefault(record.variant, []).append(record)
    for axis, (column, title) in zip(axes, panels, strict=True):
        for variant, runs in variants.items():
            points = [
                (int(run.row["conv_layers"]), float(run.row[column]))
                for run in runs
                if run.row["conv_layers"] is not None and run.row[column] is not None
            ]
            if not points:
                continue
            layers, mean, low, high = mean_and_band([points])
            seeds = len({run.row["seed"] for run in runs})
            color = COLORS.get(variant)
            axis.plot(layers, mean, "o-", color=color, label=f"{variant} (≤{seeds} seeds)")
            axis.fill_between(layers, low, high, color=color, alpha=0.2)
        axis.set(xlabel="convolution layers", ylabel=title, title=f"{title}: mean, band = min-max")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    return figure


def train_loss_figure(records: Sequence[RunRecord]) -> Figure:
    """Training loss per epoch, one panel per depth, one line per variant (mean, band min-max over
    seeds): He et al.'s degradation shows as a higher training loss of the deeper plain nets."""
    depths: dict[int | None, list[RunRecord]] = {}
    for record in records:
        depths.setdefault(record.blocks_per_stage, []).append(record)
    figure = Figure(figsize=(4 * len(depths), 4))
    axes = figure.subplots(1, len(depths), squeeze=False, sharey=True)[0]
    for axis, (blocks, runs) in zip(axes, sorted(depths.items(), key=lambda item: item[0] or 0), strict=True):
        variants: dict[str, list[RunRecord]] = {}
        for run in runs:
            variants.setdefault(run.variant, []).append(run)
        for variant, group in variants.items():
            if not any(run.train_loss for run in group):
                continue
            epochs, mean, low, high = mean_and_band([run.train_loss for run in group])
            color = COLORS.get(variant)
            axis.plot(epochs + 1, mean, color=color, label=variant)
            axis.fill_between(epochs + 1, low, high, color=color, alpha=0.2)
        layers = runs[0].row["conv_layers"]
        axis.set(xlabel="epoch", title=f"{blocks} blocks/stage ({layers} conv layers)", yscale="log")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("training loss (epoch mean)")
    axes[0].legend()
    figure.tight_layout()
    return figure


def stage_order(stage: str) -> tuple[int, int]:
    """encoder_0, encoder_1, ..., then decoder_0, decoder_1, ..."""
    kind, index = stage.split("_")
    return (0 if kind == "encoder" else 1, int(index))
