"""Your own images and masks: the dataset and the LightningDataModule of a folder (see
`unetskip.data.folder_layout` for the layouts, `unetskip.data.masks` for the mask encodings)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info
from PIL import UnidentifiedImageError
from torch.utils.data import Dataset

from unetskip.data.check import DataCheckError, DataReport, check_layout, default_check_workers
from unetskip.data.decoded_cache import DecodedCache
from unetskip.data.folder_layout import SPLITS, FolderLayout, FolderNames, Sample, find_layout
from unetskip.data.image_files import UnreadableImageError, load_image
from unetskip.data.masks import MaskEncoding, MaskValueError, read_mask
from unetskip.data.segmentation_datamodule import DEFAULT_CACHE_MAX_BYTES, SegmentationDataModule
from unetskip.data.transforms import eval_transforms, train_transforms

# The classes of a folder whose config names none: a binary task.
DEFAULT_CLASS_NAMES = ("background", "foreground")


class UnreadableSampleError(ValueError):
    """An image or mask that training cannot decode although the data check did: it changed on disk since.
    The message is one line naming the file; from a DataLoader worker it arrives after the worker's
    traceback (torch re-raises it so), and `line` is that line alone."""

    @property
    def line(self) -> str:
        last = str(self).rstrip().splitlines()[-1]
        return last.split(f"{type(self).__name__}: ", 1)[-1]


def _unreadable(path: Path, error: Exception) -> UnreadableSampleError:
    return UnreadableSampleError(
        f"{path} cannot be decoded during training ({error}), though the data check before training "
        "decoded it: it changed on disk since; restore or remove it and run unetskip check-data"
    )


class FolderDataset(Dataset):
    """Samples as dicts `{"image": (3, H, W) float, "mask": (H, W) long, "name": str}` (name: the stem).

    Images are decoded by `load_image` (any format, upright by their EXIF orientation); masks are read as
    stored and decoded by `encoding`. The DataModule checks every file before training, so these only
    guard files changed since: a file that cannot be decoded raises `UnreadableSampleError`, a mask the
    check would reject `MaskValueError`, each naming the file (training stops: it never runs on other
    data than was checked).
    """

    def __init__(
        self, samples: Sequence[Sample], transform: Callable[..., dict], encoding: MaskEncoding
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.encoding = encoding
        self.cache: DecodedCache | None = None  # set by the DataModule with data.cache

    def __len__(self) -> int:
        return len(self.samples)

    def files(self, index: int) -> tuple[Path, Path]:
        """The image and mask files of sample `index` (what the cache watches for changes)."""
        sample = self.samples[index]
        return sample.image, sample.mask

    def decode(self, index: int) -> dict[str, np.ndarray]:
        """Sample `index` decoded: `image` (H, W, 3) uint8 as displayed, `mask` (H, W) uint8 class indices
        (`ignore_index` for void)."""
        sample = self.samples[index]
        try:
            image = load_image(sample.image)  # (H, W, 3) uint8
        except UnreadableImageError as error:
            raise _unreadable(sample.image, error) from error
        try:
            decoded = self.encoding.decode(read_mask(sample.mask))
        except (OSError, UnidentifiedImageError) as error:
            raise _unreadable(sample.mask, error) from error
        if decoded.invalid:
            raise MaskValueError(
                f"{sample.mask}: values {sorted(decoded.invalid)} are outside "
                f"{self.encoding.describe_classes()}"
            )
        if decoded.mask.shape != image.shape[:2]:
            raise MaskValueError(
                f"{sample.mask} is {decoded.mask.shape[1]}x{decoded.mask.shape[0]} but {sample.image} is "
                f"{image.shape[1]}x{image.shape[0]} (as displayed)"
            )
        return {"image": image, "mask": decoded.mask}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        arrays = self.cache.get(index, self.files(index)) if self.cache is not None else None
        if arrays is None:
            arrays = self.decode(index)
        out = self.transform(image=arrays["image"], mask=arrays["mask"])
        return {"image": out["image"], "mask": out["mask"].long(), "name": self.samples[index].stem}


class FolderDataModule(SegmentationDataModule):
    """Your own images and masks from the folder `root` (layouts: `unetskip.data.folder_layout`).

    `class_names` are the classes in class-index order. Masks hold class indices (PNG mode L, or P
    where the palette index is the class), 0/255 binary masks (two classes; `binary_255`), or RGB
    colours with `palette` (one [r, g, b] per class; `void_color` -> `ignore_index`). Pixels equal to
    `ignore_index` count in no loss and no metric. Without split lists or split folders, `val_fraction`
    (and `test_fraction`, 0: no test split) of the images are held out, shuffled by `split_seed`.
    `images_dir`, `masks_dir` (a `{split}` in them: one folder pair per split), `image_suffix`,
    `mask_suffix` and `split_names` (split -> its folder or list name; splits left out are not used)
    take a dataset where it lies (`unetskip.data.folder_layout.FolderNames`). The check decodes every
    file in `check_workers` processes (None: one per CPU, 0: in this process).
    Options shared with `OxfordPetDataModule` mean the same there (`image_size`, `batch_size`, `seed`,
    `num_workers`, `cache`, `cache_max_bytes`, ...). `setup` runs the data check (`unetskip check-data`) on
    the splits the stage needs and stops with its report on any error. Batches: `{"image": (B, 3, H, W),
    "mask": (B, H, W), "name": [..]}` (no trimap border: border-band scores are not computed).
    """

    def __init__(
        self,
        root: str = "data/own",
        class_names: Sequence[str] = DEFAULT_CLASS_NAMES,
        palette: list[tuple[int, int, int]] | None = None,
        void_color: tuple[int, int, int] | None = None,
        binary_255: bool = True,
        image_size: int | tuple[int, int] = 256,
        keep_aspect: bool = False,
        ignore_index: int = 255,
        val_fraction: float = 0.1,
        test_fraction: float = 0.0,
        split_seed: int = 42,
        batch_size: int = 16,
        num_workers: int | None = None,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        seed: int | None = None,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        rotate_degrees: float = 15.0,
        images_dir: str = "images",
        masks_dir: str = "masks",
        image_suffix: str = "",
        mask_suffix: str = "",
        split_names: dict[str, str] | None = None,
        check_workers: int | None = None,
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
        if not 0.0 <= test_fraction < 1.0:
            raise ValueError(f"data.test_fraction must be in [0, 1), got {test_fraction}")
        if check_workers is not None and check_workers < 0:
            raise ValueError(f"data.check_workers must be >= 0 (0: in this process), got {check_workers}")
        self.encoding = MaskEncoding.build(class_names, ignore_index, palette, void_color, binary_255)
        self.names = FolderNames(
            images_dir,
            masks_dir,
            image_suffix,
            mask_suffix,
            dict(split_names) if split_names is not None else {split: split for split in SPLITS},
        )
        self.check_workers = check_workers
        self.class_names = self.class_names_from(self.hparams)
        self.root = Path(root)
        self.test_fraction = test_fraction
        self.reports: dict[str, DataReport] = {}  # stage -> the check run by its setup

    @staticmethod
    def class_names_from(init_args: Mapping[str, Any]) -> list[str]:
        """The classes of the module these constructor arguments (a config's `data.init_args`) build."""
        return list(init_args.get("class_names", DEFAULT_CLASS_NAMES))

    def layout(self) -> FolderLayout:
        """The files and splits of `root` (reads no pixels)."""
        return find_layout(self.root, self.val_fraction, self.test_fraction, self.split_seed, self.names)

    def check(self, splits: Sequence[str] | None = None, layout: FolderLayout | None = None) -> DataReport:
        """Run the data check on `splits` (all when None) of `layout` (default: `self.layout()`); reads,
        never writes."""
        workers = self.check_workers
        if workers is None:
            workers = default_check_workers(self.trainer.num_devices if self.trainer else 1)
        return check_layout(layout or self.layout(), self.class_names, self.encoding, splits, workers)

    def setup(self, stage: str) -> None:
        # predict reads image files with ImageFolderDataModule (`unetskip predict`): nothing to set up here
        splits = {"fit": ("train", "val"), "validate": ("train", "val"), "test": ("test",)}.get(stage, ())
        if all(split in self.datasets for split in splits):
            return
        layout = self.layout()
        if stage == "test" and "test" not in layout.splits:
            raise ValueError(
                f"data.root={str(self.root)!r} has no test split ({layout.description}): add "
                "splits/test.txt or a test/ folder, or set data.test_fraction"
            )
        report = self.check(splits, layout)
        if report.all_errors():
            raise DataCheckError(report.format())
        rank_zero_info(report.format())  # the pairs, notes (0/255 masks, EXIF) and class shares
        self.reports[stage] = report
        for split in splits:
            transform = (
                train_transforms(self.image_size, self.ignore_index, self.crop_scale, self.rotate_degrees)
                if split == "train"
                else eval_transforms(self.image_size, self.keep_aspect)
            )
            self.datasets[split] = FolderDataset(layout.splits[split], transform, self.encoding)
        self.cache_decoded(splits)

    def class_pixels(self) -> np.ndarray:
        """Pixels per class (C,) of the training split, as the data check counted them in `setup("fit")`."""
        for report in self.reports.values():
            if any(split.name == "train" for split in report.splits):
                return report.split("train").class_pixels
        raise RuntimeError("FolderDataModule.class_pixels: call setup('fit') first")
