"""The upstream behaviours that unetskip.compat works around or relies on, pinned: a test here fails when a
Lightning or wandb release changes one, naming the workaround to revisit or drop."""

from __future__ import annotations

import pytest
import torch
import wandb
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel
from lightning.pytorch.loggers import WandbLogger
from torch import nn

from unetskip import compat
from unetskip.compat import WANDB_INIT_ATTRIBUTE
from unetskip.runs.wandb_logger import AutoOfflineWandbLogger


class SizedModel(BoringModel):
    """A model with one hyperparameter, and a record of whether LightningCLI gave it its config."""

    def __init__(self, size: int = 1, net: nn.Module | None = None) -> None:
        super().__init__()
        self.config_given = compat.lightning_cli_config_given()
        self.save_hyperparameters(ignore=None if self.config_given else ["net"])


class ParsedConfig(Exception):
    """Stops a CLI after parsing, carrying its config."""


def parsed_model_size(cli_class: type[LightningCLI], ckpt_path: str) -> int:
    """`model.size` as `cli_class` parses `test --ckpt_path CKPT --model.size 5` (the checkpoint has 3)."""

    class Probe(cli_class):
        def before_instantiate_classes(self) -> None:
            raise ParsedConfig(self.config.test.model.size)

    with pytest.raises(ParsedConfig) as stopped:
        Probe(SizedModel, BoringDataModule, args=["test", "--ckpt_path", ckpt_path, "--model.size", "5"])
    return stopped.value.args[0]


def test_the_installed_lightning_is_one_the_workarounds_were_checked_against():
    low, high = compat.CHECKED_LIGHTNING
    assert compat.CHECKED, (
        f"Lightning {compat.LIGHTNING_VERSION} is outside {low} <= version < {high}: check each workaround "
        "of unetskip/compat.py against it (the tests below), then widen CHECKED_LIGHTNING"
    )


def test_lightning_still_parses_checkpoint_hyperparameters_over_flags(tmp_path):
    """Lightning-AI/pytorch-lightning#21455: when this fails, Lightning keeps the flags itself and
    CheckpointArgumentsKeptCLI._parse_ckpt_path can go."""
    torch.save({"hyper_parameters": {"size": 3}}, tmp_path / "model.ckpt")
    assert parsed_model_size(LightningCLI, str(tmp_path / "model.ckpt")) == 3


def test_the_workaround_keeps_the_flags(tmp_path):
    torch.save({"hyper_parameters": {"size": 3}}, tmp_path / "model.ckpt")
    assert parsed_model_size(compat.CheckpointArgumentsKeptCLI, str(tmp_path / "model.ckpt")) == 5


def test_lightning_cli_gives_modules_its_config_as_hyperparameters():
    """Lightning-AI/pytorch-lightning#20726: under LightningCLI `save_hyperparameters()` records the parsed
    config (a network as class_path and init_args), and `lightning_cli_config_given` says so."""
    cli = LightningCLI(
        SizedModel,
        BoringDataModule,
        args=["--model.size", "4", "--model.net", "torch.nn.Linear", "--model.net.in_features", "2"]
        + ["--model.net.out_features", "3"],
        run=False,
    )
    assert cli.model.config_given is True
    assert cli.model.hparams["size"] == 4
    assert cli.model.hparams["net"]["class_path"] == "torch.nn.Linear"
    assert cli.model.hparams["net"]["init_args"]["out_features"] == 3
    built = SizedModel(size=4, net=nn.Linear(2, 3))
    assert built.config_given is False and "net" not in built.hparams


def init_arguments(logger: WandbLogger, monkeypatch) -> dict:
    """The keyword arguments `logger` passes to wandb.init when its run starts."""
    received = {}

    def fake_init(**kwargs):
        received.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(wandb, "init", fake_init)
    with pytest.raises(RuntimeError, match="stop here"):
        logger.experiment  # noqa: B018 (the property starts the run)
    return received


def test_lightning_wandb_logger_still_passes_anonymous(tmp_path, monkeypatch):
    logger = WandbLogger(save_dir=str(tmp_path), offline=False)
    assert "anonymous" in getattr(logger, WANDB_INIT_ATTRIBUTE)
    assert init_arguments(logger, monkeypatch)["anonymous"] is None


def test_our_logger_passes_no_anonymous_and_its_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    received = init_arguments(AutoOfflineWandbLogger(save_dir=str(tmp_path), project="p"), monkeypatch)
    assert "anonymous" not in received
    assert (received["mode"], received["project"], received["dir"]) == ("offline", "p", str(tmp_path))
