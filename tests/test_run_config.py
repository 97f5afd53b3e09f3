"""Run names that say the variant, and which loggers get them; the run folder."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from unetskip.runs.run_config import name_loggers, run_folder, variant_name
from unetskip.runs.wandb_logger import AutoOfflineWandbLogger

UNET = "unetskip.models.UNet"


@pytest.mark.parametrize(
    ("net", "seed", "expected"),
    [
        (
            {"class_path": UNET, "init_args": {"skip_connections": True, "residual": True}},
            42,
            "unet-skip-residual-seed42",
        ),
        (
            {"class_path": UNET, "init_args": {"skip_connections": False, "residual": False}},
            0,
            "unet-noskip-plain-seed0",
        ),
        (
            {"class_path": UNET, "init_args": {"skip_connections": False, "residual": True}},
            False,
            "unet-noskip-residual",
        ),
        (
            {"class_path": "segmentation_models_pytorch.Unet", "init_args": {"encoder_name": "resnet34"}},
            7,
            "unet-resnet34-seed7",
        ),
    ],
)
def test_variant_name(net, seed, expected):
    assert variant_name(net, seed) == expected
    assert (
        variant_name(Namespace(class_path=net["class_path"], init_args=Namespace(**net["init_args"])), seed)
        == expected
    )


def config_with(loggers: object) -> Namespace:
    net = Namespace(class_path=UNET, init_args=Namespace(skip_connections=False, residual=True))
    return Namespace(trainer=Namespace(logger=loggers), model=Namespace(net=net), seed_everything=3)


def logger(class_path: str, name: str | None) -> Namespace:
    return Namespace(class_path=class_path, init_args=Namespace(name=name, save_dir="runs"))


def test_only_loggers_with_an_unset_name_are_named():
    loggers = [
        logger("unetskip.runs.AutoOfflineWandbLogger", None),
        logger("lightning.pytorch.loggers.CSVLogger", "lightning_logs"),
        logger("lightning.pytorch.loggers.CSVLogger", "mine"),
    ]
    name_loggers(config_with(loggers), "fit")
    assert [one.init_args.name for one in loggers] == ["unet-noskip-residual-seed3"] * 2 + ["mine"]


@pytest.mark.parametrize("value", [False, True, None])
def test_no_logger_or_lightning_default_is_left_alone(value):
    config = config_with(value)
    name_loggers(config, "fit")
    assert config.trainer.logger is value


def test_other_subcommands_get_a_suffix():
    config = config_with(logger("unetskip.runs.AutoOfflineWandbLogger", None))
    name_loggers(config, "test")
    assert config.trainer.logger.init_args.name == "unet-noskip-residual-seed3-test"


@pytest.mark.parametrize(
    ("make_logger", "expected"),
    [
        (lambda root: None, ""),
        (lambda root: CSVLogger(root / "logs", name="unet"), "logs/unet/version_0"),
        (lambda root: CSVLogger(root / "logs", name="unet", version=3), "logs/unet/version_3"),
        (lambda root: CSVLogger(root / "logs", name="unet", version="resumed"), "logs/unet/resumed"),
        (
            lambda root: AutoOfflineWandbLogger(save_dir=str(root / "w"), version="abc123"),
            "w/unetskip/abc123",
        ),
    ],
)
def test_run_folder_is_where_lightning_puts_the_checkpoints(make_logger, expected, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    logger = make_logger(tmp_path)
    folder = run_folder(logger, tmp_path)
    assert folder == tmp_path / expected
    checkpoint = ModelCheckpoint()
    trainer = L.Trainer(logger=logger or False, callbacks=[checkpoint], default_root_dir=tmp_path)
    checkpoint.setup(trainer, L.LightningModule(), "fit")
    assert Path(checkpoint.dirpath) == folder / "checkpoints"
