"""The command line: LightningCLI with fit, validate, test and predict."""

from __future__ import annotations

import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
import wandb
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from torch import nn

from unetskip.acceleration import default_precision
from unetskip.checkpointing import LastCheckpoint
from unetskip.gradient_flow import StageGradientNorms
from unetskip.guards import require_accelerator
from unetskip.mask_overlays import ValidationMaskOverlays
from unetskip.prediction import add_predict_arguments, prepare_predict
from unetskip.resume import resume_run
from unetskip.run_config import RunConfigCallback, name_loggers
from unetskip.segmentation_module import SegmentationModule

# Model arguments that the parser fills from the instantiated DataModule's attributes of the same names
# (see `add_arguments_to_parser`): every DataModule the CLI builds exposes them.
LINKED_MODEL_KEYS = ("class_names", "ignore_index")
# The DataModule of configs that name none, and of checkpoints written before `data.class_path` existed.
DEFAULT_DATA_CLASS = "unetskip.data.OxfordPetDataModule"
# Data arguments that the parser fills from `seed_everything`.
LINKED_DATA_KEYS = ("seed",)
# Subcommands that may take their whole model and data configuration from a checkpoint.
FROM_CHECKPOINT_SUBCOMMANDS = ("validate", "test", "predict")
# Lightning's warnings about the training callbacks' state saved in a checkpoint (which ModelCheckpoint
# wrote, where), meaningless when the checkpoint is only evaluated: validate, test, predict.
TRAINING_STATE_WARNINGS = (
    "Be aware that when using `ckpt_path`, callbacks used to create the checkpoint",
    "The dirpath has changed from",
)


def data_seed(seed_everything: bool | int) -> int | None:
    """`data.seed` from `seed_everything`: its value, or None (the data follows torch's seed) for a bool."""
    return None if isinstance(seed_everything, bool) else seed_everything


def find_ckpt_path(argv: list[str]) -> str | None:
    """The value of `--ckpt_path X` or `--ckpt_path=X` in `argv`, if any."""
    for i, arg in enumerate(argv):
        if arg == "--ckpt_path" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--ckpt_path="):
            return arg.split("=", 1)[1]
    return None


def checkpoint_config_args(ckpt_path: str) -> list[str]:
    """`--model JSON --data JSON` holding the configuration saved in a checkpoint.

    The checkpoint is read with `weights_only=True`: only its plain hyperparameter dicts are used.
    """
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 (any unpickling error means the same to the user)
        raise SystemExit(f"error: could not read checkpoint {ckpt_path}: {error}") from error
    args = []
    for group, key in (("model", "hyper_parameters"), ("data", "datamodule_hyper_parameters")):
        hparams = dict(checkpoint.get(key) or {})
        hparams.pop("_instantiator", None)
        for linked in LINKED_MODEL_KEYS if group == "model" else LINKED_DATA_KEYS:
            hparams.pop(linked, None)
        if group == "data" and hparams:
            # Lightning records a subclass's class_path as `_class_path`; older checkpoints have none.
            class_path = hparams.pop("_class_path", DEFAULT_DATA_CLASS)
            hparams = {"class_path": class_path, "init_args": hparams}
        if hparams:
            args += [f"--{group}", json.dumps(hparams)]
    return args


class UnetSkipCLI(LightningCLI):
    """LightningCLI whose model follows the data's mask mode, and whose validate, test and predict
    rebuild the model and data settings from `--ckpt_path` alone (later flags still override them).

    Checkpoints are loaded with `weights_only=True` unless `--weights_only false` is given; `fit
    --ckpt_path last` resumes the newest run of the configured logger (see `unetskip.resume`).
    `predict` segments arbitrary images (`--input`, `--output`; see unetskip.prediction).
    `trainer.precision: null` picks bf16-mixed on a CUDA GPU that supports it, else 32-true (16-mixed on
    other CUDA GPUs for predict).
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.set_defaults({"data": {"class_path": DEFAULT_DATA_CLASS}})
        for key in LINKED_MODEL_KEYS:
            parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")
        # Callbacks with their own config keys (--mask_overlays.num_images, --gradient_norms.every_n_steps).
        parser.add_lightning_class_args(ValidationMaskOverlays, "mask_overlays")
        parser.add_lightning_class_args(StageGradientNorms, "gradient_norms")
        parser.link_arguments("seed_everything", "data.init_args.seed", compute_fn=data_seed)
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")

    def _parse_ckpt_path(self) -> None:
        """Nothing: LightningCLI would parse the checkpoint's model hyperparameters over the command line,
        silently undoing flags such as --model.net.skip_connections. validate, test and predict already
        take them from the checkpoint, under the flags (`parse_arguments`); fit keeps its config, and a
        checkpoint that does not fit it stops with what differs (SegmentationModule.on_load_checkpoint)."""

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
        name_loggers(config, self.subcommand)
        require_accelerator(config.trainer.accelerator)
        config.trainer.precision = default_precision(
            config.trainer.precision, config.trainer.accelerator, fp16_fallback=self.subcommand == "predict"
        )
        if self.subcommand and config.get("weights_only") is None:
            config.weights_only = True  # tensors and plain containers only: loading runs no code
        if self.subcommand == "fit":
            resume_run(config)
        if self.subcommand in FROM_CHECKPOINT_SUBCOMMANDS:
            for message in TRAINING_STATE_WARNINGS:
                warnings.filterwarnings("ignore", message=re.escape(message))

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        argv = sys.argv[1:] if args is None else args
        if isinstance(argv, list) and argv and argv[0] in FROM_CHECKPOINT_SUBCOMMANDS:
            ckpt_path = find_ckpt_path(argv)
            if argv[0] == "predict" and not ckpt_path and not {"-h", "--help"} & set(argv):
                raise SystemExit(
                    "error: predict needs --ckpt_path: the checkpoint holds the model and weights"
                )
            if ckpt_path and not Path(ckpt_path).is_file():
                raise SystemExit(f"error: --ckpt_path {ckpt_path} is not a file")
            if ckpt_path:
                argv = [argv[0], *checkpoint_config_args(ckpt_path), *argv[1:]]
                self.config = parser.parse_args(argv)
                return
        super().parse_arguments(parser, args)

    def after_fit(self) -> None:
        # One W&B run per subcommand: a later cli_main in this process (tests, notebooks) starts its own
        # run instead of WandbLogger reusing this one.
        wandb.finish()

    after_validate = after_test = after_predict = after_fit

    def _prepare_subcommand_parser(
        self, klass: type, subcommand: str, **kwargs: Any
    ) -> LightningArgumentParser:
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "predict":
            add_predict_arguments(parser)
        return parser

    def predict(
        self,
        model: nn.Module,
        datamodule: L.LightningDataModule,
        ckpt_path: str | None = None,
        return_predictions: bool | None = None,
        weights_only: bool | None = None,
    ) -> None:
        """Masks for the images of `--input`, written under `--output` (see unetskip.prediction).

        Replaces `Trainer.predict` for the predict subcommand and takes its arguments; predictions are
        written batch by batch and never returned (`return_predictions` is ignored)."""
        options = self.config_init["predict"]
        try:
            writer = prepare_predict(self.trainer, model, datamodule, ckpt_path, options)
        except (ValueError, FileNotFoundError) as error:
            raise SystemExit(f"error: {error}") from error
        # Never keeping predictions keeps memory independent of the number of images.
        self.trainer.predict(
            model,
            datamodule=datamodule,
            ckpt_path=ckpt_path,
            return_predictions=False,
            weights_only=weights_only,
        )
        if self.trainer.is_global_zero:
            print(writer.summary())
        if options.strict and writer.skipped:
            raise SystemExit(1)


# The LightningCLI settings of every UnetSkipCLI (the ablation study builds its own subclass with them).
CLI_KWARGS = {
    "save_config_callback": RunConfigCallback,
    # Commands run without a config (test --ckpt_path ...) log under runs/ too, not the working dir.
    "trainer_defaults": {"default_root_dir": "runs"},
    # omegaconf+ resolves ${...} interpolations after all configs and flags are merged, so a
    # scheduler length can follow --trainer.max_epochs.
    "parser_kwargs": {"parser_mode": "omegaconf+"},
    # `data` is any LightningDataModule, chosen by `data.class_path` (default DEFAULT_DATA_CLASS).
    "subclass_mode_data": True,
}


def cli_main(args: ArgsType = None) -> UnetSkipCLI:
    """Run the CLI on `args` (a list of strings, or None for sys.argv)."""
    return UnetSkipCLI(SegmentationModule, L.LightningDataModule, args=args, **CLI_KWARGS)


def main() -> None:
    """The `unetskip` console script: the CLI on sys.argv. It returns None, so a finished run exits with
    status 0 (a console script passes its return value to sys.exit, which treats an object as failure).
    `unetskip check-data ...` runs the data check instead (exit status: see unetskip.check_data)."""
    if sys.argv[1:2] == ["check-data"]:
        from unetskip.check_data import check_data_main  # it builds on this module

        sys.exit(check_data_main(sys.argv[2:]))
    cli_main()
