"""Class paths that moved when the package was split into subpackages (unetskip 0.1 -> 0.2), and their new
names: checkpoints written before the move are read with the new names, and a config file or flag that
still names an old one stops with one line saying what to write instead."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MOVED = {
    "unetskip.wandb_logger.AutoOfflineWandbLogger": "unetskip.runs.AutoOfflineWandbLogger",
    "unetskip.checkpointing.AtomicCheckpointIO": "unetskip.runs.AtomicCheckpointIO",
    "unetskip.checkpointing.LastCheckpoint": "unetskip.runs.LastCheckpoint",
    "unetskip.run_config.RunConfigCallback": "unetskip.runs.run_config.RunConfigCallback",
    "unetskip.callbacks.TrainThroughput": "unetskip.training.TrainThroughput",
    "unetskip.guards.StopOnNonFiniteLoss": "unetskip.training.StopOnNonFiniteLoss",
    "unetskip.acceleration.ChannelsLast": "unetskip.training.ChannelsLast",
    "unetskip.acceleration.CompileNet": "unetskip.training.CompileNet",
    "unetskip.averaging.EMAWeights": "unetskip.training.EMAWeights",
    "unetskip.gradient_flow.StageGradientNorms": "unetskip.training.StageGradientNorms",
    "unetskip.mask_overlays.ValidationMaskOverlays": "unetskip.training.ValidationMaskOverlays",
    "unetskip.segmentation_module.SegmentationModule": "unetskip.training.SegmentationModule",
    "unetskip.inference.Inferer": "unetskip.predict.Inferer",
    "unetskip.prediction.MaskWriter": "unetskip.predict.MaskWriter",
    "unetskip.data.datamodule.OxfordPetDataModule": "unetskip.data.OxfordPetDataModule",
    "unetskip.data.loaders.SegmentationDataModule": (
        "unetskip.data.segmentation_datamodule.SegmentationDataModule"
    ),
}
CLASS_PATH = re.compile(r"unetskip(?:\.\w+)+")


def renamed(value: Any) -> Any:
    """`value` (nested dicts and lists, e.g. a checkpoint's hyperparameters) with every old class path
    replaced by its new name."""
    if isinstance(value, dict):
        return {key: renamed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [renamed(item) for item in value]
    return MOVED.get(value, value) if isinstance(value, str) else value


def moved_in(texts: Iterable[str]) -> list[str]:
    """The old class paths named in `texts` (config files, flags), in order, each once."""
    found = [path for text in texts for path in CLASS_PATH.findall(text) if path in MOVED]
    return list(dict.fromkeys(found))
