"""What every segmentation DataModule of the project shares: seeded splits, worker settings, and the
train, val and test loaders over its `datasets`."""

from __future__ import annotations

import functools
import logging
import os
import random
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, default_collate

from unetskip.data.decoded_cache import DecodedCache, eval_cached_size, full_message, train_cached_size
from unetskip.data.image_size import check_keep_aspect
from unetskip.data.resumable import EpochShuffleSampler, ResumableDataLoader, SeededTransforms
from unetskip.data.transforms import check_augmentation

log = logging.getLogger(__name__)


def split_trainval(
    names: list[str], val_fraction: float, seed: int, key: str = "data.val_fraction"
) -> tuple[list[str], list[str]]:
    """Deterministic split of `names` into (rest, held out) with `val_fraction` of them held out (at least
    one); both sorted. `key` names the option in the error for a fraction outside (0, 1)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"{key} must be in (0, 1), got {val_fraction}")
    shuffled = sorted(names)
    random.Random(seed).shuffle(shuffled)
    num_val = max(1, round(len(shuffled) * val_fraction))
    return sorted(shuffled[num_val:]), sorted(shuffled[:num_val])


def available_cpus() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# With data.cache, a process with at most this many CPUs loads its batches itself (0 workers): the cache
# leaves only the augmentations (about 1 ms a sample at 96-160 px), and a worker process would compete
# with torch's threads for the same cores. Not measured yet (the rule's guess; see default_num_workers).
CACHED_INLINE_MAX_CPUS = 2
# data.cache_max_bytes: 1 GiB (the Oxford subset at 96-160 px takes far less; all of it at 256 px more).
DEFAULT_CACHE_MAX_BYTES = 2**30


def default_num_workers(processes_per_node: int = 1, cached: bool = False) -> int:
    """Loader workers per process for `data.num_workers: null`.

    The CPUs this process may use, shared by the node's processes (`cpus`), less one for each process
    itself, at least 1; but 0 (batches loaded in the training process) when the samples come from
    `data.cache` and `cpus <= CACHED_INLINE_MAX_CPUS`.

    To be measured (docs/speed.md): `fit` img/s (`train/img_per_sec`) of the CPU recipe on a 2-core
    machine with `data.cache: true` and `data.num_workers` 0, 1 and 2 (3 seeds; `unetskip bench` shows
    the same as its real-fit lines), and move `CACHED_INLINE_MAX_CPUS` to where 0 workers stop winning.
    """
    cpus = available_cpus() // processes_per_node
    if cached and cpus <= CACHED_INLINE_MAX_CPUS:
        return 0
    return max(1, cpus - 1)


def collate_padded(items: list[dict[str, Any]], ignore_index: int) -> dict[str, Any]:
    """Samples of different sizes -> one batch, each padded at the bottom and right to the largest height
    and width: `image` (B, 3, H, W) with 0 (the normalised mean), `mask` (B, H, W) with `ignore_index`
    (no loss, no metric), `border` (B, H, W) with False; other keys as lists."""
    height = max(item["image"].shape[-2] for item in items)
    width = max(item["image"].shape[-1] for item in items)
    fill = {"image": 0.0, "mask": ignore_index, "border": False}
    batch: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if key in fill:
            padded = [
                F.pad(value, (0, width - value.shape[-1], 0, height - value.shape[-2]), value=fill[key])
                for value in values
            ]
            batch[key] = torch.stack(padded)
        else:
            batch[key] = default_collate(values)
    return batch


class SegmentationDataModule(L.LightningDataModule):
    """The loaders of a DataModule whose `setup` fills `datasets` ("train", "val", "test"; each a dataset
    of dicts with `image`, `mask`, `name`, with a seedable albumentations `transform`).

    Subclasses set `class_names` and pass the settings they share (same names, same meaning) to this
    constructor, which checks them. Training batches follow `seed` (None takes `torch.initial_seed()`)
    through `EpochShuffleSampler`, so a run resumes mid-epoch on the same batches.
    Under DDP each process evaluates its own share of val and test, every image exactly once.
    `crop_scale` and `rotate_degrees` set the strength of the training augmentations
    (`unetskip.data.transforms.train_transforms`). With `keep_aspect`, `image_size` is one int: val and
    test images are resized so that their shorter side is `image_size`, keeping their aspect ratio
    (batches of mixed sizes padded by `collate_padded`), as predict and the demo resize them; training
    crops stay `image_size` squares. With `cache`, `setup` decodes the train and val images and masks
    into memory once, at most `cache_max_bytes` of them, for all epochs (`unetskip.data.decoded_cache`).
    """

    class_names: list[str]

    def __init__(
        self,
        image_size: int | tuple[int, int],
        ignore_index: int | None,
        val_fraction: float,
        split_seed: int,
        batch_size: int,
        num_workers: int | None,
        pin_memory: bool,
        persistent_workers: bool,
        seed: int | None,
        crop_scale: tuple[float, float],
        rotate_degrees: float,
        keep_aspect: bool,
        cache: bool,
        cache_max_bytes: int,
    ) -> None:
        super().__init__()
        check_augmentation(crop_scale, rotate_degrees)
        if isinstance(cache_max_bytes, bool) or not isinstance(cache_max_bytes, int) or cache_max_bytes < 1:
            raise ValueError(f"data.cache_max_bytes must be a number of bytes >= 1, got {cache_max_bytes!r}")
        check_keep_aspect(image_size, keep_aspect)
        if keep_aspect and ignore_index is None:
            raise ValueError("data.keep_aspect: true needs a data.ignore_index (the padding of mixed sizes)")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        self.image_size = image_size
        self.ignore_index = ignore_index
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.persistent_workers = persistent_workers
        self.seed = seed
        self.crop_scale = tuple(crop_scale)
        self.rotate_degrees = rotate_degrees
        self.keep_aspect = keep_aspect
        self.cache = cache
        self.cache_max_bytes = cache_max_bytes
        self.caches: dict[str, DecodedCache] = {}  # split -> its cache, with `cache`
        self.cache_full = False  # the cache reached cache_max_bytes: later splits are not cached
        self.datasets: dict[str, Dataset] = {}

    def cache_decoded(self, splits: Sequence[str]) -> None:
        """With `cache`, decode the train and val datasets of `splits` into memory now, in this process
        (from `setup`, so before any loader worker starts; see `unetskip.data.decoded_cache`). Test is
        evaluated once: never cached. Splits past the bound are decoded by the loaders as without it."""
        if not self.cache:
            return
        todo = [split for split in splits if split in ("train", "val") and split not in self.caches]
        for position, split in enumerate(todo):
            if self.cache_full:
                return
            dataset = self.datasets[split]
            cached_size = (
                train_cached_size(self.image_size)
                if split == "train"
                else eval_cached_size(self.image_size, self.keep_aspect)
            )
            room = self.cache_max_bytes - sum(cache.nbytes for cache in self.caches.values())
            cache, complete = DecodedCache.fill(dataset, cached_size, room, split)
            self.caches[split] = dataset.cache = cache
            if not complete:
                self.cache_full = True
                log.warning(
                    full_message(
                        split, len(cache.entries), len(dataset), self.cache_max_bytes, todo[position + 1 :]
                    )
                )

    def _eval_sampler(self, split: str) -> UnrepeatedDistributedSampler | None:
        """Under DDP, this process's share of an evaluation split, without repeats; else None."""
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return None
        dataset = self.datasets[split]
        if len(dataset) < trainer.world_size:
            raise ValueError(
                f"the {split} split has {len(dataset)} images, fewer than the {trainer.world_size} "
                "processes: use fewer devices or a larger split (data.val_fraction)"
            )
        return UnrepeatedDistributedSampler(
            dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
        )

    def _workers(self) -> dict[str, int | bool]:
        """DataLoader arguments for worker processes: `num_workers` (None: see `default_num_workers`)."""
        num_workers = self.num_workers
        if num_workers is None:
            processes = self.trainer.num_devices if self.trainer else 1
            num_workers = default_num_workers(processes, cached=self.cache)
        return {
            "num_workers": num_workers,
            "persistent_workers": self.persistent_workers and num_workers > 0,
            "pin_memory": self.pin_memory,
        }

    def _eval_loader(self, split: str) -> DataLoader:
        # With keep_aspect, images of other aspect ratios come in other sizes: padded into one batch.
        collate = (
            functools.partial(collate_padded, ignore_index=self.ignore_index) if self.keep_aspect else None
        )
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=False,
            sampler=self._eval_sampler(split),
            collate_fn=collate,
            **self._workers(),
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self.datasets["train"]
        if self.trainer is not None and self.trainer.world_size > 1:
            # Under DDP Lightning shards this loader with its DistributedSampler (seeded by
            # seed_everything); a run resumed mid-epoch then restarts that epoch.
            return DataLoader(
                dataset,
                batch_size=self.batch_size,
                shuffle=True,
                drop_last=len(dataset) > self.batch_size,
                **self._workers(),
            )
        seed = torch.initial_seed() if self.seed is None else self.seed
        return ResumableDataLoader(
            SeededTransforms(dataset),
            EpochShuffleSampler(len(dataset), seed),
            batch_size=self.batch_size,
            drop_last=len(dataset) > self.batch_size,
            **self._workers(),
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")
