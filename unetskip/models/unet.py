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

    `stem_stride=2` gives the stem's convolution stride 2, as ResNet's stem does: every stage then runs at
    half the resolution given above and the logits are upsampled bilinearly to the input's size. The
    parameters are the same. The configs' `stem_stride=2, base_channels=32, depth=4` has the stages of
    `stem_stride=1, base_channels=16, depth=5` from 1/2 down, without its full-resolution stage, and trains
    1.5x faster on a CPU (docs/speed.md).

    Inputs of any height and width are padded on the bottom and right to a multiple of
    `stem_stride * 2**depth`, and the logits are cropped back, so the output always has the input's
    height and width.
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
        stem_stride: int = 1,
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
        if stem_stride not in (1, 2) or isinstance(stem_stride, bool):
            raise ValueError(f"UNet: stem_stride must be 1 or 2, got {stem_stride!r}")
        if zero_init_residual and not residual:
            raise ValueError(
                "UNet: zero_init_residual=True needs residual=True (a plain block whose last norm "
                "starts at zero outputs zeros); set one of them to false"
            )
        self.num_classes = num_classes
        self.depth = depth
        self.residual = residual
        self.skip_connections = skip_connections
        self.stem_stride = stem_stride

        channels = [base_channels * 2**i for i in range(depth + 1)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base_channels, 3, stride=stem_stride, padding=1, bias=False),
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
        multiple = self.stem_stride * 2**self.depth
        x = F.pad(
            x, (0, -width % multiple, 0, -height % multiple)
        )  # (B, C_in, H', W'), H', W' % multiple == 0

        features = []
        x = self.stem(x)
        for stage in self.encoder:
            x = stage(x)  # stage i: (B, base * 2**i, H' / (s * 2**i), W' / (s * 2**i)), s = stem_stride
            features.append(x)
        for stage, skip in zip(self.decoder, reversed(features[:-1]), strict=True):
            x = stage(x, skip if self.skip_connections else None)
        logits = self.head(x)  # (B, num_classes, H' / s, W' / s)
        if self.stem_stride > 1:
            logits = F.interpolate(
                logits, scale_factor=self.stem_stride, mode="bilinear", align_corners=False
            )
        return logits[..., :height, :width]
