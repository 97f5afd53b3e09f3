"""From uint8 RGB images of any size to class probabilities: normalisation, padding, tiles, flip TTA.

The same `class_probabilities` serves predict (through `Inferer`) and the ONNX export (`ProbabilityNet`),
so an exported model computes exactly what `unetskip predict` computes on one whole image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from unetskip.data.normalization import normalize

Network = Callable[[torch.Tensor], torch.Tensor]


def class_probabilities(net: Network, images: torch.Tensor, pad_multiple: int = 32) -> torch.Tensor:
    """uint8 RGB (B, 3, H, W) -> class probabilities (B, C, H, W) float32, for any H, W >= 1.

    The normalised images are zero-padded (the mean colour) on the bottom and right to a multiple of
    `pad_multiple`, as networks such as smp's Unet need, and the logits cropped back.
    """
    height, width = images.shape[-2:]
    x = F.pad(normalize(images), (0, -width % pad_multiple, 0, -height % pad_multiple))  # (B, 3, H', W')
    logits = net(x)[..., :height, :width]  # (B, C, H, W)
    return logits.float().softmax(dim=1)


class ProbabilityNet(nn.Module):
    """A network ready to deploy: uint8 RGB (B, 3, H, W) -> class probabilities (B, C, H, W)."""

    def __init__(self, net: nn.Module, pad_multiple: int = 32) -> None:
        super().__init__()
        self.net = net
        self.pad_multiple = pad_multiple

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> float32 (B, C, H, W) summing to 1 over C."""
        return class_probabilities(self.net, images, self.pad_multiple)


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Start offsets of windows of `window` pixels covering `length`, consecutive ones overlapping by at
    least `overlap` (a fraction of the window); the last window ends exactly at `length`."""
    stride = max(1, round(window * (1 - overlap)))
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def gaussian_weights(height: int, width: int, device: torch.device) -> torch.Tensor:
    """(height, width) weights, 1 at the centre and exp(-2) at the edges: tiles blend without seams."""
    axes = []
    for size in (height, width):
        position = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
        axes.append(torch.exp(-0.5 * (position / (size / 4)) ** 2))
    return axes[0][:, None] * axes[1][None, :]


class Inferer:
    """How predict turns a batch of uint8 images of any sizes into class probabilities.

    Args:
        tile_size: None runs each image whole; an int runs it in windows of at most tile_size x tile_size,
            overlapping by `tile_overlap` (a fraction in [0, 1)) and blended with Gaussian weights, so the
            network's memory depends on the tile size, not on the image size.
        tile_overlap: the overlap of neighbouring windows.
        tile_batch_size: windows per forward pass.
        flip_tta: average the probabilities with those of the horizontally flipped image (the flip used in
            training).
        pad_multiple: inputs are padded to a multiple of this (32 suits smp's Unet; the from-scratch U-Net
            pads itself to its own multiple, `stem_stride * 2**depth`).
    """

    def __init__(
        self,
        tile_size: int | None = None,
        tile_overlap: float = 0.25,
        tile_batch_size: int = 8,
        flip_tta: bool = False,
        pad_multiple: int = 32,
    ) -> None:
        if tile_size is not None and tile_size < 1:
            raise ValueError(f"tile_size must be >= 1 or None, got {tile_size}")
        if not 0.0 <= tile_overlap < 1.0:
            raise ValueError(f"tile_overlap must be in [0, 1), got {tile_overlap}")
        if tile_batch_size < 1 or pad_multiple < 1:
            raise ValueError(
                f"tile_batch_size and pad_multiple must be >= 1, got {tile_batch_size}, {pad_multiple}"
            )
        self.tile_size = tile_size
        self.tile_overlap = tile_overlap
        self.tile_batch_size = tile_batch_size
        self.flip_tta = flip_tta
        self.pad_multiple = pad_multiple

    def __call__(self, net: Network, images: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """uint8 images, (3, H_i, W_i) each -> class probabilities, (C, H_i, W_i) float32 each.

        Consecutive images of one size go through the network together.
        """
        probabilities: list[torch.Tensor] = []
        start = 0
        while start < len(images):
            end = start + 1
            while end < len(images) and images[end].shape == images[start].shape:
                end += 1
            group = torch.stack(list(images[start:end]))  # (B, 3, H, W)
            if self.tile_size is None:
                probabilities += self.predict(net, group).unbind(0)
            else:
                probabilities += [self.predict_tiled(net, image) for image in group]
            start = end
        return probabilities

    def predict(self, net: Network, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> probabilities (B, C, H, W) (with flip_tta, averaged with the flipped)."""
        probabilities = class_probabilities(net, images, self.pad_multiple)
        if self.flip_tta:
            flipped = class_probabilities(net, images.flip(-1), self.pad_multiple).flip(-1)
            probabilities = (probabilities + flipped) / 2
        return probabilities

    def predict_tiled(self, net: Network, image: torch.Tensor) -> torch.Tensor:
        """uint8 (3, H, W) -> probabilities (C, H, W) from overlapping windows, Gaussian-blended."""
        _, height, width = image.shape
        tile_height, tile_width = min(self.tile_size, height), min(self.tile_size, width)
        windows = [
            (top, left)
            for top in window_starts(height, tile_height, self.tile_overlap)
            for left in window_starts(width, tile_width, self.tile_overlap)
        ]
        weights = gaussian_weights(tile_height, tile_width, image.device)  # (h, w)
        total = torch.zeros(height, width, device=image.device)
        blended: torch.Tensor | None = None
        for first in range(0, len(windows), self.tile_batch_size):
            chunk = windows[first : first + self.tile_batch_size]
            tiles = torch.stack([image[:, y : y + tile_height, x : x + tile_width] for y, x in chunk])
            probabilities = self.predict(net, tiles)  # (n, C, h, w)
            if blended is None:
                blended = torch.zeros(probabilities.shape[1], height, width, device=image.device)
            for (top, left), tile in zip(chunk, probabilities, strict=True):
                blended[:, top : top + tile_height, left : left + tile_width] += tile * weights
                total[top : top + tile_height, left : left + tile_width] += weights
        return blended / total
