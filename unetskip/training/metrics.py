"""Segmentation scores accumulated over a whole epoch: per-class Dice and IoU, the pet IoU, and the
same near the pet's outline (the trimap border band).

Everything is computed from sums over all pixels of the epoch (a confusion matrix), never as a mean of
batch means, so the numbers do not depend on the batch size. The state is summed across processes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchmetrics import Metric


def border_band(border: torch.Tensor, width: int) -> torch.Tensor:
    """The trimap border region grown by `width` pixels in every direction (a square neighbourhood).

    border (B, H, W) bool -> band (B, H, W) bool. `width=0` returns the border region itself.
    """
    if width == 0:
        return border.bool()
    grown = F.max_pool2d(border[:, None].float(), 2 * width + 1, stride=1, padding=width)  # (B, 1, H, W)
    return grown[:, 0] > 0


def confusion_matrix(
    preds: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int | None
) -> torch.Tensor:
    """Class indices preds and target, same shape (any) -> (C, C) long counts, rows the target's class,
    columns the prediction's; pixels whose target is `ignore_index` count nowhere."""
    preds, target = preds.long(), target.long()
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    index = target[valid] * num_classes + preds[valid]
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def class_iou_dice(confmat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Confusion matrices (..., C, C) -> IoU and Dice per class, each (..., C) float64; a class with no
    pixel in the targets nor in the predictions (0 / 0) is NaN."""
    cm = confmat.double()
    tp = cm.diagonal(dim1=-2, dim2=-1)
    fp = cm.sum(-2) - tp  # predicted as the class, target another
    fn = cm.sum(-1) - tp
    union = tp + fp + fn
    nan = torch.full_like(tp, float("nan"))
    return (
        torch.where(union > 0, tp / union.clamp(min=1), nan),
        torch.where(union > 0, 2 * tp / (2 * tp + fp + fn).clamp(min=1), nan),
    )


def foreground_iou(confmat: torch.Tensor) -> torch.Tensor:
    """Confusion matrices (..., C, C) -> (...) float64: IoU of every class but 0 against class 0 (the
    "pet" IoU); 1 where neither target nor prediction has any foreground."""
    cm = confmat.double()
    intersection = cm[..., 1:, 1:].sum((-2, -1))
    union = cm.sum((-2, -1)) - cm[..., 0, 0]
    return torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))


class SegmentationScores(Metric):
    """Dice and IoU per class and their macro mean, plus the foreground ("pet") IoU two ways.

    - `iou/<class>`, `dice/<class>`: from the epoch's confusion matrix; a class with no pixel in the
      targets nor in the predictions of the whole epoch is NaN and left out of the macro mean.
    - `iou_macro`, `dice_macro`: the mean over the classes that are not NaN.
    - `pet_iou_pooled`: IoU of foreground (every class but 0) vs background, over all pixels of the
      epoch, the "dataset-wise" IoU of segmentation_models_pytorch.
    - `pet_iou_per_image`: the same IoU computed per image, then averaged over images ("image-wise");
      an image where both prediction and target have no foreground scores 1.
    - `pet_iou_border_band`, `accuracy_border_band`: the pooled pet IoU and the pixel accuracy (all
      classes) restricted to the border band: the trimap's border region (the uncertain outline of the
      pet) grown by `border_band_width` pixels, where the fine spatial detail is. Reported only when
      `update` received a `border` mask in this epoch.

    Pixels whose target equals `ignore_index` count nowhere (in `binary_ignore_border` mode, the border
    region itself, so the band scores are then the ring around it).
    """

    full_state_update = False
    higher_is_better = True

    def __init__(
        self, class_names: Sequence[str], ignore_index: int | None = None, border_band_width: int = 3
    ) -> None:
        super().__init__()
        if len(class_names) < 2:
            raise ValueError(f"SegmentationScores: need at least 2 class names, got {class_names!r}")
        if not isinstance(border_band_width, int) or border_band_width < 0:
            raise ValueError(
                f"SegmentationScores: border_band_width must be an integer >= 0, got {border_band_width!r}"
            )
        self.border_band_width = border_band_width
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
        # Pixels of the border band: [pet intersection, pet union, correct, total].
        self.add_state("band_counts", torch.zeros(4, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor, border: torch.Tensor | None = None) -> None:
        """preds: class indices (B, H, W) or logits (B, C, H, W); target: class indices (B, H, W);
        border: optional trimap border region (B, H, W) bool, for the border-band scores."""
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)  # (B, C, H, W) -> (B, H, W)
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} and target {tuple(target.shape)} differ")
        if border is not None and border.shape != target.shape:
            raise ValueError(f"border {tuple(border.shape)} and target {tuple(target.shape)} differ")
        preds, target = preds.long(), target.long()
        valid = (
            torch.ones_like(target, dtype=torch.bool)
            if self.ignore_index is None
            else target != self.ignore_index
        )
        self.confmat += confusion_matrix(preds, target, self.num_classes, self.ignore_index)

        pred_fg = (preds > 0) & valid  # (B, H, W)
        true_fg = (target > 0) & valid
        intersection = (pred_fg & true_fg).flatten(1).sum(1).double()  # (B,)
        union = (pred_fg | true_fg).flatten(1).sum(1).double()
        iou = torch.where(union > 0, intersection / union.clamp(min=1), torch.ones_like(union))
        self.image_iou_sum += iou.sum()
        self.image_count += target.shape[0]

        if border is not None:
            band = border_band(border, self.border_band_width) & valid  # (B, H, W)
            self.band_counts += torch.stack(
                [
                    (pred_fg & true_fg & band).sum(),
                    ((pred_fg | true_fg) & band).sum(),
                    ((preds == target) & band).sum(),
                    band.sum(),
                ]
            )

    def compute(self) -> dict[str, torch.Tensor]:
        """Scores as 0-dim float tensors, keyed `iou/<class>`, `dice/<class>`, `iou_macro`, ..."""
        iou, dice = class_iou_dice(self.confmat)
        pooled = foreground_iou(self.confmat)  # foreground vs background from the same matrix
        scores = {f"iou/{name}": iou[i] for i, name in enumerate(self.class_names)}
        scores |= {f"dice/{name}": dice[i] for i, name in enumerate(self.class_names)}
        scores["iou_macro"] = iou.nanmean()
        scores["dice_macro"] = dice.nanmean()
        scores["pet_iou_pooled"] = pooled
        scores["pet_iou_per_image"] = self.image_iou_sum / self.image_count.clamp(min=1)
        intersection, union, correct, total = self.band_counts.double()
        if total > 0:
            scores["pet_iou_border_band"] = intersection / union if union > 0 else torch.ones_like(union)
            scores["accuracy_border_band"] = correct / total
        return {key: value.float() for key, value in scores.items()}
