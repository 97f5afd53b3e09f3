"""albumentations pipelines that transform an image and its mask together.

Masks are always resampled with nearest neighbour, and pixels that a geometric transform brings in
from outside the image get `ignore_index`, so they count in no loss and no metric. The image is
normalised last, by `unetskip.data.normalization.normalize`, as predict normalises it.
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import torch
from albumentations.pytorch import ToTensorV2

from unetskip.data.image_size import parse_image_size
from unetskip.data.normalization import normalize


class NormalizeTensor(A.ImageOnlyTransform):
    """uint8 (3, H, W) tensor (after `ToTensorV2`) -> float32 (3, H, W) through `normalize`."""

    def __init__(self) -> None:
        super().__init__(p=1.0)

    def apply(self, img: torch.Tensor, **params: Any) -> torch.Tensor:
        return normalize(img)


def train_transforms(image_size: int | tuple[int, int], ignore_index: int = 255) -> A.Compose:
    """Scale/crop, horizontal flip, small rotation, colour jitter, normalise; output (3, H, W)."""
    height, width = parse_image_size(image_size)
    return A.Compose(
        [
            A.RandomResizedCrop(size=(height, width), scale=(0.5, 1.0), ratio=(0.75, 1.333)),
            A.HorizontalFlip(p=0.5),
            A.Affine(
                rotate=(-15, 15),
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=ignore_index,
                p=0.5,
            ),
            A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=0.5),
            ToTensorV2(),
            NormalizeTensor(),
        ]
    )


def eval_transforms(image_size: int | tuple[int, int]) -> A.Compose:
    """Resize to `image_size` and normalise; output (3, H, W)."""
    height, width = parse_image_size(image_size)
    return A.Compose(
        [
            A.Resize(height, width),
            ToTensorV2(),
            NormalizeTensor(),
        ]
    )
