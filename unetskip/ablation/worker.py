"""One run of the study, in its own process: fit, test the best checkpoint, write `result.json`.

    python -m unetskip.ablation.worker RUN_DIR --variant NAME --group GROUP [--threads N] -- CLI_ARGS...

CLI_ARGS are the arguments of `python -m unetskip fit` without the subcommand (configs and overrides).
Everything the run writes goes to RUN_DIR: the study's CSVLogger (`metrics.csv`, `config.yaml`),
`checkpoints/`, and W&B's files when a WandbLogger is configured (its run is put in GROUP). `result.json`
is written last, atomically: its presence marks a finished run. The training loss per epoch is the
CSVLogger's `train/loss_epoch`. `--threads` sets torch's intra-op thread count (the float order).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
import wandb
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import ArgsType
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from unetskip.ablation.depth import conv_layers
from unetskip.cli.lightning_cli import CLI_KWARGS, UnetSkipCLI
from unetskip.training.module import SegmentationModule

RESULT_FILE = "result.json"
CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"


def configured_class(entry: Namespace) -> type:
    """The class a parsed `class_path` entry names."""
    module, _, name = entry.class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def study_loggers(logger: object, run_dir: Path, group: str, name: str) -> list[Namespace]:
    """The parsed `trainer.logger` setting rewired for a study run.

    The study's own CSVLogger writing straight into `run_dir` comes first (so checkpoints and
    `config.yaml` land there too) and replaces any CSVLogger of the config. Every other logger is kept,
    with its `save_dir` moved to `run_dir`; a WandbLogger (or subclass) is also named `name` and put in
    `group`. `True` (Lightning's default logger), `False` and `None` leave the study's CSVLogger alone.
    """
    entries = logger if isinstance(logger, list) else [logger]
    kept = []
    for entry in entries:
        if not isinstance(entry, Namespace) or issubclass(configured_class(entry), CSVLogger):
            continue
        if "save_dir" in entry.get("init_args", Namespace()):
            entry.init_args.save_dir = str(run_dir)
        if issubclass(configured_class(entry), WandbLogger):
            entry.init_args.group = group
            entry.init_args.name = name
        kept.append(entry)
    own = Namespace(class_path=CSV_LOGGER, init_args=Namespace(save_dir=str(run_dir), name="", version=""))
    return [own, *kept]


class StudyCLI(UnetSkipCLI):
    """The project's CLI, built without running a subcommand, with its output moved into `run_dir`."""

    def __init__(self, args: ArgsType, run_dir: Path, group: str, name: str) -> None:
        self.run_dir, self.group, self.name = run_dir, group, name
        super().__init__(SegmentationModule, L.LightningDataModule, args=args, run=False, **CLI_KWARGS)

    def before_instantiate_classes(self) -> None:
        super().before_instantiate_classes()
        trainer = self.config.trainer
        trainer.default_root_dir = str(self.run_dir)
        trainer.logger = study_loggers(trainer.logger, self.run_dir, self.group, self.name)
        for callback in trainer.callbacks or []:
            if issubclass(configured_class(callback), ModelCheckpoint):
                callback.init_args.dirpath = None  # under the first logger: run_dir/checkpoints


def finite_floats(metrics: dict[str, object]) -> dict[str, float | None]:
    """Metric values as plain floats (NaN becomes None in JSON)."""
    values = {key: float(value) for key, value in metrics.items()}
    return {key: (value if math.isfinite(value) else None) for key, value in values.items()}


def train_and_test(run_dir: Path, variant: str, group: str, cli_args: list[str]) -> dict[str, object]:
    """Fit, then test the best checkpoint (the final weights without a ModelCheckpoint); write and
    return the run's `result.json`. (Lightning exits the process when the user stops the fit.)"""
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cli = StudyCLI(cli_args, run_dir, group, run_dir.name)
    trainer, model = cli.trainer, cli.model
    start = time.perf_counter()
    trainer.fit(model, datamodule=cli.datamodule)
    wall_time = time.perf_counter() - start
    checkpoint = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if not checkpoint:
        checkpoint = str(run_dir / "checkpoints" / "final.ckpt")
        trainer.save_checkpoint(checkpoint)
    test_metrics = trainer.test(model, datamodule=cli.datamodule, ckpt_path=checkpoint, verbose=False)[0]
    result = {
        "variant": variant,
        "skip_connections": getattr(model.net, "skip_connections", None),
        "residual": getattr(model.net, "residual", None),
        "seed": cli.config.seed_everything,
        "blocks_per_stage": cli.config.model.net.get("init_args", Namespace()).get("blocks_per_stage"),
        "conv_layers": conv_layers(model.net),
        "threads": torch.get_num_threads(),
        "epochs": trainer.current_epoch,
        "params": sum(p.numel() for p in model.net.parameters()),
        "wall_time_s": wall_time,
        "checkpoint": str(Path(checkpoint).relative_to(run_dir)),
        "test": finite_floats(test_metrics),
    }
    if any(isinstance(logger, WandbLogger) for logger in trainer.loggers):
        wandb.finish()  # one W&B run per grid point, even when several run in one process
    partial = run_dir / f"{RESULT_FILE}.partial"
    partial.write_text(json.dumps(result, indent=2) + "\n")
    partial.replace(run_dir / RESULT_FILE)
    return result


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    own, cli_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--variant", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    args = parser.parse_args(own)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    # The study made RUN_DIR and its train.log; CSVLogger would warn about that "not empty" folder.
    warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")
    train_and_test(args.run_dir, args.variant, args.group, cli_args)


if __name__ == "__main__":
    main()
