"""The LightningModule: trains any segmentation network, logs epoch-level Dice and IoU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable, instantiate_module
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torchmetrics import MeanMetric

from unetskip.compat import lightning_cli_config_given
from unetskip.predict.inferer import Inferer
from unetskip.runs.checkpointing import METADATA_KEY, check_compatible, checkpoint_metadata
from unetskip.training.losses import LossName, SegmentationLoss, inverse_frequency_weights
from unetskip.training.metrics import SegmentationScores


class SegmentationModule(L.LightningModule):
    """Semantic segmentation of `(B, 3, H, W)` images into `len(class_names)` classes.

    `net` is any module mapping `(B, C_in, H, W)` to logits `(B, num_classes, H, W)`: the from-scratch
    `unetskip.models.UNet`, or `segmentation_models_pytorch.Unet` for the baseline. Batches are dicts
    with `image` (B, 3, H, W) float, `mask` (B, H, W) long, and optionally `border` (B, H, W) bool, the
    trimap border region, for the border-band scores (the region grown by `border_band_width` pixels); in
    predict, `image` holds uint8 RGB images of any sizes (see `unetskip.data.image_files`).
    Metrics are logged once per epoch under `train/`, `val/` and `test/`. `inferer` says how predict
    turns images into probabilities (whole or in tiles, flip TTA); None is `Inferer()`.

    `class_weights` weigh the cross-entropy part of the loss per class: a list (one per class), or
    "auto", the inverse pixel frequency of the training split, computed in `setup("fit")` from the
    data module's `class_pixels()` (pixels per class, counted by the data check of
    `unetskip.data.FolderDataModule`); the weights used are saved in the checkpoint's state dict.
    """

    def __init__(
        self,
        net: nn.Module,
        class_names: Sequence[str] = ("background", "pet"),
        loss: LossName = "ce+dice",
        ignore_index: int | None = 255,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        lr_scheduler: LRSchedulerCallable | None = None,
        border_band_width: int = 3,
        class_weights: list[float] | Literal["auto"] | None = None,
        inferer: Inferer | None = None,
    ) -> None:
        super().__init__()
        # Under LightningCLI the saved hparams are the parsed config, in which `net` is its class_path
        # and init_args: that rebuilds the network from the checkpoint alone. Built in Python, `net` is
        # a module that must not be pickled into the hparams (its weights are in the state dict), nor
        # the inferer (a checkpoint holds plain values only, read with weights_only=True).
        self.save_hyperparameters(ignore=None if lightning_cli_config_given() else ["net", "inferer"])
        self.net = net
        self.class_names = list(class_names)
        self.num_classes = len(self.class_names)
        if class_weights is not None and class_weights != "auto" and len(class_weights) != self.num_classes:
            raise ValueError(
                f"model.class_weights has {len(class_weights)} weights for {self.num_classes} classes "
                f"{self.class_names}: give one per class, or 'auto'"
            )
        self.class_weights = class_weights
        # "auto": a placeholder until setup("fit") (or the checkpoint) sets the weights.
        weights = [1.0] * self.num_classes if class_weights == "auto" else class_weights
        self.criterion = SegmentationLoss(loss, ignore_index, weights)
        self.optimizer = optimizer
        self.lr_scheduler = lr_scheduler
        self.train_scores = SegmentationScores(self.class_names, ignore_index, border_band_width)
        self.val_scores = SegmentationScores(self.class_names, ignore_index, border_band_width)
        self.test_scores = SegmentationScores(self.class_names, ignore_index, border_band_width)
        # Evaluation losses as exact per-image means, summed across processes by torchmetrics: Lightning's
        # own sync_dist mean floors the image count when processes hold different numbers of images
        # (Lightning-AI/pytorch-lightning#21859), as they do under DDP (see OxfordPetDataModule).
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.inferer = inferer or Inferer()
        self.border_note_shown = False  # the note that border-band scores are skipped, said once

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C_in, H, W) -> logits (B, num_classes, H, W)."""
        logits = self.net(images)
        if logits.shape[1] != self.num_classes:
            raise ValueError(
                f"the network outputs {logits.shape[1]} channels but the data has {self.num_classes} "
                f"classes {self.class_names}: set the network's class count (model.net.init_args."
                "num_classes for UNet, classes for smp) to match the data's classes"
            )
        return logits

    def setup(self, stage: str) -> None:
        if stage != "fit" or self.class_weights != "auto":
            return
        class_pixels = getattr(self.trainer.datamodule, "class_pixels", None)
        if class_pixels is None:
            raise ValueError(
                "model.class_weights=auto needs a data module that counts the pixels of each class "
                "(unetskip.data.FolderDataModule): give a list of weights instead"
            )
        weights = inverse_frequency_weights(class_pixels())
        self.criterion.class_weights.copy_(torch.tensor(weights))
        named = ", ".join(f"{name} {w:.3g}" for name, w in zip(self.class_names, weights, strict=True))
        rank_zero_info(f"model.class_weights=auto (inverse pixel frequency of the training split): {named}")

    def stage_scores(self, stage: str) -> SegmentationScores:
        """The epoch accumulator of `stage` ("train", "val" or "test")."""
        return getattr(self, f"{stage}_scores")

    def _shared_step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        logits = self(batch["image"])
        loss = self.criterion(logits, batch["mask"])
        self.stage_scores(stage).update(logits.detach().argmax(dim=1), batch["mask"], batch.get("border"))
        batch_size = batch["image"].shape[0]
        if stage == "train":
            self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        else:
            mean_loss = getattr(self, f"{stage}_loss")
            mean_loss.update(loss.detach(), weight=batch_size)
            self.log(f"{stage}/loss", mean_loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> list[torch.Tensor]:
        """uint8 RGB images, (3, H_i, W_i) each -> class probabilities, (num_classes, H_i, W_i) each."""
        return self.inferer(self, batch["image"])

    def _log_epoch_scores(self, stage: str) -> None:
        scores = self.stage_scores(stage).compute()
        if "pet_iou_border_band" not in scores and not self.border_note_shown:
            self.border_note_shown = True
            rank_zero_info(
                "the batches carry no trimap border (only Oxford-IIIT Pet's do): the border-band scores "
                "(pet_iou_border_band, accuracy_border_band) are not computed"
            )
        self.log(f"{stage}/dice_macro", scores.pop("dice_macro"), prog_bar=True)
        self.log_dict({f"{stage}/{key}": value for key, value in scores.items()})
        self.stage_scores(stage).reset()

    def on_train_epoch_start(self) -> None:
        # Logged here rather than by LearningRateMonitor, which fails when the logger is switched off.
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])

    def on_train_epoch_end(self) -> None:
        self._log_epoch_scores("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_scores("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_scores("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[METADATA_KEY] = checkpoint_metadata(self.loggers)

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any]) -> SegmentationModule:
        """The module of a checkpoint (as `unetskip.runs.checkpoint_file.read_checkpoint` reads it) with its
        weights, rebuilt from its hyperparameters as `load_from_checkpoint` would, on the CPU.

        Raises:
            ValueError: the hyperparameters do not rebuild the network (a module built in Python).
        """
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        if hparams.pop("_instantiator", None) is None or not isinstance(hparams.get("net"), dict):
            raise ValueError(
                "its hyperparameters do not rebuild the network (it was not written by unetskip fit)"
            )
        module = instantiate_module(cls, hparams)
        module.on_load_checkpoint(checkpoint)
        module.load_state_dict(checkpoint["state_dict"])
        return module

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Runs before the weights are loaded: an error here names what differs, not just the keys.
        check_compatible(checkpoint, self.state_dict(), self.hparams)

    def configure_optimizers(self):  # noqa: ANN201 (Lightning accepts several return types)
        optimizer = self.optimizer(self.parameters())
        if self.lr_scheduler is None:
            return optimizer
        try:
            scheduler = self.lr_scheduler(optimizer)
        except ZeroDivisionError as error:
            # OneCycleLR divides by its warm-up length, pct_start * total_steps - 1: zero for one step of
            # warm-up, e.g. 10 epochs at pct_start 0.1 (pytorch/pytorch#180187).
            raise ValueError(
                f"model.lr_scheduler could not be built ({error}): "
                "for OneCycleLR, pct_start * total_steps (the epochs) must not be exactly 1: change "
                "--trainer.max_epochs or --model.lr_scheduler.init_args.pct_start"
            ) from error
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
