"""Building blocks of the U-Net: convolution blocks with an optional residual shortcut, and decoder blocks.

Blocks take explicit channel counts and layer types; only `unet.py` computes channel lists.
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a norm layer follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class ConvBlock(nn.Module):
    """conv3x3-norm-act-conv3x3-norm, plus a shortcut when `residual`, then act.

    With `residual=True` this is the ResNet basic block: the shortcut is the identity, or a 1x1
    projection (conv + norm) when the stride or the channel count changes, added before the final
    activation. With `residual=False` it is a plain block of the same shape without the addition.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        residual: bool = True,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.norm1 = norm_layer(out_channels)
        self.act1 = act_layer(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.norm2 = norm_layer(out_channels)
        self.act2 = act_layer(inplace=True)
        self.shortcut: nn.Module | None = None
        if residual:
            if stride == 1 and in_channels == out_channels:
                self.shortcut = nn.Identity()
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                    norm_layer(out_channels),
                )

    def zero_init_last(self) -> None:
        """Zero the last norm's scale so a residual block starts as its shortcut."""
        nn.init.zeros_(self.norm2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""
        out = self.norm2(self.conv2(self.act1(self.norm1(self.conv1(x)))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act2(out)


class EncoderStage(nn.Sequential):
    """`num_blocks` ConvBlocks; the first one changes channels and applies `stride`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_blocks: int,
        stride: int,
        residual: bool,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        blocks = [
            ConvBlock(
                in_channels if i == 0 else out_channels,
                out_channels,
                stride=stride if i == 0 else 1,
                residual=residual,
                norm_layer=norm_layer,
            )
            for i in range(num_blocks)
        ]
        super().__init__(*blocks)


class DecoderStage(nn.Module):
    """Upsample x2, concatenate the encoder skip (if any), then ConvBlocks.

    `skip_channels=0` builds a stage that takes no encoder features at all: its first block sees only
    the upsampled `out_channels`, so no weights exist for a skip that is not there.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        num_blocks: int,
        residual: bool,
        norm_layer: type[nn.Module] = nn.BatchNorm2d,
    ) -> None:
        super().__init__()
        self.skip_channels = skip_channels
        self.upsample = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.blocks = EncoderStage(
            out_channels + skip_channels, out_channels, num_blocks, 1, residual, norm_layer
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C_in, H, W), skip (B, C_skip, 2H, 2W) or None -> (B, C_out, 2H, 2W)."""
        if (skip is None) != (self.skip_channels == 0):
            raise ValueError(
                f"this decoder stage was built with skip_channels={self.skip_channels} "
                f"but was called with skip={'None' if skip is None else tuple(skip.shape)}"
            )
        x = self.upsample(x)  # (B, C_out, 2H, 2W)
        if skip is not None:
            x = torch.cat([x, skip], dim=1)  # (B, C_out + C_skip, 2H, 2W)
        return self.blocks(x)
