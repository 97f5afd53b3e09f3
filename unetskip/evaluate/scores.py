"""One model's scores over a split, image by image: the pooled scores of `test` (the same
`SegmentationScores`) and each image's own, from its confusion matrix.

Convention: a class with no pixel in an image's truth nor in its prediction has NaN IoU and Dice in that
image (0 / 0: nothing to score), not 1 (which would reward every empty prediction) nor 0 (which would
punish a correct one). NaN is left out of the image's macro mean and of the class's mean over images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from unetskip.training.metrics import (
    SegmentationScores,
    class_iou_dice,
    confusion_matrix,
    foreground_iou,
)


def score_keys(class_names: Sequence[str]) -> list[str]:
    """The names of the scores of `confusion_scores`, in table order."""
    return [
        "iou_macro",
        "dice_macro",
        "pixel_accuracy",
        "pet_iou",
        *(f"iou/{name}" for name in class_names),
        *(f"dice/{name}" for name in class_names),
    ]


def confusion_scores(confmat: torch.Tensor, class_names: Sequence[str]) -> dict[str, torch.Tensor]:
    """Confusion matrices (..., C, C) -> each score of `score_keys`, (...) float64.

    IoU and Dice per class and their macro mean over the classes that are not NaN, pixel accuracy (NaN
    without a scored pixel), and `pet_iou`, the IoU of every class but 0 against class 0.
    """
    iou, dice = class_iou_dice(confmat)  # (..., C) each
    cm = confmat.double()
    total = cm.sum((-2, -1))
    correct = cm.diagonal(dim1=-2, dim2=-1).sum(-1)
    scores = {
        "iou_macro": iou.nanmean(-1),
        "dice_macro": dice.nanmean(-1),
        "pixel_accuracy": torch.where(total > 0, correct / total.clamp(min=1), torch.nan),
        "pet_iou": foreground_iou(confmat),
    }
    scores |= {f"iou/{name}": iou[..., i] for i, name in enumerate(class_names)}
    scores |= {f"dice/{name}": dice[..., i] for i, name in enumerate(class_names)}
    return scores


class Evaluation:
    """The predictions of one model over a split, added image by image (`add`).

    `pooled` holds the scores of `test` (the same `SegmentationScores`, updated with every image), and
    `confusions` each image's (C, C) confusion matrix, whose sum is the pooled matrix.
    """

    def __init__(
        self, class_names: Sequence[str], ignore_index: int | None, border_band_width: int = 3
    ) -> None:
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        self.pooled = SegmentationScores(self.class_names, ignore_index, border_band_width)
        self.paths: list[str] = []
        self.confusions: list[torch.Tensor] = []

    def add(self, path: str, pred: torch.Tensor, target: torch.Tensor, border: torch.Tensor | None) -> None:
        """One image: pred and target (H, W) class indices, border (H, W) bool or None (no trimap)."""
        self.pooled.update(pred[None], target[None], None if border is None else border[None])
        self.confusions.append(confusion_matrix(pred, target, len(self.class_names), self.ignore_index))
        self.paths.append(path)

    def __len__(self) -> int:
        return len(self.paths)

    def confusion_stack(self) -> torch.Tensor:
        """(N, C, C) long: every image's confusion matrix."""
        return torch.stack(self.confusions)

    def image_scores(self) -> dict[str, torch.Tensor]:
        """Each score of `score_keys` per image, (N,) float64."""
        return confusion_scores(self.confusion_stack(), self.class_names)

    def summary(self) -> dict[str, dict[str, Any]]:
        """`pooled`: test's scores (over all pixels of the split) and the pixel accuracy; `per_image`: the
        mean over images of each image's scores (NaN images left out of each mean)."""
        pooled = {key: float(value) for key, value in self.pooled.compute().items()}
        pooled["pixel_accuracy"] = float(
            confusion_scores(self.pooled.confmat, self.class_names)["pixel_accuracy"]
        )
        per_image = {key: float(values.nanmean()) for key, values in self.image_scores().items()}
        return {"pooled": pooled, "per_image": per_image}

    def image_rows(self) -> list[dict[str, Any]]:
        """One dict per image: path, its scores, and per class the pixels in truth and prediction and
        whether the class is absent from both (its scores then NaN)."""
        confusions = self.confusion_stack()
        true_pixels, pred_pixels = confusions.sum(2), confusions.sum(1)  # (N, C) each
        scores = self.image_scores()
        rows = []
        for n, path in enumerate(self.paths):
            row: dict[str, Any] = {"path": path} | {key: float(values[n]) for key, values in scores.items()}
            for c, name in enumerate(self.class_names):
                row[f"true_pixels/{name}"] = int(true_pixels[n, c])
                row[f"pred_pixels/{name}"] = int(pred_pixels[n, c])
                row[f"absent/{name}"] = bool(true_pixels[n, c] == 0 and pred_pixels[n, c] == 0)
            rows.append(row)
        return rows
