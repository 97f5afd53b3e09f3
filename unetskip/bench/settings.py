"""How a benchmark runs: device, precision, memory format, compile, sizes and repeats."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

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

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

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

    def batch(self, num_classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Random images (B, 3, S, S) in the memory format and masks (B, S, S) of class indices."""
        generator = torch.Generator().manual_seed(seed)
        shape = (self.batch_size, 3, self.image_size, self.image_size)
        images = torch.randn(shape, generator=generator).contiguous(memory_format=self.memory_format)
        masks = torch.randint(0, num_classes, (shape[0], *shape[2:]), generator=generator)
        return images.to(self.device), masks.to(self.device)
