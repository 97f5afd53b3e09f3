"""The one normalisation of image pixels, shared by training, evaluation, predict and the ONNX export.

Images are normalised with ImageNet's channel mean and standard deviation (what smp's pretrained
encoders expect), from uint8 RGB tensors: the albumentations pipelines apply `normalize` as their last
step (`transforms.NormalizeTensor`), predict and the exported model apply it to the decoded images.
"""

from __future__ import annotations

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _channel_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet's mean and std on the 0-255 scale, shaped (3, 1, 1) to broadcast over (..., 3, H, W)."""
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD, device=device).view(3, 1, 1) * 255
    return mean, std


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 RGB (..., 3, H, W) -> float32 (..., 3, H, W): (pixel - 255 * mean) / (255 * std)."""
    mean, std = _channel_constants(images.device)
    return (images.float() - mean) / std


def denormalize(images: torch.Tensor) -> np.ndarray:
    """Normalised images (B, 3, H, W) -> uint8 RGB (B, H, W, 3) in their real colours."""
    mean, std = _channel_constants(images.device)
    rgb = (images.float() * std + mean).clamp(0, 255)
    return rgb.round().byte().permute(0, 2, 3, 1).cpu().numpy()
