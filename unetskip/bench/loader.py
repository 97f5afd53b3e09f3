"""The data pipeline alone: the DataModule's train loader, and what one sample costs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

from unetskip.bench.settings import Settings
from unetskip.bench.subjects import Subject
from unetskip.data.folder_layout import Sample
from unetskip.data.image_files import load_image
from unetskip.data.oxford_pet import PetSample


@dataclass
class LoaderResult:
    num_workers: int
    pin_memory: bool
    img_s: float  # the train loader alone, after its first batch
    decode_ms: float  # reading and decoding one image and its mask (trimap), in one process
    sample_ms: float  # one whole training sample (decode + augmentations + tensor), in one process


def endless(loader: DataLoader) -> Iterator[dict]:
    """The loader's batches, epoch after epoch."""
    while True:
        yield from loader


def sample_files(sample: PetSample | Sample) -> tuple[Path, Path]:
    """The image and mask files of a training sample (Oxford-IIIT Pet's, or a folder's)."""
    if isinstance(sample, PetSample):
        return sample.image_path, sample.trimap_path
    return sample.image, sample.mask


def build_datamodule(
    subject: Subject, data_root: str, settings: Settings, num_workers: int | None, cache: bool = False
) -> L.LightningDataModule:
    """`subject`'s DataModule on `data_root` at the benchmark's image and batch size, with its default
    workers unless `num_workers`, and `data.cache` as given; the config's other data settings (mask
    encoding, classes) are kept, and the benchmark never downloads."""
    data_args = {key: value for key, value in subject.data_args.items() if key != "download"}
    data_args |= {"image_size": settings.image_size, "batch_size": settings.batch_size}
    data_args |= {"root": data_root, "num_workers": num_workers, "cache": cache}
    return subject.data_class(**data_args)


def measure_loader(
    subject: Subject, data_root: str, settings: Settings, num_workers: int | None, batches: int, samples: int
) -> LoaderResult:
    """The train loader alone of `subject`'s DataModule on `data_root` (its default workers unless
    `num_workers`), timed over `batches` batches after the first; and the per-sample cost of decoding vs
    the whole sample."""
    datamodule = build_datamodule(subject, data_root, settings, num_workers)
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
        image_path, mask_path = sample_files(sample)
        start = time.perf_counter()
        load_image(image_path)
        with Image.open(mask_path) as mask:
            np.asarray(mask)
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
