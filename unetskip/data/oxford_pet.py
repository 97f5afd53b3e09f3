"""Oxford-IIIT Pet in its official layout: split lists, image and trimap reading, mask modes.

<root>/images/<name>.jpg
<root>/annotations/trimaps/<name>.png      1 = pet, 2 = background, 3 = border
<root>/annotations/trainval.txt, test.txt  "<name> <class id> <species> <breed id>" per line
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from unetskip.data.decoded_cache import DecodedCache
from unetskip.data.image_files import UnreadableImageError, displayed_size, load_image
from unetskip.data.list_files import list_entries

log = logging.getLogger(__name__)

MaskMode = Literal["binary", "binary_ignore_border", "trimap"]
MASK_MODES: tuple[str, ...] = ("binary", "binary_ignore_border", "trimap")

TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER = 1, 2, 3


def class_names_for(mask_mode: MaskMode) -> list[str]:
    """The class names a mask mode produces, in class-index order."""
    if mask_mode not in MASK_MODES:
        raise ValueError(f"data.mask_mode must be one of {MASK_MODES}, got {mask_mode!r}")
    return ["background", "pet", "border"] if mask_mode == "trimap" else ["background", "pet"]


def trimap_to_mask(trimap: np.ndarray, mask_mode: MaskMode, ignore_index: int = 255) -> np.ndarray:
    """Official trimap values (H, W) -> class indices (H, W) uint8.

    binary: pet and border -> 1, background -> 0 (the segmentation_models_pytorch convention);
    binary_ignore_border: pet -> 1, background -> 0, border -> `ignore_index`;
    trimap: background -> 0, pet -> 1, border -> 2.
    """
    class_names_for(mask_mode)  # validates the mode
    border_value = {"binary": 1, "binary_ignore_border": ignore_index, "trimap": 2}[mask_mode]
    mask = np.zeros(trimap.shape, dtype=np.uint8)
    mask[trimap == TRIMAP_PET] = 1
    mask[trimap == TRIMAP_BORDER] = border_value
    return mask


def read_split(root: Path, split: Literal["trainval", "test"]) -> list[str]:
    """Image names listed in `annotations/<split>.txt`, in file order."""
    path = root / "annotations" / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: data.root must be the Oxford-IIIT Pet folder holding images/ and "
            "annotations/ (set data.download=true to fetch it)"
        )
    return [line.split()[0] for _, line in list_entries(path)]


@dataclass(frozen=True)
class PetSample:
    name: str
    image_path: Path
    trimap_path: Path


def check_sample(root: Path, name: str) -> tuple[PetSample | None, str]:
    """Find a sample's files and compare their sizes from the headers (no full decode): the image's
    displayed size (EXIF orientation applied, as `load_image` decodes it) with the trimap's stored size.

    Returns the sample and "" when usable, else None and the reason.
    """
    sample = PetSample(
        name, root / "images" / f"{name}.jpg", root / "annotations" / "trimaps" / f"{name}.png"
    )
    sizes = []
    for path in (sample.image_path, sample.trimap_path):
        if not path.is_file():
            return None, f"missing file {path}"
        try:
            with Image.open(path) as image:
                # A mask is never turned by EXIF orientation: its stored size is its size.
                sizes.append(displayed_size(image) if path == sample.image_path else image.size)
        except (OSError, UnidentifiedImageError) as error:
            return None, f"unreadable file {path}: {error}"
    if sizes[0] != sizes[1]:
        return None, f"trimap size {sizes[1]} differs from image size {sizes[0]} (as displayed) for {name}"
    return sample, ""


def find_samples(root: Path, names: Sequence[str]) -> list[PetSample]:
    """The usable samples among `names`; each unusable one is logged with its reason and skipped."""
    samples, problems = [], []
    for name in names:
        sample, reason = check_sample(root, name)
        if sample is None:
            problems.append(reason)
        else:
            samples.append(sample)
    if problems:
        log.warning(
            "skipping %d of %d samples in %s:\n  %s",
            len(problems),
            len(names),
            root,
            "\n  ".join(problems),
        )
    return samples


class OxfordPetDataset(Dataset):
    """Samples as dicts `{"image": (3, H, W) float, "mask": (H, W) long, "border": (H, W) bool, "name": str}`.

    `border` marks the trimap's border region whatever the mask mode (in `binary` mode the mask merges
    it into the pet), for the border-band scores of `unetskip.training.metrics`.
    `transform` is an albumentations-style callable taking `image=` (H, W, 3) uint8, `mask=` (H, W)
    uint8 and `masks=` a list of (H, W) uint8, and returning tensors (see `unetskip.data.transforms`).
    """

    def __init__(
        self,
        samples: Sequence[PetSample],
        transform: Callable[..., dict],
        mask_mode: MaskMode = "binary",
        ignore_index: int = 255,
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.mask_mode = mask_mode
        self.ignore_index = ignore_index
        self.cache: DecodedCache | None = None  # set by the DataModule with data.cache

    def __len__(self) -> int:
        return len(self.samples)

    def files(self, index: int) -> tuple[Path, Path]:
        """The image and trimap files of sample `index` (what the cache watches for changes)."""
        sample = self.samples[index]
        return sample.image_path, sample.trimap_path

    def decode(self, index: int) -> dict[str, np.ndarray]:
        """Sample `index` decoded: `image` (H, W, 3) uint8 as displayed, `mask` (H, W) uint8 class
        indices of the mask mode, `border` (H, W) uint8 (1 in the trimap's border region)."""
        sample = self.samples[index]
        try:
            image = load_image(sample.image_path)  # (H, W, 3) as displayed
            with Image.open(sample.trimap_path) as trimap_file:
                trimap = np.asarray(trimap_file)  # (H, W) as stored: masks carry no orientation
        except (OSError, UnidentifiedImageError, UnreadableImageError) as error:
            raise RuntimeError(f"could not decode sample {sample.name}: {error}") from error
        mask = trimap_to_mask(trimap, self.mask_mode, self.ignore_index)
        return {"image": image, "mask": mask, "border": (trimap == TRIMAP_BORDER).astype(np.uint8)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | str]:
        arrays = self.cache.get(index, self.files(index)) if self.cache is not None else None
        if arrays is None:
            arrays = self.decode(index)
        out = self.transform(image=arrays["image"], mask=arrays["mask"], masks=[arrays["border"]])
        return {
            "image": out["image"],
            "mask": out["mask"].long(),
            # == 1: pixels a geometric transform brings in from outside get the mask fill value.
            "border": out["masks"][0] == 1,
            "name": self.samples[index].name,
        }
