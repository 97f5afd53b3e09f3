"""How deep a built network is: its convolution layers on the main path, counted from the modules."""

from __future__ import annotations

from torch import nn

CONV_TYPES = (nn.Conv2d, nn.ConvTranspose2d)


def conv_layers(net: nn.Module) -> int:
    """The number of convolution layers (Conv2d and ConvTranspose2d: stem, blocks, upsampling, head) of
    `net`, without the 1x1 projections of residual shortcuts, as He et al. count a ResNet's layers: a
    plain and a residual U-Net of the same shape have the same count."""
    return sum(
        isinstance(module, CONV_TYPES) and ".shortcut." not in f".{name}."
        for name, module in net.named_modules()
    )
