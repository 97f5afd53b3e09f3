"""Training: the LightningModule, its losses and metrics, and the callbacks a run's config names
(throughput, guards, gradient norms, mask overlays, acceleration, weight averaging)."""

from unetskip.training.acceleration import ChannelsLast, CompileNet
from unetskip.training.averaging import EMAWeights
from unetskip.training.gradient_flow import StageGradientNorms
from unetskip.training.guards import StopOnNonFiniteLoss
from unetskip.training.mask_overlays import ValidationMaskOverlays
from unetskip.training.module import SegmentationModule
from unetskip.training.throughput import TrainThroughput

__all__ = [
    "ChannelsLast",
    "CompileNet",
    "EMAWeights",
    "SegmentationModule",
    "StageGradientNorms",
    "StopOnNonFiniteLoss",
    "TrainThroughput",
    "ValidationMaskOverlays",
]
