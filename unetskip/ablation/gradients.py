"""Gradient flow at initialisation: the gradient norm of every stage of each variant at each depth.

No training: every network is built from the study's configs with the variant's switches and depth,
and a few batches of training images (the configured DataModule's, with its augmentations) are run
through it in train mode; the loss is the configured one. The norms are averaged over the batches. The
first stage is `encoder_0` (full resolution, furthest from the loss without long skips) and the last
`decoder_0` (the stage before the head): their ratio is how much gradient survives the way back.
"""

from __future__ import annotations

import csv
import statistics
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import nn

from unetskip.ablation.depth import conv_layers
from unetskip.ablation.grid import Variant, check_depths
from unetskip.ablation.plots import COLORS, mean_and_band, stage_order
from unetskip.ablation.worker import configured_class
from unetskip.cli.lightning_cli import CLI_KWARGS, UnetSkipCLI
from unetskip.data.oxford_pet_datamodule import OxfordPetDataModule
from unetskip.training.gradient_flow import gradient_norm, stage_modules
from unetskip.training.module import SegmentationModule

FIRST_STAGE, LAST_STAGE = "encoder_0", "decoder_0"
RATIO = "first_last_ratio"


def real_batches(datamodule: OxfordPetDataModule, num_batches: int) -> list[dict[str, torch.Tensor]]:
    """The first `num_batches` training batches (shuffled with torch's seed 0)."""
    datamodule.setup("fit")
    torch.manual_seed(0)
    batches: Iterator[dict[str, torch.Tensor]] = iter(datamodule.train_dataloader())
    return [batch for _, batch in zip(range(num_batches), batches, strict=False)]


def random_batches(
    num_batches: int, batch_size: int, image_size: int, num_classes: int
) -> list[dict[str, torch.Tensor]]:
    """Standard-normal images and uniform random masks: the fallback when the data is absent."""
    generator = torch.Generator().manual_seed(0)
    return [
        {
            "image": torch.randn(batch_size, 3, image_size, image_size, generator=generator),
            "mask": torch.randint(num_classes, (batch_size, image_size, image_size), generator=generator),
        }
        for _ in range(num_batches)
    ]


def stage_norms(
    net: nn.Module, loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], batches: Sequence[dict]
) -> dict[str, float]:
    """Every stage's gradient norm (mean over `batches`, one backward each, in train mode), the loss."""
    stages = stage_modules(net)
    if not stages:
        raise ValueError(
            f"{type(net).__name__} has no `encoder` and `decoder` ModuleLists: gradient flow per stage "
            "needs unetskip.models.UNet as model.net"
        )
    net.train()
    norms: dict[str, list[float]] = {name: [] for name in sorted(stages, key=stage_order)}
    losses = []
    for batch in batches:
        net.zero_grad(set_to_none=True)
        value = loss(net(batch["image"]), batch["mask"])
        value.backward()
        losses.append(value.item())
        for name, module in stages.items():
            norms[name].append(gradient_norm(module).item())
    return {"loss": statistics.fmean(losses)} | {
        f"grad_norm/{name}": statistics.fmean(values) for name, values in norms.items()
    }


def gradients_at_init(
    configs: Sequence[str],
    extra_args: Sequence[str],
    variants: Sequence[Variant],
    blocks_per_stage: Sequence[int],
    num_seeds: int = 3,
    num_batches: int = 4,
    echo: Callable[[str], None] = print,
) -> list[dict[str, object]]:
    """One row per variant x depth x seed (the seed of the initialisation): stage norms and ratio.

    The configs are parsed as `fit` parses them (extra_args are fit flags). Without the data at
    data.root, random images stand in, and every row's `input` says so.
    """
    check_depths(blocks_per_stage)
    if num_seeds < 1 or num_batches < 1:
        raise ValueError(f"--seeds and --batches must be >= 1, got {num_seeds} and {num_batches}")
    args = [
        *(arg for config in configs for arg in ("--config", config)),
        *extra_args,
        "--trainer.logger",
        "false",
    ]
    cli = UnetSkipCLI(SegmentationModule, OxfordPetDataModule, args=args, run=False, **CLI_KWARGS)
    datamodule = cli.datamodule
    try:
        batches = real_batches(datamodule, num_batches)
        source = f"training images of {datamodule.root}"
    except FileNotFoundError as error:
        print(f"warning: {error}\nwarning: RANDOM images stand in for the data", file=sys.stderr)
        batches = random_batches(
            num_batches, datamodule.batch_size, datamodule.image_size, cli.model.num_classes
        )
        source = "random images (data not found)"
    echo(f"{len(batches)} batches of {batches[0]['image'].shape[0]} {source}")
    net_config = cli.config.model.net
    net_class = configured_class(net_config)
    rows = []
    for blocks in blocks_per_stage:
        for variant in variants:
            for seed in range(num_seeds):
                torch.manual_seed(seed)
                init_args = {
                    **net_config.init_args.as_dict(),
                    "skip_connections": variant.skip_connections,
                    "residual": variant.residual,
                    "blocks_per_stage": blocks,
                }
                net = net_class(**init_args)
                row: dict[str, object] = {
                    "variant": variant.name,
                    "skip_connections": variant.skip_connections,
                    "residual": variant.residual,
                    "blocks_per_stage": blocks,
                    "conv_layers": conv_layers(net),
                    "seed": seed,
                    "input": source,
                    **stage_norms(net, cli.model.criterion, batches),
                }
                row[RATIO] = row[f"grad_norm/{FIRST_STAGE}"] / row[f"grad_norm/{LAST_STAGE}"]
                rows.append(row)
            echo(f"{variant.name}, {blocks} blocks/stage: {first_stage_summary(rows[-num_seeds:])}")
    return rows


def first_stage_summary(rows: Sequence[dict[str, object]]) -> str:
    norms = [float(row[f"grad_norm/{FIRST_STAGE}"]) for row in rows]
    ratios = [float(row[RATIO]) for row in rows]
    return (
        f"{rows[0]['conv_layers']} conv layers, {FIRST_STAGE} gradient norm {statistics.fmean(norms):.3g}, "
        f"{FIRST_STAGE}/{LAST_STAGE} {statistics.fmean(ratios):.3g}"
    )


def gradients_markdown(rows: Sequence[dict[str, object]]) -> str:
    """A table of the mean (± std over seeds) first-stage norm, last-stage norm and their ratio."""
    cells: dict[tuple[str, int], list[dict[str, object]]] = {}
    for row in rows:
        cells.setdefault((str(row["variant"]), int(row["blocks_per_stage"])), []).append(row)
    header = ["variant", "blocks/stage", "conv layers", "seeds", f"‖∇ {FIRST_STAGE}‖", f"‖∇ {LAST_STAGE}‖"]
    header.append(f"{FIRST_STAGE} / {LAST_STAGE}")
    lines = [
        "# Gradient flow at initialisation",
        "",
        f"Input: {rows[0]['input']}. Gradient L2 norm of every parameter of a stage, mean over the "
        "batches, then mean ± std over the initialisation seeds.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    order = list(COLORS)
    for (variant, blocks), group in sorted(
        cells.items(), key=lambda item: (order.index(item[0][0]), item[0][1])
    ):
        values = [
            [float(row[key]) for row in group]
            for key in (f"grad_norm/{FIRST_STAGE}", f"grad_norm/{LAST_STAGE}", RATIO)
        ]
        stats = [
            f"{statistics.fmean(v):.3g}" + (f" ± {statistics.stdev(v):.2g}" if len(v) > 1 else "")
            for v in values
        ]
        lines.append(
            f"| {variant} | {blocks} | {group[0]['conv_layers']} | {len(group)} | " + " | ".join(stats) + " |"
        )
    return "\n".join(lines) + "\n"


def init_gradients_figure(rows: Sequence[dict[str, object]]) -> Figure:
    """First-stage gradient norm, and its ratio to the last stage's, against the number of conv layers:
    one line per variant (mean over seeds), a band from min to max; log scale."""
    figure = Figure(figsize=(11, 4.5))
    axes = figure.subplots(1, 2)
    panels = (
        (f"grad_norm/{FIRST_STAGE}", f"gradient norm of {FIRST_STAGE} (first stage)"),
        (RATIO, f"{FIRST_STAGE} / {LAST_STAGE} gradient norm"),
    )
    for axis, (key, title) in zip(axes, panels, strict=True):
        for variant, color in COLORS.items():
            points = [(int(row["conv_layers"]), float(row[key])) for row in rows if row["variant"] == variant]
            if not points:
                continue
            layers, mean, low, high = mean_and_band([points])
            axis.plot(layers, mean, "o-", color=color, label=variant)
            axis.fill_between(layers, low, high, color=color, alpha=0.2)
        axis.set(xlabel="convolution layers", ylabel=title, yscale="log", title=f"At initialisation: {title}")
        axis.grid(alpha=0.3, which="both")
    axes[0].legend()
    figure.tight_layout()
    return figure


def write_gradients(rows: Sequence[dict[str, object]], out: Path) -> list[Path]:
    """gradients.csv (every row), gradients.md (the table) and gradients.png (the plot) in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "gradients.csv", out / "gradients.md", out / "gradients.png"]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with paths[0].open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    paths[1].write_text(gradients_markdown(rows))
    init_gradients_figure(rows).savefig(paths[2], dpi=120)
    return paths
