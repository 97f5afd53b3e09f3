"""albumentations pipelines that transform an image and its mask together.

Masks are always resampled with nearest neighbour, and pixels that a geometric transform brings in
from outside the image get `ignore_index`, so they count in no loss and no metric. The image is
normalised last, by `unetskip.data.normalization.normalize`, as predict normalises it.
"""

from __future__ import annotations

from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from unetskip.data.image_size import check_keep_aspect, parse_image_size, resized_size
from unetskip.data.normalization import normalize


class NormalizeTensor(A.ImageOnlyTransform):
    """uint8 (3, H, W) tensor (after `ToTensorV2`) -> float32 (3, H, W) through `normalize`."""

    def __init__(self) -> None:
        super().__init__(p=1.0)

    def apply(self, img: torch.Tensor, **params: Any) -> torch.Tensor:
        return normalize(img)


def check_augmentation(crop_scale: tuple[float, float], rotate_degrees: float) -> None:
    """Raise ValueError naming the `data.*` option when an augmentation strength is out of range."""
    low, high = crop_scale
    if not 0.0 < low <= high <= 1.0:
        raise ValueError(
            f"data.crop_scale must be [low, high] with 0 < low <= high <= 1, got {list(crop_scale)}"
        )
    if not 0.0 <= rotate_degrees <= 180.0:
        raise ValueError(f"data.rotate_degrees must be in [0, 180], got {rotate_degrees}")


def train_transforms(
    image_size: int | tuple[int, int],
    ignore_index: int = 255,
    crop_scale: tuple[float, float] = (0.5, 1.0),
    rotate_degrees: float = 15.0,
) -> A.Compose:
    """Scale/crop, horizontal flip, rotation, colour jitter, normalise; output (3, H, W).

    `crop_scale`: the range of the crop's share of the image area (1, 1: the whole image, aspect ratio
    jittered 3:4 to 4:3); `rotate_degrees`: rotation up to +- that angle, on half the samples (0: none).
    """
    check_augmentation(crop_scale, rotate_degrees)
    height, width = parse_image_size(image_size)
    return A.Compose(
        [
            A.RandomResizedCrop(size=(height, width), scale=tuple(crop_scale), ratio=(0.75, 1.333)),
            A.HorizontalFlip(p=0.5),
            A.Affine(
                rotate=(-rotate_degrees, rotate_degrees),
                border_mode=cv2.BORDER_CONSTANT,
                fill=0,
                fill_mask=ignore_index,
                p=0.5 if rotate_degrees > 0 else 0.0,
            ),
            A.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=0.5),
            ToTensorV2(),
            NormalizeTensor(),
        ]
    )


class ResizeKeepingAspect(A.DualTransform):
    """Resize so that the shorter side is `short_side` (see `unetskip.data.image_size.resized_size`):
    the image bilinearly, the mask with nearest neighbour."""

    def __init__(self, short_side: int) -> None:
        super().__init__(p=1.0)
        self.short_side = short_side

    def _resized(self, array: np.ndarray, interpolation: int) -> np.ndarray:
        height, width = resized_size(array.shape[:2], self.short_side, keep_aspect=True)
        return cv2.resize(array, (width, height), interpolation=interpolation)

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return self._resized(img, cv2.INTER_LINEAR)

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return self._resized(mask, cv2.INTER_NEAREST)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("short_side",)


def eval_transforms(image_size: int | tuple[int, int], keep_aspect: bool = False) -> A.Compose:
    """Resize to `image_size` (with `keep_aspect`: the shorter side to `image_size`) and normalise;
    output (3, h, w)."""
    check_keep_aspect(image_size, keep_aspect)
    resize = ResizeKeepingAspect(image_size) if keep_aspect else A.Resize(*parse_image_size(image_size))
    return A.Compose([resize, ToTensorV2(), NormalizeTensor()])
