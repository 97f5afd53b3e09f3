"""What predict draws from probabilities: the mask at the image's size, the overlay, and image files
written through a temporary name."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

# Overlay colours of classes 1, 2, ... (class 0, the background, is left as it is).
OVERLAY_COLOURS = ((255, 140, 0), (30, 144, 255), (50, 205, 50), (220, 20, 60))
OVERLAY_OPACITY = 0.5


def save_image(array: np.ndarray, path: Path, image_format: str) -> None:
    """Write `array` ((H, W) or (H, W, 3) uint8) to `path` through a temporary name, so an interrupted run
    never leaves a truncated file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    Image.fromarray(array).save(
        partial, format=image_format, **({"quality": 90} if image_format == "JPEG" else {})
    )
    os.replace(partial, path)


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 image and (H, W) class indices -> (H, W, 3) uint8, classes > 0 tinted."""
    blended = image.astype(np.float32)
    for index in range(1, int(mask.max()) + 1):
        colour = np.array(OVERLAY_COLOURS[(index - 1) % len(OVERLAY_COLOURS)], dtype=np.float32)
        selected = mask == index
        blended[selected] = (1 - OVERLAY_OPACITY) * blended[selected] + OVERLAY_OPACITY * colour
    return blended.round().astype(np.uint8)


def resize_probabilities(probabilities: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Class probabilities (C, h, w) -> (C, H, W) at `size` (H, W), bilinearly (unchanged at that size)."""
    if tuple(probabilities.shape[1:]) == tuple(size):
        return probabilities
    return F.interpolate(probabilities[None], size=tuple(size), mode="bilinear", align_corners=False)[0]


def mask_from_probabilities(probabilities: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """One image's class probabilities (C, h, w) -> its mask, (H, W) uint8 class indices at `size` (H, W),
    the image's original size: the probabilities are resized bilinearly before the argmax."""
    return resize_probabilities(probabilities, size).argmax(dim=0).to(torch.uint8).cpu().numpy()
