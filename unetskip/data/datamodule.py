"""The LightningDataModule for Oxford-IIIT Pet: download, split, loaders."""

from __future__ import annotations

import os
import random
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader

from unetskip.data.download import dataset_is_complete, download_oxford_pet
from unetskip.data.image_files import ImageFileDataset, collate_image_files
from unetskip.data.oxford_pet import (
    MaskMode,
    OxfordPetDataset,
    class_names_for,
    find_samples,
    read_split,
)
from unetskip.data.resumable import EpochShuffleSampler, ResumableDataLoader, SeededTransforms
from unetskip.data.transforms import eval_transforms, train_transforms


def split_trainval(names: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic train/val split of the official trainval list (the order of the result is sorted)."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
    shuffled = sorted(names)
    random.Random(seed).shuffle(shuffled)
    num_val = max(1, round(len(shuffled) * val_fraction))
    return sorted(shuffled[num_val:]), sorted(shuffled[:num_val])


def take_subset(names: list[str], max_images: int | None, seed: int) -> list[str]:
    """At most `max_images` of `names`, chosen by `seed` (sorted); all of them when None or fewer."""
    if max_images is None or len(names) <= max_images:
        return names
    return sorted(random.Random(seed).sample(sorted(names), max_images))


def default_num_workers(processes_per_node: int = 1) -> int:
    """Loader workers per process: the CPUs this process may use, shared by the node's processes, less
    one for each process itself (at least 1)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // processes_per_node - 1)


class OxfordPetDataModule(L.LightningDataModule):
    """Oxford-IIIT Pet images and trimaps from `root`, the dataset folder itself.

    `root` holds `images/` and `annotations/` (the official layout). With `download=True` the official
    archives are fetched into it when missing; otherwise nothing is ever written there.
    Train and val come from the official `trainval` list split by `val_fraction` and `split_seed`;
    test is the official `test` list. `max_images` caps each of the two lists (a seeded choice by
    `split_seed`) for a short run on a part of the dataset; None takes all.
    Batches: `{"image": (B, 3, H, W), "mask": (B, H, W), "border": (B, H, W) bool (the trimap border
    region), "name": [..]}`.
    The training order and augmentations follow `seed` (the CLI links it to `seed_everything`; None
    takes `torch.initial_seed()`), so a run is reproducible and resumes mid-epoch on the same batches.
    Predict serves `predict_dataset` instead (any image files, set by `unetskip predict`) and needs neither
    `root` nor a download.
    `num_workers=None` gives each process the node's CPUs shared among its processes, less one.
    Under DDP each process evaluates its own share of val and test, every image exactly once (no padding
    with repeated images), so metrics summed across processes equal those of one process.
    """

    def __init__(
        self,
        root: str = "data/oxford-iiit-pet",
        download: bool = False,
        image_size: int | tuple[int, int] = 256,
        mask_mode: MaskMode = "binary",
        ignore_index: int = 255,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        max_images: int | None = None,
        batch_size: int = 16,
        num_workers: int | None = None,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.class_names = class_names_for(mask_mode)
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        if max_images is not None and max_images < 2:
            raise ValueError(
                f"data.max_images must be >= 2 (a train and a val image) or null, got {max_images}"
            )
        self.root = Path(root)
        self.download = download
        self.image_size = image_size
        self.mask_mode = mask_mode
        self.ignore_index = ignore_index
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.max_images = max_images
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.persistent_workers = persistent_workers
        self.seed = seed
        self.datasets: dict[str, OxfordPetDataset] = {}
        self.predict_dataset: ImageFileDataset | None = None

    def prepare_data(self) -> None:
        """Download when asked and not already there (runs on one process only; never for predict)."""
        predicting = self.trainer is not None and self.trainer.predicting
        if self.download and not predicting and not dataset_is_complete(self.root):
            download_oxford_pet(self.root)

    def setup(self, stage: str) -> None:
        if stage == "predict":
            return  # predict_dataset reads its own files
        if not dataset_is_complete(self.root):
            raise FileNotFoundError(
                f"data.root={str(self.root)!r} is not an Oxford-IIIT Pet folder (it needs images/, "
                "annotations/trimaps/, annotations/trainval.txt and annotations/test.txt): set "
                "data.download=true, or point data.root at an extracted copy"
            )
        dataset_args = {"mask_mode": self.mask_mode, "ignore_index": self.ignore_index}
        if stage in ("fit", "validate") and "train" not in self.datasets:
            trainval = take_subset(read_split(self.root, "trainval"), self.max_images, self.split_seed)
            train_names, val_names = split_trainval(trainval, self.val_fraction, self.split_seed)
            self.datasets["train"] = OxfordPetDataset(
                find_samples(self.root, train_names),
                train_transforms(self.image_size, self.ignore_index),
                **dataset_args,
            )
            self.datasets["val"] = OxfordPetDataset(
                find_samples(self.root, val_names), eval_transforms(self.image_size), **dataset_args
            )
        if stage == "test" and "test" not in self.datasets:
            self.datasets["test"] = OxfordPetDataset(
                find_samples(
                    self.root, take_subset(read_split(self.root, "test"), self.max_images, self.split_seed)
                ),
                eval_transforms(self.image_size),
                **dataset_args,
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
            num_workers = default_num_workers(self.trainer.num_devices if self.trainer else 1)
        return {
            "num_workers": num_workers,
            "persistent_workers": self.persistent_workers and num_workers > 0,
            "pin_memory": self.pin_memory,
        }

    def _eval_loader(self, split: str) -> DataLoader:
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=False,
            sampler=self._eval_sampler(split),
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

    def predict_dataloader(self) -> DataLoader:
        """Batches of `collate_image_files`: `batch_size` resized images, or one native-size image at a time
        (their sizes differ; tiles are batched instead)."""
        if self.predict_dataset is None:
            raise RuntimeError("no images to predict on: run `unetskip predict --input PATH --output DIR`")
        return DataLoader(
            self.predict_dataset,
            batch_size=self.batch_size if self.predict_dataset.image_size is not None else 1,
            shuffle=False,
            collate_fn=collate_image_files,
            **{**self._workers(), "persistent_workers": False},  # one pass: no workers to keep
        )
