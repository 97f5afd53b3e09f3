"""The data pipeline alone: the DataModule's train loader, and what one sample costs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

from unetskip.bench.settings import Settings
from unetskip.data.datamodule import OxfordPetDataModule
from unetskip.data.image_files import load_image


@dataclass
class LoaderResult:
    num_workers: int
    pin_memory: bool
    img_s: float  # the train loader alone, after its first batch
    decode_ms: float  # reading and decoding one image and its trimap, in one process
    sample_ms: float  # one whole training sample (decode + augmentations + tensor), in one process


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
        load_image(sample.image_path)
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
