"""Predicted masks paired with true masks by relative path and stem, for `unetskip score`.

Truth is either a folder of class-index masks (0/255 binary masks read as 0/1, as the folder data reads
them), or an Oxford-IIIT Pet folder (`annotations/trimaps`), whose trimaps are read through the same
mask mode as `OxfordPetDataModule` (binary: pet = pet + border) for the names of one split list.
Predictions are the class-index PNGs `unetskip predict` writes (`<stem>.png`; its overlays and
probability maps are not predictions).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from unetskip.data.folder_layout import relative_stem
from unetskip.data.image_files import IMAGE_SUFFIXES, load_image
from unetskip.data.masks import MASK_SUFFIXES, MaskEncoding, read_mask
from unetskip.data.oxford_pet import TRIMAP_BORDER, MaskMode, read_split, trimap_to_mask

TruthFormat = Literal["auto", "masks", "oxford_trimap"]
LISTED = 5  # names listed in an error, then a count


@dataclass(frozen=True)
class MaskPair:
    """One image: the relative `path` it is reported under, its predicted and true mask files, and its
    photo (None: not known; the galleries then show a black image)."""

    path: str
    prediction: Path
    truth: Path
    image: Path | None


def is_oxford(folder: Path) -> bool:
    return (folder / "annotations" / "trimaps").is_dir()


def files_by_stem(folder: Path, suffixes: Sequence[str], skip: Sequence[str] = ()) -> dict[str, Path]:
    """relative stem -> file of `folder` (recursively) with one of `suffixes`, names holding a `skip`
    part left out."""
    found = {}
    for directory, _, names in os.walk(folder):
        for name in sorted(names):
            path = Path(directory) / name
            if path.suffix.lower() in suffixes and not any(part in name for part in skip):
                found[relative_stem(path, folder)] = path
    return found


def listed(names: Sequence[str]) -> str:
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


def pair_masks(
    predictions: Path, truth: Path, truth_format: TruthFormat, split: str, images: Path | None
) -> list[MaskPair]:
    """Every prediction of `predictions` with its truth, sorted by path.

    Raises:
        FileNotFoundError: a folder is missing, or a true mask has no prediction (named).
        ValueError: a prediction has no true mask (named), or there is nothing to score.
    """
    for flag, folder in (("PRED_DIR", predictions), ("--truth", truth), ("--images", images)):
        if folder is not None and not folder.is_dir():
            raise FileNotFoundError(f"{flag} {folder} is not a folder")
    predicted = files_by_stem(predictions, (".png",), skip=(".prob_", ".overlay."))
    if truth_format == "oxford_trimap" or (truth_format == "auto" and is_oxford(truth)):
        names = read_split(truth, split)
        true = {name: truth / "annotations" / "trimaps" / f"{name}.png" for name in names}
        photos = {name: truth / "images" / f"{name}.jpg" for name in names}
        paths = {name: f"images/{name}.jpg" for name in names}
    else:
        true = files_by_stem(truth, MASK_SUFFIXES)
        photos = files_by_stem(images, IMAGE_SUFFIXES) if images is not None else {}
        paths = {stem: path.relative_to(truth).as_posix() for stem, path in true.items()}
    missing = sorted(stem for stem in true if stem not in predicted)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} true masks have no prediction in {predictions}: {listed(missing)}"
        )
    extra = sorted(stem for stem in predicted if stem not in true)
    if extra:
        raise ValueError(
            f"{len(extra)} predictions in {predictions} have no true mask in {truth}: {listed(extra)}"
        )
    if not true:
        raise ValueError(f"--truth {truth} holds no mask")
    return [
        MaskPair(paths[stem], predicted[stem], true[stem], photos.get(stem))
        for stem in sorted(true, key=lambda stem: paths[stem])
    ]


@dataclass(frozen=True)
class MaskReader:
    """Reads a pair's masks as class indices: the truth through `encoding` (a mask folder) or the
    mask mode (trimaps)."""

    class_names: Sequence[str]
    ignore_index: int | None
    trimaps: bool
    mask_mode: MaskMode = "binary"

    def read(self, pair: MaskPair) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(prediction (H, W) long, truth (H, W) long, trimap border (H, W) bool or None).

        Raises:
            ValueError: a mask's size or values are wrong (the file named).
        """
        stored = read_mask(pair.truth)
        if self.trimaps:
            truth = trimap_to_mask(
                stored, self.mask_mode, 255 if self.ignore_index is None else self.ignore_index
            )
            border = torch.from_numpy(stored == TRIMAP_BORDER)
        else:
            encoding = MaskEncoding.build(self.class_names, self.ignore_index, None, None, True)
            decoded = encoding.decode(stored)
            if decoded.invalid:
                classes = encoding.describe_classes()
                raise ValueError(f"{pair.truth}: values {sorted(decoded.invalid)} are outside {classes}")
            truth, border = decoded.mask, None
        pred = read_mask(pair.prediction)
        if pred.shape != truth.shape:
            raise ValueError(
                f"{pair.prediction} is {pred.shape[1]}x{pred.shape[0]} (WxH) but its true mask {pair.truth} "
                f"is {truth.shape[1]}x{truth.shape[0]}: masks must be at the image's original size"
            )
        if pred.max(initial=0) >= len(self.class_names):
            raise ValueError(
                f"{pair.prediction} holds class {int(pred.max())}, but there are {len(self.class_names)} "
                f"classes {list(self.class_names)}"
            )
        return torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(truth.astype(np.int64)), border

    def photo(self, pair: MaskPair, shape: tuple[int, int]) -> np.ndarray:
        """The pair's photo (H, W, 3) uint8, or black when unknown or unreadable."""
        if pair.image is not None and pair.image.is_file():
            try:
                image = load_image(pair.image)
                if image.shape[:2] == shape:
                    return image
            except ValueError:
                pass
        return np.zeros((*shape, 3), np.uint8)
