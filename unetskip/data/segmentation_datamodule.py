"""What every segmentation DataModule of the project shares: seeded splits, worker settings, and the
train, val and test loaders over its `datasets`."""

from __future__ import annotations

import functools
import os
import random
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Dataset, default_collate

from unetskip.data.image_size import check_keep_aspect
from unetskip.data.resumable import EpochShuffleSampler, ResumableDataLoader, SeededTransforms
from unetskip.data.transforms import check_augmentation


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


def default_num_workers(processes_per_node: int = 1) -> int:
    """Loader workers per process: the CPUs this process may use, shared by the node's processes, less
    one for each process itself (at least 1)."""
    return max(1, available_cpus() // processes_per_node - 1)


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
    crops stay `image_size` squares.
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
    ) -> None:
        super().__init__()
        check_augmentation(crop_scale, rotate_degrees)
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
        self.datasets: dict[str, Dataset] = {}

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
            num_workers = default_num_workers(self.trainer.num_devices if self.trainer else 1)
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
