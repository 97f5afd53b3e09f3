"""Lightning's per-step overhead: the same module and batches in a plain PyTorch loop and in Trainer.fit."""

from __future__ import annotations

import contextlib
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader

from unetskip.bench.settings import Settings
from unetskip.bench.subjects import Subject
from unetskip.training.module import SegmentationModule


@dataclass
class OverheadResult:
    name: str
    plain_img_s: float  # median over repeats of a plain PyTorch loop
    lightning_img_s: float  # the same steps through Trainer.fit

    @property
    def overhead(self) -> float:
        """Extra time per image that Lightning adds, as a fraction of the plain loop's (0.05 = 5%)."""
        return self.plain_img_s / self.lightning_img_s - 1


class StepClock(L.Callback):
    """Records the time at the end of every training step."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.times: list[float] = []

    def on_train_batch_end(self, *args: object) -> None:
        self.settings.synchronize()
        self.times.append(time.perf_counter())


def steady_rate(times: list[float], settings: Settings) -> float:
    """Images/s between the end of the warm-up and the last step."""
    return settings.steps * settings.batch_size / (times[-1] - times[settings.warmup - 1])


def build_module(subject: Subject, settings: Settings) -> SegmentationModule:
    net = subject.build_net()
    module = SegmentationModule(
        net,
        class_names=[f"class{i}" for i in range(subject.num_classes)],
        loss=subject.loss,
        ignore_index=subject.ignore_index,
        optimizer=subject.optimizer_factory(),
    )
    module.to(settings.device, memory_format=settings.memory_format(net))
    if settings.compile:
        module.net.compile()
    return module


def plain_loop(module: SegmentationModule, batches: list[dict], settings: Settings) -> float:
    """The module's own training_step (forward, loss, metric update) with backward and step, no Trainer."""
    module.trainer = None
    module.train()
    optimizer = module.configure_optimizers()
    scaler = settings.grad_scaler()
    autocast = settings.autocast()
    times = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*self.log.*")  # no Trainer to log to, by design
        for index, batch in enumerate(batches):
            batch = {key: value.to(settings.device, non_blocking=True) for key, value in batch.items()}
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = module.training_step(batch, index)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            settings.synchronize()
            times.append(time.perf_counter())
    module.train_scores.reset()
    return steady_rate(times, settings)


def bench_trainer(settings: Settings, max_steps: int, log_dir: Path, clock: StepClock) -> L.Trainer:
    """A Trainer of `max_steps` training steps on the benchmark's device and precision, without
    validation or checkpoints, logging to CSV every 10 steps as the configs do."""
    return L.Trainer(
        accelerator=settings.device.type,
        devices=[settings.device.index or 0] if settings.device.type == "cuda" else 1,
        precision=settings.precision,
        max_steps=max_steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=CSVLogger(log_dir, name="bench"),
        log_every_n_steps=10,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )


def lightning_fit(
    module: SegmentationModule, batches: list[dict], settings: Settings, log_dir: Path
) -> float:
    """The same batches through `Trainer.fit`."""
    clock = StepClock(settings)
    trainer = bench_trainer(settings, len(batches), log_dir, clock)
    # batch_size=None: the loader hands out the prepared batches as they are.
    trainer.fit(module, DataLoader(batches, batch_size=None, shuffle=False))
    return steady_rate(clock.times, settings)


@contextlib.contextmanager
def quiet_lightning() -> Iterator[None]:
    """No "GPU available" banner per fit, and no warnings about the deliberately short fits without
    validation."""
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        lightning_log.setLevel(level)


def measure_overhead(subject: Subject, settings: Settings) -> OverheadResult:
    """A plain loop and Trainer.fit, alternately `settings.repeats` times each, on one module and batches."""
    torch.manual_seed(0)
    module = build_module(subject, settings)
    batches = []
    memory_format = settings.memory_format(module.net)
    for seed in range(settings.warmup + settings.steps):
        images, masks = settings.batch(subject.num_classes, memory_format, seed=seed)
        batches.append({"image": images.cpu(), "mask": masks.cpu()})
    plain, fitted = [], []
    with tempfile.TemporaryDirectory() as log_dir, quiet_lightning():
        for _ in range(settings.repeats):
            plain.append(plain_loop(module, batches, settings))
            fitted.append(lightning_fit(module, batches, settings, Path(log_dir)))
    return OverheadResult(subject.name, statistics.median(plain), statistics.median(fitted))
