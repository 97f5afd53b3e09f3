"""The U-Net assembly: channel lists, encoder, decoder, padding to any input size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unetskip.models.blocks import ConvBlock, DecoderStage, EncoderStage


class UNet(nn.Module):
    """A U-Net whose encoder and decoder are built of (optionally residual) ConvBlocks.

    Stage `i` of the encoder has `base_channels * 2**i` channels at 1/2**i of the input resolution,
    for `i = 0 .. depth`. Decoder stage `i` upsamples stage `i + 1` and, when `skip_connections`, concatenates
    encoder stage `i` (the long skip). `residual` switches the short (ResNet) shortcuts inside every block.
    The two switches are independent.

    Inputs of any height and width are padded on the bottom and right to a multiple of `2**depth`, and
    the logits are cropped back, so the output always has the input's height and width.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        base_channels: int = 32,
        depth: int = 4,
        blocks_per_stage: int = 1,
        residual: bool = True,
        skip_connections: bool = True,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("num_classes", num_classes),
            ("base_channels", base_channels),
            ("depth", depth),
            ("blocks_per_stage", blocks_per_stage),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"UNet: {name} must be an integer >= 1, got {value!r}")
        if zero_init_residual and not residual:
            raise ValueError(
                "UNet: zero_init_residual=True needs residual=True (a plain block whose last norm "
                "starts at zero outputs zeros); set one of them to false"
            )
        self.num_classes = num_classes
        self.depth = depth
        self.residual = residual
        self.skip_connections = skip_connections

        channels = [base_channels * 2**i for i in range(depth + 1)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(base_channels),
            nn.ReLU(inplace=True),
        )
        self.encoder = nn.ModuleList(
            EncoderStage(
                channels[max(i - 1, 0)],
                channels[i],
                blocks_per_stage,
                stride=1 if i == 0 else 2,
                residual=residual,
            )
            for i in range(depth + 1)
        )
        self.decoder = nn.ModuleList(
            DecoderStage(
                channels[i + 1],
                channels[i] if skip_connections else 0,
                channels[i],
                blocks_per_stage,
                residual=residual,
            )
            for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(base_channels, num_classes, 1)

        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, ConvBlock):
                    module.zero_init_last()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> logits (B, num_classes, H, W), for any H, W >= 1."""
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        x = F.pad(
            x, (0, -width % multiple, 0, -height % multiple)
        )  # (B, C_in, H', W'), H', W' % 2**depth == 0

        features = []
        x = self.stem(x)
        for stage in self.encoder:
            x = stage(x)  # stage i: (B, base * 2**i, H' / 2**i, W' / 2**i)
            features.append(x)
        for stage, skip in zip(self.decoder, reversed(features[:-1]), strict=True):
            x = stage(x, skip if self.skip_connections else None)
        logits = self.head(x)  # (B, num_classes, H', W')
        return logits[..., :height, :width]
