"""LightningCLI with fit, validate, test and predict: data chosen by `data.class_path`, and validate, test
and predict rebuilt from a checkpoint alone."""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import wandb
from jsonargparse import Namespace, dict_to_namespace
from lightning.pytorch.cli import ArgsType, LightningArgumentParser

from unetskip.cli.class_paths import import_class
from unetskip.cli.console import TRAINER_DEFAULTS, class_table, quiet_console
from unetskip.compat import CheckpointArgumentsKeptCLI
from unetskip.models.class_count import set_class_count
from unetskip.predict.options import add_predict_arguments
from unetskip.predict.writer import MaskWriter
from unetskip.runs.checkpoint_file import CheckpointReadError, read_checkpoint
from unetskip.runs.checkpointing import LastCheckpoint
from unetskip.runs.moved_paths import MOVED, moved_in
from unetskip.runs.resume import resume_run
from unetskip.runs.run_config import RunConfigCallback, name_loggers
from unetskip.training.acceleration import default_precision
from unetskip.training.gradient_flow import StageGradientNorms
from unetskip.training.guards import require_accelerator
from unetskip.training.mask_overlays import ValidationMaskOverlays
from unetskip.training.module import SegmentationModule

SUBCOMMANDS = ("fit", "validate", "test", "predict")
# Subcommands that may take their whole model and data configuration from a checkpoint.
FROM_CHECKPOINT_SUBCOMMANDS = ("validate", "test", "predict")
# Model arguments that the parser fills from the instantiated DataModule's attributes of the same names
# (see `add_arguments_to_parser`): every DataModule the CLI builds exposes them. Predict takes them from
# the checkpoint instead, with model.inferer, which its options fill.
LINKED_MODEL_KEYS = ("class_names", "ignore_index")
PREDICT_LINKED_MODEL_KEYS = ("inferer",)
# Data arguments that the parser fills from `seed_everything`.
LINKED_DATA_KEYS = ("seed",)
# The DataModule of configs that name none, and of checkpoints written before `data.class_path` existed.
DEFAULT_DATA_CLASS = "unetskip.data.OxfordPetDataModule"
# The network of validate, test and predict when neither a checkpoint nor a config names one.
DEFAULT_NET_CLASS = "unetskip.models.UNet"
# What predict takes from the checkpoint's data settings (its own DataModule reads image files).
PREDICT_DATA_KEYS = ("image_size", "keep_aspect", "batch_size", "num_workers")
# Lightning's warnings about the training callbacks' state saved in a checkpoint (which ModelCheckpoint
# wrote, where), meaningless when the checkpoint is only evaluated: validate, test, predict.
TRAINING_STATE_WARNINGS = (
    "Be aware that when using `ckpt_path`, callbacks used to create the checkpoint",
    "The dirpath has changed from",
)


def data_seed(seed_everything: bool | int) -> int | None:
    """`data.seed` from `seed_everything`: its value, or None (the data follows torch's seed) for a bool."""
    return None if isinstance(seed_everything, bool) else seed_everything


def checkpoint_settings(ckpt_path: str, subcommand: str) -> Namespace:
    """The model and data configuration saved in a checkpoint, as `subcommand`'s part of the config.

    Keys that `subcommand`'s parser fills by links are left out. Predict gets an ImageFolderDataModule
    with the checkpoint's image size and batching. The checkpoint is read with `weights_only=True`: only
    its plain hyperparameter dicts are used.
    """
    try:
        checkpoint = read_checkpoint(ckpt_path, mmap=True)
    except CheckpointReadError as error:
        raise SystemExit(f"error: --ckpt_path: {error}") from error
    model = dict(checkpoint.get("hyper_parameters") or {})
    data = dict(checkpoint.get("datamodule_hyper_parameters") or {})
    for hparams in (model, data):
        hparams.pop("_instantiator", None)
    for key in PREDICT_LINKED_MODEL_KEYS if subcommand == "predict" else LINKED_MODEL_KEYS:
        model.pop(key, None)
    if subcommand == "predict":
        data = {"class_path": "unetskip.data.ImageFolderDataModule"} | {
            "init_args": {key: data[key] for key in PREDICT_DATA_KEYS if key in data}
        }
    elif data:
        for key in LINKED_DATA_KEYS:
            data.pop(key, None)
        # Lightning records a subclass's class_path as `_class_path`; older checkpoints have none.
        data = {"class_path": data.pop("_class_path", DEFAULT_DATA_CLASS), "init_args": data}
    settings = {key: value for key, value in (("model", model), ("data", data)) if value}
    return dict_to_namespace({"subcommand": subcommand, subcommand: settings})


def config_files(args: Sequence[str]) -> list[Path]:
    """The files that `--config` flags in `args` name (those that exist)."""
    named = [value for flag, value in zip(args, args[1:], strict=False) if flag == "--config"]
    named += [arg.split("=", 1)[1] for arg in args if arg.startswith("--config=")]
    return [Path(name) for name in named if Path(name).is_file()]


def stop_on_moved_class_paths(args: ArgsType) -> None:
    """Stop with one line when a flag or a `--config` file names a class path of before the subpackage
    move (a run folder's saved config.yaml, say), naming the old path and the new one."""
    if not isinstance(args, (list, tuple)):
        return  # a dict or Namespace from Python: jsonargparse names what it cannot import
    sources = [(f"--config {path}", path.read_text()) for path in config_files(args)]
    sources.append(("a flag", " ".join(args)))
    for where, text in sources:
        moved = moved_in([text])
        if moved:
            more = f" (and {len(moved) - 1} more moved path(s))" if len(moved) > 1 else ""
            raise SystemExit(f"error: {where}: {moved[0]} is now {MOVED[moved[0]]}; replace it{more}")


def link_class_count(config: Namespace) -> None:
    """Set `model.net`'s class count (`num_classes`, smp's `classes`) to the number of the data's classes,
    or stop with one line naming both keys when the config sets another (see
    `unetskip.models.class_count`). A DataModule without `class_names_from` leaves the network as set."""
    data_class = import_class(config.data.class_path, "data")
    class_names_from = getattr(data_class, "class_names_from", None)
    net = config.model.get("net")
    if class_names_from is None or not isinstance(net, Namespace) or "class_path" not in net:
        return
    if net.get("init_args") is None:
        net.init_args = Namespace()
    try:
        net_class = import_class(net.class_path, "model.net")
        set_class_count(net_class, net.init_args, class_names_from(config.data.init_args))
    except ValueError as error:
        raise SystemExit(f"error: {error}") from error


class SubcommandParser(LightningArgumentParser):
    """A LightningArgumentParser that knows the subcommand it parses (`command`; None: the main parser), so
    that `UnetSkipCLI.add_arguments_to_parser` can give each subcommand its own arguments. LightningCLI
    passes `command` from its `parser_kwargs` (see CLI_KWARGS)."""

    def __init__(self, *args: Any, command: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.command = command


class UnetSkipCLI(CheckpointArgumentsKeptCLI):
    """LightningCLI whose data is chosen by `data.class_path` and gives the model its classes, and whose
    validate, test and predict rebuild the model and data settings from `ckpt_path` alone (given as a
    flag or in a config file; flags and config files still override them). Their `model.net` defaults to
    `unetskip.models.UNet`, so that the first parse, which finds `ckpt_path`, needs no network config.

    Checkpoints are loaded with `weights_only=True` unless `--weights_only false` is given; `fit
    --ckpt_path last` resumes the newest run of the configured logger (see `unetskip.runs.resume`).
    `predict` segments arbitrary images (`--input`, `--output`): its options configure an
    ImageFolderDataModule, the model's inferer and a MaskWriter (see unetskip.predict).
    `trainer.precision: null` picks bf16-mixed on a CUDA GPU that supports it, else 32-true (16-mixed on
    other CUDA GPUs for predict).
    """

    def setup_parser(
        self, add_subcommands: bool, main_kwargs: dict[str, Any], subparser_kwargs: dict[str, Any]
    ) -> None:
        quiet_console()  # LightningCLI's first hook: before the seed, the trainer or W&B log anything
        super().setup_parser(add_subcommands, main_kwargs, subparser_kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        subcommand = parser.command if isinstance(parser, SubcommandParser) else None
        parser.set_defaults({"data": {"class_path": DEFAULT_DATA_CLASS}})
        if subcommand in FROM_CHECKPOINT_SUBCOMMANDS:
            parser.set_defaults({"model.net": {"class_path": DEFAULT_NET_CLASS}})
        if subcommand == "predict":
            add_predict_arguments(parser)
            return
        for key in LINKED_MODEL_KEYS:
            parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")
        parser.link_arguments("seed_everything", "data.init_args.seed", compute_fn=data_seed)
        # Callbacks with their own config keys (--mask_overlays.num_images, --gradient_norms.every_n_steps).
        parser.add_lightning_class_args(ValidationMaskOverlays, "mask_overlays")
        parser.add_lightning_class_args(StageGradientNorms, "gradient_norms")
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parses `args`; for validate, test and predict with a `ckpt_path` (a flag or a config file's key),
        parses them again over the checkpoint's model and data settings, so that flags and config files
        override those and nothing else needs repeating. Then the network's class count follows the
        data's classes (predict: the checkpoint's network)."""
        stop_on_moved_class_paths(sys.argv[1:] if args is None else args)
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        if subcommand in FROM_CHECKPOINT_SUBCOMMANDS:
            self.parse_over_checkpoint(parser, args, subcommand)
        if subcommand != "predict":
            link_class_count(self.config[subcommand] if subcommand else self.config)

    def parse_over_checkpoint(self, parser: LightningArgumentParser, args: ArgsType, subcommand: str) -> None:
        """Parse `args` again over the model and data settings of the subcommand's `ckpt_path`, if any."""
        ckpt_path = self.config[subcommand].get("ckpt_path")
        if subcommand == "predict" and not ckpt_path:
            raise SystemExit("error: predict needs --ckpt_path: the checkpoint holds the model and weights")
        if not ckpt_path:
            return
        if not Path(ckpt_path).is_file():
            raise SystemExit(f"error: --ckpt_path {ckpt_path} is not a file")
        settings = checkpoint_settings(ckpt_path, subcommand)
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args, settings)
        else:
            self.config = parser.parse_args(args, namespace=settings)

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
        name_loggers(config, self.subcommand)
        require_accelerator(config.trainer.accelerator)
        config.trainer.precision = default_precision(
            config.trainer.precision, config.trainer.accelerator, fp16_fallback=self.subcommand == "predict"
        )
        if self.subcommand and config.get("weights_only") is None:
            config.weights_only = True  # tensors and plain containers only: loading runs no code
        if self.subcommand == "predict" and config.get("return_predictions") is None:
            config.return_predictions = False  # MaskWriter writes every batch: keeping them costs memory
        if self.subcommand == "fit":
            resume_run(config)
        if self.subcommand in FROM_CHECKPOINT_SUBCOMMANDS:
            for message in TRAINING_STATE_WARNINGS:
                warnings.filterwarnings("ignore", message=re.escape(message))

    def before_predict(self) -> None:
        """Names every output, or stops with a clear error before any work: no images, or an output
        folder that must not be used."""
        try:
            self.mask_writer().plan(self.datamodule.images(), self.model.class_names)
        except (ValueError, FileNotFoundError) as error:
            raise SystemExit(f"error: {error}") from error

    def after_predict(self) -> None:
        writer = self.mask_writer()
        if self.trainer.is_global_zero:
            print(writer.summary())
        self.finish_wandb()
        if self.config.predict.strict and writer.skipped:
            raise SystemExit(1)

    def mask_writer(self) -> MaskWriter:
        """The trainer's MaskWriter (predict's `mask_writer`)."""
        return next(callback for callback in self.trainer.callbacks if isinstance(callback, MaskWriter))

    def after_fit(self) -> None:
        self.print_class_table("val")
        self.finish_wandb()

    def after_validate(self) -> None:
        self.print_class_table("val")
        self.finish_wandb()

    def after_test(self) -> None:
        self.print_class_table("test")
        self.finish_wandb()

    def print_class_table(self, stage: str) -> None:
        """The per-class scores of the last `stage` epoch, on the console (rank 0)."""
        table = class_table(self.trainer.callback_metrics, stage, self.model.class_names)
        if table and self.trainer.is_global_zero:
            print(table)

    def finish_wandb(self) -> None:
        # One W&B run per subcommand: a later cli_main in this process (tests, notebooks) starts its own
        # run instead of WandbLogger reusing this one.
        wandb.finish()


# The LightningCLI settings of every UnetSkipCLI (the ablation study builds its own subclass with them).
CLI_KWARGS = {
    "save_config_callback": RunConfigCallback,
    # Commands run without a config (test --ckpt_path ...) log under runs/ too, not the working dir.
    "trainer_defaults": {"default_root_dir": "runs", **TRAINER_DEFAULTS},
    "parser_class": SubcommandParser,
    "parser_kwargs": {
        "prog": "unetskip",
        "description": "Train and evaluate (LightningCLI); `unetskip --help` lists every command.",
        # omegaconf+ resolves ${...} interpolations after all configs and flags are merged, so a
        # scheduler length can follow --trainer.max_epochs.
        "parser_mode": "omegaconf+",
        **{subcommand: {"command": subcommand} for subcommand in SUBCOMMANDS},
    },
    # `data` is any LightningDataModule, chosen by `data.class_path` (default DEFAULT_DATA_CLASS).
    "subclass_mode_data": True,
}


def cli_main(args: ArgsType = None) -> UnetSkipCLI:
    """Run the CLI on `args` (a list of strings, or None for sys.argv)."""
    return UnetSkipCLI(SegmentationModule, L.LightningDataModule, args=args, **CLI_KWARGS)
