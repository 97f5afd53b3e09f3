"""`unetskip evaluate`: a checkpoint on a split, image by image, from the same config files and flags as
`test` (`--ckpt_path` alone rebuilds the model and data; `--data.*` flags override them).

    python -m unetskip evaluate --ckpt_path runs/unetskip/<run id>/checkpoints/last.ckpt
    python -m unetskip evaluate --ckpt_path A.ckpt --compare_ckpt_path B.ckpt --full_size

Writes summary.json, per_image.csv, confusion_matrix.csv/.png, worst.png and index.html (with
`--compare_ckpt_path`: paired.csv, gains.png, losses.png) into `--output` (default: `evaluate-<checkpoint
name>-<split>` in the checkpoint's run folder), and logs them to a W&B logger when one is configured.
The scores are `test`'s (the same `SegmentationScores`, the same inputs); see docs/evaluate.md.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import wandb
from jsonargparse import ActionYesNo
from jsonargparse.typing import PositiveInt
from lightning.pytorch import LightningDataModule
from lightning.pytorch.cli import ArgsType, LightningArgumentParser

from unetskip.cli.lightning_cli import CLI_KWARGS, DEFAULT_NET_CLASS, UnetSkipCLI, checkpoint_settings
from unetskip.data.image_size import parse_image_size
from unetskip.data.segmentation_datamodule import default_num_workers
from unetskip.evaluate.inference import (
    PredictedImage,
    dropped_samples,
    full_size_view,
    predict_samples,
    sample_path,
    subset,
)
from unetskip.evaluate.report import Report
from unetskip.evaluate.report_files import prepare_output
from unetskip.evaluate.scores import Evaluation, score_keys
from unetskip.runs.checkpoint_file import CheckpointReadError, read_checkpoint
from unetskip.runs.checkpointing import IncompatibleCheckpointError
from unetskip.runs.run_config import name_loggers
from unetskip.training.module import SegmentationModule

Split = Literal["test", "val"]
SETUP_STAGE = {"test": "test", "val": "validate"}


class EvaluateCLI(UnetSkipCLI):
    """The project's CLI without a subcommand, with evaluate's options; like `test`, the model and data
    settings come from `--ckpt_path` under the config files and flags. Only its instantiated model,
    data module and loggers are used (one process, no trainer loop, no callbacks)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        parser.set_defaults({"model.net": {"class_path": DEFAULT_NET_CLASS}})
        parser.add_argument(
            "--ckpt_path", type=str | None, default=None, help="The checkpoint to evaluate (A)."
        )
        parser.add_argument(
            "--compare_ckpt_path",
            type=str | None,
            default=None,
            help="A second checkpoint (B) evaluated on the same images: paired.csv, B - A with intervals.",
        )
        parser.add_argument("--split", type=Split, default="test", help="The split to evaluate.")
        parser.add_argument(
            "--output",
            type=str | None,
            default=None,
            help="The folder to write (default: in the run folder).",
        )
        parser.add_argument(
            "--overwrite", action=ActionYesNo, default=False, help="Reuse an existing --output."
        )
        parser.add_argument(
            "--full_size",
            action=ActionYesNo,
            default=False,
            help="Score at the images' original size, as `unetskip predict` writes masks (default: at the "
            "evaluation size, as `test`).",
        )
        parser.add_argument(
            "--sort_by", type=str, default="iou_macro", help="The score that ranks images (iou/pet, ...)."
        )
        parser.add_argument("--num_worst", type=PositiveInt, default=16, help="Images in worst.png.")
        parser.add_argument(
            "--bootstrap_samples", type=PositiveInt, default=1000, help="Resamples of the paired bootstrap."
        )
        parser.add_argument("--bootstrap_seed", type=int, default=0, help="Seed of the paired bootstrap.")

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parses `args`, then again over the checkpoint's model and data settings (as `test` does)."""
        super().parse_arguments(parser, args)
        ckpt_path = self.config.get("ckpt_path")
        if not ckpt_path:
            raise SystemExit("error: evaluate needs --ckpt_path: the checkpoint holds the model and its data")
        if not Path(ckpt_path).is_file():
            raise SystemExit(f"error: --ckpt_path {ckpt_path} is not a file")
        settings = checkpoint_settings(ckpt_path, "test")["test"]
        self.config = parser.parse_args(args, namespace=settings)

    def before_instantiate_classes(self) -> None:
        trainer = self.config.trainer
        trainer.devices, trainer.num_nodes = 1, 1
        name_loggers(self.config, "evaluate")
        super().before_instantiate_classes()
        trainer.callbacks = []


def default_output(ckpt_path: Path, split: str, full_size: bool, compare: Path | None) -> Path:
    """`<run folder>/evaluate-<checkpoint stem>-<split>[-full_size][-vs-<B's run>-<B's stem>]`; the run
    folder is the one holding `checkpoints/`, else the checkpoint's own folder."""
    run = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    name = f"evaluate-{ckpt_path.stem}-{split}" + ("-full_size" if full_size else "")
    if compare is not None:
        compare_run = compare.parent.parent if compare.parent.name == "checkpoints" else compare.parent
        name += f"-vs-{compare_run.name}-{compare.stem}"
    return run / name


def load_checkpoint(path: str, flag: str, class_names: list[str], data: str) -> dict:
    """The checkpoint at `path` (named by `flag` in errors), which must have been trained on `class_names`."""
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointReadError as error:
        raise SystemExit(f"error: {flag}: {error}") from error
    saved = list((checkpoint.get("hyper_parameters") or {}).get("class_names") or [])
    if saved and saved != class_names:
        raise SystemExit(
            f"error: {flag} {path} was trained on the classes {saved} but the data ({data}) has {class_names}"
        )
    return checkpoint


def evaluate_main(args: ArgsType = None) -> int:
    """Run `unetskip evaluate` on `args`; return the exit status (0)."""
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        kwargs = CLI_KWARGS | {"parser_kwargs": CLI_KWARGS["parser_kwargs"] | {"prog": "unetskip evaluate"}}
        cli = EvaluateCLI(SegmentationModule, LightningDataModule, args=args, run=False, **kwargs)
    config, datamodule, model = cli.config, cli.datamodule, cli.model
    root = Path(datamodule.root)
    data = f"{config.data.class_path} at {root}"
    ckpt_path = Path(config.ckpt_path)
    compare_path = Path(config.compare_ckpt_path) if config.compare_ckpt_path else None
    folder = (
        Path(config.output)
        if config.output
        else default_output(ckpt_path, config.split, config.full_size, compare_path)
    )
    checkpoint = load_checkpoint(config.ckpt_path, "--ckpt_path", datamodule.class_names, data)
    try:
        model.on_load_checkpoint(checkpoint)
        model.load_state_dict(checkpoint["state_dict"])
        models = [model]
        if compare_path is not None:
            other = load_checkpoint(str(compare_path), "--compare_ckpt_path", datamodule.class_names, data)
            models.append(SegmentationModule.from_checkpoint(other))
    except (IncompatibleCheckpointError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
    if folder.exists() and not config.overwrite:
        raise SystemExit(f"error: the output folder {folder} exists: pass --overwrite or choose --output")
    if config.sort_by not in score_keys(datamodule.class_names):
        keys = ", ".join(score_keys(datamodule.class_names))
        raise SystemExit(f"error: --sort_by {config.sort_by!r} is not a score; the scores are {keys}")
    try:
        datamodule.setup(SETUP_STAGE[config.split])
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
    dataset = datamodule.datasets[config.split]
    if len(dataset) == 0:
        raise SystemExit(f"error: the {config.split} split of {data} holds no image")
    full_size = parse_image_size(datamodule.image_size) if config.full_size else None
    if full_size is not None:
        dataset = full_size_view(dataset)

    device = cli.trainer.strategy.root_device
    for net in models:
        net.to(device).eval()
    num_workers = default_num_workers() if datamodule.num_workers is None else datamodule.num_workers
    evaluations = [Evaluation(datamodule.class_names, model.hparams.ignore_index) for _ in models]
    skipped = dropped_samples(datamodule, config.split, dataset)

    def run(indices: list[int] | None, on_skip: Callable[[int, str], None]) -> Iterator[PredictedImage]:
        """Every image of the split (`indices` None) or those `indices` of the dataset, predicted."""
        return predict_samples(
            models,
            dataset if indices is None else subset(dataset, indices),
            datamodule.batch_size,
            num_workers,
            device,
            cli.trainer.precision_plugin.forward_context,
            full_size,
            on_skip,
        )

    def on_skip(index: int, reason: str) -> None:
        skipped.append((sample_path(dataset, index, root), reason))

    indices = []
    for predicted in run(None, on_skip):
        indices.append(predicted.index)
        for evaluation, pred in zip(evaluations, predicted.preds, strict=True):
            evaluation.add(
                sample_path(dataset, predicted.index, root), pred, predicted.target, predicted.border
            )
    if not indices:
        raise SystemExit(f"error: no image of the {config.split} split of {data} could be read")

    def render(chosen: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]:
        """The images at positions `chosen` among the scored ones, predicted again for a gallery."""
        return [
            (p.image, p.target.numpy(), [pred.numpy() for pred in p.preds])
            for p in run([indices[i] for i in chosen], on_skip)
        ]

    about = {
        "checkpoint": str(ckpt_path),
        "compare_checkpoint": str(compare_path) if compare_path else None,
        "data": config.data.as_dict(),
        "split": config.split,
        "size": "original" if full_size else "x".join(map(str, parse_image_size(datamodule.image_size))),
    }
    try:
        report = Report(
            folder,
            evaluations[0],
            about,
            render,
            config.sort_by,
            config.num_worst,
            evaluations[1] if compare_path else None,
            skipped,
            config.bootstrap_samples,
            config.bootstrap_seed,
        )
    except ValueError as error:
        raise SystemExit(f"error: {error}") from error
    prepare_output(folder, config.overwrite)
    lines = report.write(cli.trainer.loggers)
    wandb.finish()
    print("\n".join(lines))
    print(f"evaluate took {time.perf_counter() - started:.1f} s")
    return 0
