"""What surrounds the network: Lightning's per-step overhead, and the data loader's throughput."""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from PIL import Image
from torch.utils.data import DataLoader

from unetskip.bench.settings import Settings
from unetskip.bench.subjects import Subject
from unetskip.data.datamodule import OxfordPetDataModule
from unetskip.data.oxford_pet import load_rgb
from unetskip.segmentation_module import SegmentationModule


@dataclass
class OverheadResult:
    name: str
    plain_img_s: float  # median over repeats of a plain PyTorch loop
    lightning_img_s: float  # the same steps through Trainer.fit

    @property
    def overhead(self) -> float:
        """Extra time per image that Lightning adds, as a fraction of the plain loop's (0.05 = 5%)."""
        return self.plain_img_s / self.lightning_img_s - 1


@dataclass
class LoaderResult:
    num_workers: int
    pin_memory: bool
    img_s: float  # the train loader alone, after its first batch
    decode_ms: float  # reading and decoding one image and its trimap, in one process
    sample_ms: float  # one whole training sample (decode + augmentations + tensor), in one process


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


def lightning_fit(
    module: SegmentationModule, batches: list[dict], settings: Settings, log_dir: Path
) -> float:
    """The same batches through `Trainer.fit`, logging to CSV every 10 steps as the configs do."""
    clock = StepClock(settings)
    trainer = L.Trainer(
        accelerator=settings.device.type,
        devices=1,
        precision=settings.precision,
        max_steps=len(batches),
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=CSVLogger(log_dir, name="bench"),
        log_every_n_steps=10,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    # batch_size=None: the loader hands out the prepared batches as they are.
    trainer.fit(module, DataLoader(batches, batch_size=None, shuffle=False))
    return steady_rate(clock.times, settings)


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
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)  # no "GPU available" banner per fit
    try:
        with tempfile.TemporaryDirectory() as log_dir, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the fits are deliberately short, without validation
            for _ in range(settings.repeats):
                plain.append(plain_loop(module, batches, settings))
                fitted.append(lightning_fit(module, batches, settings, Path(log_dir)))
    finally:
        lightning_log.setLevel(level)
    return OverheadResult(subject.name, statistics.median(plain), statistics.median(fitted))


def endless(loader: DataLoader) -> Iterator[dict]:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def measure_loader(
    data_root: str, settings: Settings, num_workers: int | None, batches: int, samples: int
) -> LoaderResult:
    """The DataModule's train loader alone (its default workers unless `num_workers`), timed over
    `batches` batches after the first; and the per-sample cost of decoding vs the whole sample."""
    datamodule = OxfordPetDataModule(
        root=data_root,
        image_size=settings.image_size,
        batch_size=settings.batch_size,
        num_workers=num_workers,
    )
    datamodule.setup("fit")
    dataset = datamodule.datasets["train"]
    loader = datamodule.train_dataloader()
    stream = endless(loader)
    next(stream)  # the first batch waits for the workers to start: not timed
    start = time.perf_counter()
    images = sum(len(next(stream)["image"]) for _ in range(batches))
    img_s = images / (time.perf_counter() - start)
    del stream

    decode = whole = 0.0
    for index, sample in enumerate(dataset.samples[:samples]):
        dataset[index]  # untimed: brings the files into the page cache, as in any epoch but the first
        start = time.perf_counter()
        load_rgb(sample.image_path)
        with Image.open(sample.trimap_path) as trimap:
            np.asarray(trimap)
        decode += time.perf_counter() - start
        start = time.perf_counter()
        dataset[index]
        whole += time.perf_counter() - start
    count = min(samples, len(dataset))
    return LoaderResult(
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
        img_s=img_s,
        decode_ms=1000 * decode / count,
        sample_ms=1000 * whole / count,
    )
