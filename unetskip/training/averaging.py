"""An exponential moving average of the weights whose checkpoints evaluate as the average.

Lightning's `EMAWeightAveraging` saves the averaged weights as a checkpoint's `state_dict` and the raw
ones as `current_model_state`. Loading a checkpoint with the callback present, it puts the raw weights
back into the model, which is right for resuming a fit but makes `trainer.test(ckpt_path=...)` in the
fitting process (the ablation runner's) evaluate the raw weights while validation scored the average.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


class EMAWeights(EMAWeightAveraging):
    """Averages the weights and buffers after every optimizer step: `avg = decay * avg + (1 - decay) *
    weights`, so about the last `1 / (1 - decay)` steps count. Validation and the checkpoints use the
    average; validate, test and predict from a checkpoint evaluate the average in any process, and
    `fit --ckpt_path` resumes both the raw and the averaged weights."""

    def __init__(self, decay: float = 0.995, update_starting_at_step: int | None = None) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMAWeights: decay must be in [0, 1), got {decay}")
        super().__init__(decay=decay, update_starting_at_step=update_starting_at_step)
        self.decay = decay

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Outside fit the model keeps the checkpoint's state_dict: the averaged weights.
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
