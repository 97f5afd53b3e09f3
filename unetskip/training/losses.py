"""Segmentation losses: cross-entropy (optionally class-weighted), soft Dice, Lovasz-softmax, or
cross-entropy plus one of the other two, all honouring `ignore_index`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

LossName = Literal["ce", "dice", "ce+dice", "lovasz", "ce+lovasz"]


def soft_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None, eps: float = 1.0
) -> torch.Tensor:
    """1 - mean over classes of the soft Dice, pooled over the batch.

    logits (B, C, H, W), target (B, H, W) class indices -> scalar. Ignored pixels count nowhere;
    classes absent from both target and prediction contribute Dice ~1 thanks to `eps`.
    """
    num_classes = logits.shape[1]
    probs = logits.float().softmax(dim=1)  # (B, C, H, W)
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    safe_target = torch.where(valid, target, torch.zeros_like(target))
    one_hot = F.one_hot(safe_target, num_classes).permute(0, 3, 1, 2).float()  # (B, C, H, W)
    mask = valid.unsqueeze(1).float()  # (B, 1, H, W)
    probs, one_hot = probs * mask, one_hot * mask
    dims = (0, 2, 3)
    intersection = (probs * one_hot).sum(dims)  # (C,)
    cardinality = probs.sum(dims) + one_hot.sum(dims)
    dice = (2 * intersection + eps) / (cardinality + eps)
    return 1 - dice.mean()


def lovasz_softmax_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int | None = None
) -> torch.Tensor:
    """The Lovasz-softmax loss (Berman et al., CVPR 2018): the mean over the classes present in the target
    of a convex surrogate of 1 - IoU, pooled over the batch.

    logits (B, C, H, W), target (B, H, W) class indices -> scalar. For hard predictions (probabilities 0
    or 1) a class's term is exactly 1 - its IoU. Ignored pixels count nowhere.
    """
    num_classes = logits.shape[1]
    probs = logits.float().softmax(dim=1).permute(0, 2, 3, 1).reshape(-1, num_classes)  # (N, C)
    target = target.reshape(-1)  # (N,)
    if ignore_index is not None:
        valid = target != ignore_index
        probs, target = probs[valid], target[valid]
    terms = []
    for c in range(num_classes):
        foreground = (target == c).float()  # (N,)
        if not foreground.any():
            continue
        errors, order = (foreground - probs[:, c]).abs().sort(descending=True)
        sorted_foreground = foreground[order]
        # The gradient of the Lovasz extension of the Jaccard loss at the sorted errors.
        total = sorted_foreground.sum()
        intersection = total - sorted_foreground.cumsum(0)
        union = total + (1 - sorted_foreground).cumsum(0)
        jaccard = 1 - intersection / union
        weights = torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
        terms.append(errors @ weights)
    return torch.stack(terms).mean() if terms else probs.sum() * 0


def inverse_frequency_weights(class_pixels: Sequence[int]) -> list[float]:
    """Class weights from pixel counts (C,): total / (C * count_c), so that the mean weight over all pixels
    is 1 (scikit-learn's "balanced"); a class without pixels gets weight 0 (it has no target to weigh)."""
    counts = torch.as_tensor(list(class_pixels), dtype=torch.float64)
    weights = torch.where(counts > 0, counts.sum() / (len(counts) * counts.clamp(min=1)), 0.0)
    return weights.tolist()


class SegmentationLoss(nn.Module):
    """`ce`, `dice`, `lovasz`, or `ce+dice` / `ce+lovasz` (unweighted sums) on logits (B, C, H, W) and
    targets (B, H, W).

    `class_weights` (C,) weigh the cross-entropy of each class's target pixels (the Dice part is already
    a mean over classes); they are a buffer, saved with the model, only when given.
    """

    def __init__(
        self,
        name: LossName = "ce+dice",
        ignore_index: int | None = None,
        class_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if name not in get_args(LossName):
            raise ValueError(f"loss must be one of {', '.join(map(repr, get_args(LossName)))}, got {name!r}")
        self.name = name
        self.ignore_index = ignore_index
        weights = None if class_weights is None else torch.tensor(list(class_weights), dtype=torch.float32)
        if weights is not None and (
            weights.ndim != 1 or not torch.isfinite(weights).all() or (weights < 0).any()
        ):
            raise ValueError(f"model.class_weights must be finite numbers >= 0, got {list(class_weights)}")
        self.register_buffer("class_weights", weights)  # None: no buffer in the state dict

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits (B, C, H, W), target (B, H, W) -> scalar loss."""
        loss = logits.new_zeros(())
        if "ce" in self.name:
            ignore = -100 if self.ignore_index is None else self.ignore_index
            loss = loss + F.cross_entropy(logits.float(), target, self.class_weights, ignore_index=ignore)
        if "dice" in self.name:
            loss = loss + soft_dice_loss(logits, target, self.ignore_index)
        if "lovasz" in self.name:
            loss = loss + lovasz_softmax_loss(logits, target, self.ignore_index)
        return loss
