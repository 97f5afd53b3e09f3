"""How a benchmark runs: device, precision, memory format, compile, sizes and repeats."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from unetskip.training.acceleration import cpu_channels_last_hazard

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


@dataclass(frozen=True)
class Settings:
    device: torch.device
    precision: str
    channels_last: bool
    compile: bool
    batch_size: int
    image_size: int
    warmup: int
    steps: int
    repeats: int

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"bench: precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("batch_size", "image_size", "steps", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"bench: {name} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 1:
            raise ValueError(f"bench: warmup must be >= 1 (the first step is never timed), got {self.warmup}")

    def memory_format(self, net: nn.Module) -> torch.memory_format:
        """channels_last when asked for, unless `net` has a layer that NHWC breaks on a CPU (as training)."""
        if not self.channels_last or (self.device.type == "cpu" and cpu_channels_last_hazard(net)):
            return torch.contiguous_format
        return torch.channels_last

    def autocast(self) -> Callable[[], AbstractContextManager]:
        """A factory of the autocast context that this precision runs the forward pass in."""
        dtype = AUTOCAST_DTYPES.get(self.precision)
        if dtype is None:
            return contextlib.nullcontext
        return lambda: torch.autocast(self.device.type, dtype=dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Loss scaling for 16-mixed, as Lightning does; a pass-through otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "16-mixed")

    def synchronize(self) -> None:
        """Wait for queued GPU work, so that host clocks time it."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def batch(
        self, num_classes: int, memory_format: torch.memory_format, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Random images (B, 3, S, S) in `memory_format` and masks (B, S, S) of class indices."""
        generator = torch.Generator().manual_seed(seed)
        shape = (self.batch_size, 3, self.image_size, self.image_size)
        images = torch.randn(shape, generator=generator).contiguous(memory_format=memory_format)
        masks = torch.randint(0, num_classes, (shape[0], *shape[2:]), generator=generator)
        return images.to(self.device), masks.to(self.device)
