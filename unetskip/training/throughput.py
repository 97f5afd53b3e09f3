"""Callbacks that measure training as the user experiences it."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class TrainThroughput(L.Callback):
    """Logs `train/img_per_sec` every epoch: training images over wall time, data loading included.

    The clock runs from the start of the epoch's first batch fetch to the end of its last optimizer
    step; validation, which Lightning runs after the last training batch, is not counted.

    Lightning's `ThroughputMonitor` measures something else, so it does not replace this: it logs per
    step, straight to the loggers (no per-epoch value in `callback_metrics`), the rate over a sliding
    window of `window_size` batches (none at all until 100 batches by default) measured between batch
    ends, so the first batch's loading (worker start-up) is left out, while the time spent between
    epochs (checkpoint writes) is counted; it also needs a `batch_size_fn` and warns on every fit when
    the module has no `flops_per_batch`.
    """

    def __init__(self) -> None:
        self.images = 0
        self.seconds = 0.0
        self._last = 0.0
        self._paused_at = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.images, self.seconds, self._last = 0, 0.0, time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Any],
        batch_idx: int,
    ) -> None:
        now = time.perf_counter()
        self.seconds += now - self._last
        self._last = now
        self.images += len(batch["image"])

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._paused_at = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation inside an epoch (val_check_interval < 1) must not count as training time.
        self._last += time.perf_counter() - self._paused_at

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.seconds > 0:
            pl_module.log("train/img_per_sec", self.images / self.seconds)
