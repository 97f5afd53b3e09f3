"""Segmentation networks: the from-scratch U-Net and its blocks."""

from unetskip.models.blocks import ConvBlock, DecoderStage, EncoderStage
from unetskip.models.unet import UNet

__all__ = ["ConvBlock", "DecoderStage", "EncoderStage", "UNet"]
