"""A run on disk: its folder and saved config, its checkpoints (written atomically, read in one place),
resuming it, and the W&B logger that goes offline on its own."""

from unetskip.runs.checkpointing import AtomicCheckpointIO, LastCheckpoint
from unetskip.runs.wandb_logger import AutoOfflineWandbLogger

__all__ = ["AtomicCheckpointIO", "AutoOfflineWandbLogger", "LastCheckpoint"]
