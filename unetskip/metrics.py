"""Segmentation scores accumulated over a whole epoch: per-class Dice and IoU, and the pet IoU.

Everything is computed from sums over all pixels of the epoch (a confusion matrix), never as a mean of
batch means, so the numbers do not depend on the batch size. The state is summed across processes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric


class SegmentationScores(Metric):
    """Dice and IoU per class and their macro mean, plus the foreground ("pet") IoU two ways.

    - `iou/<class>`, `dice/<class>`: from the epoch's confusion matrix; a class with no pixel in the
      targets nor in the predictions of the whole epoch is NaN and left out of the macro mean.
    - `iou_macro`, `dice_macro`: the mean over the classes that are not NaN.
    - `pet_iou_pooled`: IoU of foreground (every class but 0) vs background, over all pixels of the
      epoch, the "dataset-wise" IoU of segmentation_models_pytorch.
    - `pet_iou_per_image`: the same IoU computed per image, then averaged over images ("image-wise");
      an image where both prediction and target have no foreground scores 1.

    Pixels whose target equals `ignore_index` count nowhere.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(self, class_names: Sequence[str], ignore_index: int | None = None) -> None:
        super().__init__()
        if len(class_names) < 2:
            raise ValueError(f"SegmentationScores: need at least 2 class names, got {class_names!r}")
        self.class_names = list(class_names)
        self.num_classes = len(class_names)
        self.ignore_index = ignore_index
        self.add_state(
            "confmat",
            torch.zeros(self.num_classes, self.num_classes, dtype=torch.long),
            dist_reduce_fx="sum",
        )
        self.add_state("image_iou_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("image_count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """preds: class indices (B, H, W) or logits (B, C, H, W); target: class indices (B, H, W)."""
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)  # (B, C, H, W) -> (B, H, W)
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ")
        preds, target = preds.long(), target.long()
        valid = (
            torch.ones_like(target, dtype=torch.bool)
            if self.ignore_index is None
            else target != self.ignore_index
        )
        n = self.num_classes
        index = target[valid] * n + preds[valid]
        self.confmat += torch.bincount(index, minlength=n * n).reshape(n, n)

        pred_fg = (preds > 0) & valid  # (B, H, W)
        true_fg = (target > 0) & valid
        intersection = (pred_fg & true_fg).flatten(1).sum(1).double()  # (B,)
        union = (pred_fg | true_fg).flatten(1).sum(1).double()
        iou = torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))
        self.image_iou_sum += iou.sum()
        self.image_count += target.shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        """Scores as 0-dim float tensors, keyed `iou/<class>`, `dice/<class>`, `iou_macro`, ..."""
        cm = self.confmat.double()
        tp = cm.diag()
        fp = cm.sum(0) - tp  # predicted as the class, target another
        fn = cm.sum(1) - tp
        nan = torch.tensor(float("nan"), dtype=cm.dtype, device=cm.device)
        iou = torch.where(tp + fp + fn > 0, tp / (tp + fp + fn), nan)
        dice = torch.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), nan)

        # Foreground vs background from the same confusion matrix.
        fg_tp = cm[1:, 1:].sum()
        fg_union = cm.sum() - cm[0, 0]
        pooled = fg_tp / fg_union if fg_union > 0 else torch.ones_like(fg_tp)

        scores = {f"iou/{name}": iou[i] for i, name in enumerate(self.class_names)}
        scores |= {f"dice/{name}": dice[i] for i, name in enumerate(self.class_names)}
        scores["iou_macro"] = iou.nanmean()
        scores["dice_macro"] = dice.nanmean()
        scores["pet_iou_pooled"] = pooled
        scores["pet_iou_per_image"] = self.image_iou_sum / self.image_count.clamp(min=1)
        return {key: value.float() for key, value in scores.items()}
