"""The upstream behaviour that unetskip.compat works around still holds; when one of these tests fails,
upstream changed: remove that workaround (and this test)."""

from __future__ import annotations

import pytest
import wandb
from lightning.pytorch.loggers import WandbLogger

from unetskip.compat import WANDB_INIT_ATTRIBUTE
from unetskip.wandb_logger import AutoOfflineWandbLogger


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
