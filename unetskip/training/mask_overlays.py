"""Validation images with their true and predicted masks, logged to W&B's mask panel every epoch."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import wandb
from lightning.pytorch.loggers import WandbLogger

from unetskip.data.normalization import denormalize


def wandb_logger_of(trainer: L.Trainer) -> WandbLogger | None:
    """The trainer's first WandbLogger whose run really logs (not `WANDB_MODE=disabled`), if any."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and not getattr(logger.experiment, "disabled", False):
            return logger
    return None


def mask_images(
    images: torch.Tensor,
    targets: torch.Tensor,
    predictions: torch.Tensor,
    class_labels: dict[int, str],
    captions: list[str],
) -> list[wandb.Image]:
    """One `wandb.Image` per image, with `ground_truth` and `prediction` mask layers.

    images (N, 3, H, W) normalised as in `unetskip.data.transforms`; targets and predictions (N, H, W)
    class indices. The images are denormalised to their real colours.
    """
    rgb = denormalize(images)  # (N, H, W, 3) uint8
    return [
        wandb.Image(
            rgb[k],
            caption=captions[k],
            masks={
                "ground_truth": {"mask_data": targets[k].byte().numpy(), "class_labels": class_labels},
                "prediction": {"mask_data": predictions[k].byte().numpy(), "class_labels": class_labels},
            },
        )
        for k in range(len(rgb))
    ]


class ValidationMaskOverlays(L.Callback):
    """Logs `key` (default `val/masks`): the first `num_images` validation images with their ground-truth
    and predicted masks, at the end of every validation epoch (not the sanity check).

    The images are taken once from the first validation batches (the validation loader is not shuffled)
    and kept, so every epoch shows the same images. Only W&B receives them: with no WandbLogger, or a
    disabled W&B run, the callback does nothing. `num_images=0` turns it off. Batches are dicts with
    `image` (B, 3, H, W), `mask` (B, H, W) and optionally `name`; the module maps images to logits
    (B, C, H, W) and has `class_names`.
    """

    def __init__(self, num_images: int = 8, key: str = "val/masks") -> None:
        if not isinstance(num_images, int) or num_images < 0:
            raise ValueError(f"ValidationMaskOverlays: num_images must be an int >= 0, got {num_images!r}")
        self.num_images = num_images
        self.key = key
        self.images: list[torch.Tensor] = []  # (3, H, W) each, normalised
        self.masks: list[torch.Tensor] = []  # (H, W) each
        self.names: list[str] = []
        self.frozen = False  # True once a full validation epoch has been seen

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        missing = self.num_images - len(self.images)
        if self.frozen or missing <= 0 or not trainer.is_global_zero or wandb_logger_of(trainer) is None:
            return
        images, masks = batch["image"][:missing].cpu(), batch["mask"][:missing].cpu()
        names = batch.get("name") or [f"val_{len(self.images) + k}" for k in range(len(images))]
        self.images += list(images)
        self.masks += list(masks)
        self.names += [str(name) for name in names[: len(images)]]

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = wandb_logger_of(trainer)
        if trainer.sanity_checking or not self.images or logger is None or not trainer.is_global_zero:
            return
        self.frozen = True
        images = torch.stack(self.images)  # (N, 3, H, W)
        with torch.no_grad():
            predictions = pl_module(images.to(pl_module.device)).argmax(dim=1).cpu()  # (N, H, W)
        class_labels = dict(enumerate(pl_module.class_names))
        ignore_index = pl_module.hparams.get("ignore_index")
        if ignore_index is not None:
            class_labels[int(ignore_index)] = "ignore"
        logged = mask_images(images, torch.stack(self.masks), predictions, class_labels, self.names)
        logger.experiment.log({self.key: logged, "trainer/global_step": trainer.global_step})
