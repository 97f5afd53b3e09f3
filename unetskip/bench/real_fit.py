"""A real fit: `Trainer.fit` on the config's DataModule and its loader workers, with and without
`data.cache`, against the network alone on a fixed batch (the model table's train img/s)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from unetskip.bench.loader import build_datamodule
from unetskip.bench.overhead import StepClock, bench_trainer, build_module, quiet_lightning, steady_rate
from unetskip.bench.settings import Settings
from unetskip.bench.subjects import Subject

MIB = 2**20


@dataclass
class RealFitResult:
    name: str
    cache: bool
    num_workers: int
    img_s: float  # training steps through Trainer.fit after the warm-up, data loading included
    setup_s: float  # DataModule.setup("fit"): with the cache, decoding the train and val splits
    cache_mib: float  # bytes the cache holds (0 without it)


def measure_real_fit(
    subject: Subject, data_root: str, settings: Settings, cache: bool, num_workers: int | None
) -> RealFitResult:
    """`settings.warmup + settings.steps` training steps of `subject`'s module through `Trainer.fit` on
    its DataModule at `data_root` (the benchmark's image and batch size; its default workers unless
    `num_workers`), timed after the warm-up; no validation."""
    datamodule = build_datamodule(subject, data_root, settings, num_workers, cache=cache)
    start = time.perf_counter()
    datamodule.setup("fit")  # Trainer.fit's own setup call then finds the datasets there
    setup_s = time.perf_counter() - start
    torch.manual_seed(0)
    module = build_module(subject, settings)
    clock = StepClock(settings)
    with tempfile.TemporaryDirectory() as log_dir, quiet_lightning():
        trainer = bench_trainer(settings, settings.warmup + settings.steps, Path(log_dir), clock)
        trainer.fit(module, datamodule=datamodule)
        workers = trainer.train_dataloader.num_workers
    caches = getattr(datamodule, "caches", {})
    return RealFitResult(
        name=subject.name,
        cache=cache,
        num_workers=workers,
        img_s=steady_rate(clock.times, settings),
        setup_s=setup_s,
        cache_mib=sum(cache.nbytes for cache in caches.values()) / MIB,
    )


def measure_real_fits(
    subject: Subject, data_root: str, settings: Settings, workers: Sequence[int | None]
) -> list[RealFitResult]:
    """`measure_real_fit` without and then with the cache, for each of `workers` (None: the default)."""
    return [
        measure_real_fit(subject, data_root, settings, cache, num_workers)
        for cache in (False, True)
        for num_workers in workers
    ]
