"""The LightningDataModule for Oxford-IIIT Pet: download, split, loaders."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from unetskip.data.download import dataset_is_complete, download_oxford_pet
from unetskip.data.oxford_pet import (
    MaskMode,
    OxfordPetDataset,
    class_names_for,
    find_samples,
    read_split,
)
from unetskip.data.segmentation_datamodule import (
    DEFAULT_CACHE_MAX_BYTES,
    SegmentationDataModule,
    split_trainval,
)
from unetskip.data.transforms import eval_transforms, train_transforms

DEFAULT_MASK_MODE: MaskMode = "binary"


def take_subset(names: list[str], max_images: int | None, seed: int) -> list[str]:
    """At most `max_images` of `names`, chosen by `seed` (sorted); all of them when None or fewer."""
    if max_images is None or len(names) <= max_images:
        return names
    return sorted(random.Random(seed).sample(sorted(names), max_images))


class OxfordPetDataModule(SegmentationDataModule):
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
    Predict reads any image files with `ImageFolderDataModule` instead.
    `num_workers=None` gives each process the node's CPUs shared among its processes, less one (0 with
    `cache` on 2 CPUs or fewer: `default_num_workers`). `cache` decodes the train and val images and trimaps
    (the `border` too) into memory once, in `setup`, at most `cache_max_bytes` bytes of them.
    Under DDP each process evaluates its own share of val and test, every image exactly once (no padding
    with repeated images), so metrics summed across processes equal those of one process.
    """

    @staticmethod
    def class_names_from(init_args: Mapping[str, Any]) -> list[str]:
        """The classes of the module these constructor arguments (a config's `data.init_args`) build."""
        return class_names_for(init_args.get("mask_mode", DEFAULT_MASK_MODE))

    def __init__(
        self,
        root: str = "data/oxford-iiit-pet",
        download: bool = False,
        image_size: int | tuple[int, int] = 256,
        keep_aspect: bool = False,
        mask_mode: MaskMode = DEFAULT_MASK_MODE,
        ignore_index: int = 255,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        max_images: int | None = None,
        batch_size: int = 16,
        num_workers: int | None = None,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        seed: int | None = None,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        rotate_degrees: float = 15.0,
        cache: bool = False,
        cache_max_bytes: int = DEFAULT_CACHE_MAX_BYTES,
    ) -> None:
        super().__init__(
            image_size,
            ignore_index,
            val_fraction,
            split_seed,
            batch_size,
            num_workers,
            pin_memory,
            persistent_workers,
            seed,
            crop_scale,
            rotate_degrees,
            keep_aspect,
            cache,
            cache_max_bytes,
        )
        self.save_hyperparameters()
        self.class_names = self.class_names_from(self.hparams)
        if max_images is not None and max_images < 2:
            raise ValueError(
                f"data.max_images must be >= 2 (a train and a val image) or null, got {max_images}"
            )
        self.root = Path(root)
        self.download = download
        self.mask_mode = mask_mode
        self.max_images = max_images

    def prepare_data(self) -> None:
        """Download when asked and not already there (runs on one process only)."""
        if self.download and not dataset_is_complete(self.root):
            download_oxford_pet(self.root)

    def setup(self, stage: str) -> None:
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
                train_transforms(self.image_size, self.ignore_index, self.crop_scale, self.rotate_degrees),
                **dataset_args,
            )
            self.datasets["val"] = OxfordPetDataset(
                find_samples(self.root, val_names),
                eval_transforms(self.image_size, self.keep_aspect),
                **dataset_args,
            )
            self.cache_decoded(("train", "val"))
        if stage == "test" and "test" not in self.datasets:
            self.datasets["test"] = OxfordPetDataset(
                find_samples(
                    self.root, take_subset(read_split(self.root, "test"), self.max_images, self.split_seed)
                ),
                eval_transforms(self.image_size, self.keep_aspect),
                **dataset_args,
            )
