"""Guards that stop a run early with a message that says what went wrong and what is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(L.Callback):
    """Stops training at the first NaN or infinite training loss, before that step changes the weights.

    The error names the step and the last checkpoint written, which holds the state before it (no
    checkpoint is written after the bad step); resume from it with `fit --ckpt_path last` once the
    cause (learning rate, data, precision) is fixed.
    """

    def __init__(self) -> None:
        self.batch_idx = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.batch_idx = batch_idx

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        if torch.isfinite(loss).all():
            return
        kept = "no checkpoint had been written yet"
        if saved := written_checkpoints(trainer):
            kept = f"the last good checkpoint is {max(saved, key=lambda path: path.stat().st_mtime)}"
        raise NonFiniteLossError(
            f"the training loss is {loss.detach().float().item()} at global step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}, batch {self.batch_idx}); stopped before applying this step, "
            f"{kept}. Lower the learning rate, check the data or use 32-bit precision, then resume with "
            "fit --ckpt_path last"
        )


def written_checkpoints(trainer: L.Trainer) -> list[Path]:
    """The checkpoint files that the trainer's checkpoint callbacks have written and that still exist."""
    paths = set()
    for callback in trainer.checkpoint_callbacks:
        paths |= {getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", "")}
    return [Path(path) for path in paths if path and Path(path).is_file()]


def require_accelerator(accelerator: Any) -> None:
    """Raise SystemExit with a clear message when `trainer.accelerator` names a device this machine lacks."""
    if not isinstance(accelerator, str):
        return
    name = accelerator.lower()
    if name in ("gpu", "cuda") and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "without CUDA"
        raise SystemExit(
            f"error: trainer.accelerator={accelerator!r} asks for a CUDA GPU, but this machine has none that "
            f"torch can use (torch {torch.__version__}, built {build}; torch.cuda.is_available() is False). "
            "Run on a machine with a GPU, or pass --trainer.accelerator cpu (or auto)."
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise SystemExit(
            f"error: trainer.accelerator={accelerator!r} asks for an Apple GPU (MPS), which this machine "
            "does not have. Pass --trainer.accelerator cpu (or auto)."
        )
