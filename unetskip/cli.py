"""The command line: LightningCLI with fit, validate, test and predict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

from unetskip.data.datamodule import OxfordPetDataModule
from unetskip.data.oxford_pet import class_names_for
from unetskip.segmentation_module import SegmentationModule

# Model arguments that the parser fills from `data` (see `add_arguments_to_parser`).
LINKED_MODEL_KEYS = ("class_names", "ignore_index")
# Subcommands that may take their whole model and data configuration from a checkpoint.
FROM_CHECKPOINT_SUBCOMMANDS = ("validate", "test", "predict")


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
        if group == "model":
            for linked in LINKED_MODEL_KEYS:
                hparams.pop(linked, None)
        if hparams:
            args += [f"--{group}", json.dumps(hparams)]
    return args


class UnetSkipCLI(LightningCLI):
    """LightningCLI whose model follows the data's mask mode, and whose validate, test and predict
    rebuild the model and data settings from `--ckpt_path` alone (later flags still override them)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.mask_mode", "model.class_names", compute_fn=class_names_for)
        parser.link_arguments("data.ignore_index", "model.ignore_index")

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        argv = sys.argv[1:] if args is None else args
        if isinstance(argv, list) and argv and argv[0] in FROM_CHECKPOINT_SUBCOMMANDS:
            ckpt_path = find_ckpt_path(argv)
            if ckpt_path and Path(ckpt_path).is_file():
                argv = [argv[0], *checkpoint_config_args(ckpt_path), *argv[1:]]
                self.config = parser.parse_args(argv)
                return
        super().parse_arguments(parser, args)


# The LightningCLI settings of every UnetSkipCLI (the ablation study builds its own subclass with them).
CLI_KWARGS = {
    "save_config_kwargs": {"overwrite": True},
    # omegaconf+ resolves ${...} interpolations after all configs and flags are merged, so a
    # scheduler length can follow --trainer.max_epochs.
    "parser_kwargs": {"parser_mode": "omegaconf+"},
}


def cli_main(args: ArgsType = None) -> UnetSkipCLI:
    """Run the CLI on `args` (a list of strings, or None for sys.argv)."""
    return UnetSkipCLI(SegmentationModule, OxfordPetDataModule, args=args, **CLI_KWARGS)
