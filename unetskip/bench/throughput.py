"""Training and inference throughput, peak memory, parameters and MACs of the networks.

The timed repeats go round-robin over the networks (network A repeat 1, B repeat 1, ..., A repeat 2, ...),
so a change in the machine's load during the run hits every network alike and the ratios stay fair.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from unetskip.bench.memory import MIB, PeakMemory, baseline_memory
from unetskip.bench.settings import Settings
from unetskip.bench.subjects import Subject


@dataclass
class ModelResult:
    name: str
    params_m: float  # millions of parameters
    gmacs: float  # multiply-accumulates of one forward pass per image, in billions
    train_img_s: float  # median over repeats
    infer_img_s: float
    peak_mib: float  # CUDA max allocated, or CPU RSS growth, during a training step
    warmup_s: float  # first training step plus first inference batch (compile time when compiling)
    layout: str  # NHWC or NCHW, as it ran


def count_macs(net: nn.Module, settings: Settings) -> float:
    """MACs of one forward pass on one image (half the FLOPs counted by PyTorch's FLOP counter)."""
    image = torch.randn(1, 3, settings.image_size, settings.image_size, device=settings.device)
    net.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(image)
    net.train()
    return counter.get_total_flops() / 2


def seconds(step: Callable[[], object], settings: Settings, count: int = 1) -> float:
    """Wall time of `count` calls of `step`, GPU work included."""
    settings.synchronize()
    start = time.perf_counter()
    for _ in range(count):
        step()
    settings.synchronize()
    return time.perf_counter() - start


class Runner:
    """One network on the device with its loss, optimizer and a fixed random batch."""

    def __init__(self, subject: Subject, settings: Settings) -> None:
        self.name = subject.name
        self.settings = settings
        torch.manual_seed(0)
        self.net = subject.build_net()
        memory_format = settings.memory_format(self.net)
        self.layout = "NHWC" if memory_format == torch.channels_last else "NCHW"
        self.net.to(settings.device, memory_format=memory_format)
        self.params = sum(p.numel() for p in self.net.parameters())
        self.macs = count_macs(self.net, settings)
        if settings.compile:
            self.net.compile()
        self.criterion = subject.build_criterion()
        self.optimizer = subject.optimizer_factory()(self.net.parameters())
        self.scaler = settings.grad_scaler()
        self.autocast = settings.autocast()
        self.images, self.masks = settings.batch(subject.num_classes, memory_format)

    def train_step(self) -> None:
        """Forward, loss, backward and optimizer step, as Lightning runs them at this precision."""
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.criterion(self.net(self.images), self.masks)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def infer_step(self) -> None:
        with torch.inference_mode(), self.autocast():
            self.net(self.images)

    def rate(self, step: Callable[[], None]) -> float:
        """Images/s of one timed repeat."""
        return (
            self.settings.steps * self.settings.batch_size / seconds(step, self.settings, self.settings.steps)
        )


def round_robin(runners: list[Runner], step_name: str, settings: Settings) -> dict[str, float]:
    """Median images/s of each runner's `step_name` over `settings.repeats` interleaved repeats."""
    rates: dict[str, list[float]] = {runner.name: [] for runner in runners}
    for _ in range(settings.repeats):
        for runner in runners:
            rates[runner.name].append(runner.rate(getattr(runner, step_name)))
    return {name: statistics.median(values) for name, values in rates.items()}


def measure_models(subjects: list[Subject], settings: Settings) -> list[ModelResult]:
    """Build and warm up each network in turn, measuring its memory; then time them all, interleaved."""
    runners, peaks, warmups = [], {}, {}
    for subject in subjects:
        before = baseline_memory(settings.device)
        runner = Runner(subject, settings)
        runner.net.train()
        warmups[runner.name] = seconds(runner.train_step, settings)
        seconds(runner.train_step, settings, settings.warmup - 1)
        with PeakMemory(settings.device) as memory:
            runner.train_step()
        peaks[runner.name] = (memory.peak - before) / MIB
        runners.append(runner)
    train = round_robin(runners, "train_step", settings)
    for runner in runners:
        runner.optimizer.zero_grad(set_to_none=True)  # gradients are not needed any more
        runner.net.eval()
        warmups[runner.name] += seconds(runner.infer_step, settings)
        seconds(runner.infer_step, settings, settings.warmup - 1)
    infer = round_robin(runners, "infer_step", settings)
    return [
        ModelResult(
            name=r.name,
            params_m=r.params / 1e6,
            gmacs=r.macs / 1e9,
            train_img_s=train[r.name],
            infer_img_s=infer[r.name],
            peak_mib=peaks[r.name],
            warmup_s=warmups[r.name],
            layout=r.layout,
        )
        for r in runners
    ]
