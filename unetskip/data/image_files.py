"""Arbitrary image files for predict: finding them, decoding any format and mode, serving them in batches.

Images are decoded with Pillow, turned upright by their EXIF orientation (as photo viewers show them) and
converted to 8-bit RGB. A file that cannot be decoded is not an error of the run: its item carries the
reason instead of pixels, so the rest of the folder is still predicted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps
from torch.utils.data import Dataset

from unetskip.data.image_size import resized_size
from unetskip.data.list_files import list_entries

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
LIST_SUFFIX = ".txt"
# Pillow modes holding more than 8 bits per grey level; they are scaled to 8 bits, not clipped.
HIGH_BIT_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# EXIF orientations that turn the image by 90 or 270 degrees: its displayed width is its stored height.
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)


def is_image_file(path: Path) -> bool:
    """Whether `path` has one of `IMAGE_SUFFIXES`, in any letter case."""
    return path.suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class FoundImages:
    """The images of a predict input: `paths` (sorted), the folder their relative paths start from, and the
    listed paths that cannot be images (`rejected`, each with its reason)."""

    paths: list[Path]
    base: Path
    rejected: list[tuple[Path, str]]

    def relative(self, path: Path) -> Path:
        """`path` relative to `base`: where its outputs go under the output folder."""
        return path.relative_to(self.base)


def find_images(source: str | Path, exclude: str | Path | None = None) -> FoundImages:
    """The images of `source`: a folder (searched recursively, other files ignored), one image file, or a
    `.txt` file listing image paths one per line (relative ones start from the list's folder; blank lines
    and lines starting with `#` are skipped). Nothing under `exclude` (e.g. the output folder) is taken.

    Raises:
        FileNotFoundError: `source` does not exist.
        ValueError: `source` is a file that is neither an image nor a `.txt` list.
    """
    source = Path(source)
    if source.is_dir():
        return FoundImages(_walk_images(source, exclude), source, [])
    if not source.is_file():
        raise FileNotFoundError(f"--input {source} does not exist")
    if is_image_file(source):
        return FoundImages([source], source.parent, [])
    if source.suffix.lower() == LIST_SUFFIX:
        return _read_list(source)
    raise ValueError(
        f"--input {source} is neither a folder, an image ({', '.join(IMAGE_SUFFIXES)}) nor a "
        f"{LIST_SUFFIX} file listing image paths"
    )


def _walk_images(folder: Path, exclude: str | Path | None) -> list[Path]:
    excluded = Path(exclude).resolve() if exclude is not None else None
    paths = []
    for directory, subdirectories, files in os.walk(folder):
        if excluded is not None:
            subdirectories[:] = [d for d in subdirectories if (Path(directory) / d).resolve() != excluded]
        paths += [Path(directory) / name for name in files if is_image_file(Path(name))]
    return sorted(paths, key=lambda path: path.relative_to(folder).as_posix())


def _read_list(list_file: Path) -> FoundImages:
    try:
        entries = list_entries(list_file)
    except ValueError as error:
        raise ValueError(f"--input {error} of image paths") from error
    paths, rejected, seen = [], [], set()
    for _, line in entries:
        path = Path(line) if Path(line).is_absolute() else list_file.parent / line
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        if not is_image_file(path):
            expected = " ".join(IMAGE_SUFFIXES)
            rejected.append((path, f"not an image type (listed in {list_file}; expected {expected})"))
        elif not path.is_file():
            rejected.append((path, f"file not found (listed in {list_file})"))
        else:
            paths.append(path)
    base = Path(os.path.commonpath([path.resolve().parent for path in paths])) if paths else list_file.parent
    paths = sorted((path.resolve() for path in paths), key=lambda path: path.relative_to(base).as_posix())
    return FoundImages(paths, base, rejected)


class UnreadableImageError(ValueError):
    """An image file that cannot be decoded; the message says why."""


def displayed_size(image: Image.Image) -> tuple[int, int]:
    """An opened image's (width, height) as `load_image` returns it (EXIF orientation applied), read from
    the header alone."""
    width, height = image.size
    if image.getexif().get(ExifTags.Base.Orientation) in TRANSPOSING_ORIENTATIONS:
        return height, width
    return width, height


def load_image(path: Path) -> np.ndarray:
    """Any image file -> (H, W, 3) uint8 RGB, upright by its EXIF orientation: the one decoder of
    training, evaluation and predict, so a photo is seen as displayed everywhere.

    Grey, palette, CMYK and RGBA images are converted to RGB (alpha is dropped, as in training);
    16-bit grey levels are scaled to 8 bits; an animated GIF or multi-page TIFF gives its first frame.

    Raises:
        UnreadableImageError: the file is empty, truncated, not an image, or too large for Pillow.
    """
    try:
        with Image.open(path) as image:
            ImageOps.exif_transpose(image, in_place=True)
            if image.mode in HIGH_BIT_DEPTH_MODES:
                grey = (np.clip(np.asarray(image, dtype=np.int64), 0, 65535) // 257).astype(np.uint8)
                return np.repeat(grey[:, :, None], 3, axis=2)
            return np.asarray(image.convert("RGB"))
    except Exception as error:  # noqa: BLE001 (any decoder failure means the same: skip this file)
        reason = str(error) or type(error).__name__
        if path.is_file() and path.stat().st_size == 0:
            reason = "empty file (0 bytes)"
        raise UnreadableImageError(reason) from error


def network_input(image: np.ndarray, image_size: tuple[int, int] | None = None) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, h, w) uint8 tensor: resized bilinearly to `image_size` (h, w) when given (as
    in evaluation), else (H, W)."""
    if image_size is not None:
        height, width = image_size
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(image.transpose(2, 0, 1).copy())  # (3, h, w), writable


class ImageFileDataset(Dataset):
    """The images at `paths`, each as a dict:

    `{"image": uint8 (3, h, w), "index": i, "size": (H, W), "error": None}` where (H, W) is the upright
    image's size and (h, w) is `image_size` when given (resized bilinearly, as in evaluation; with
    `keep_aspect` the shorter side to `image_size`, see `unetskip.data.image_size`) or (H, W);
    `{"image": None, "index": i, "size": None, "error": reason}` for a file that cannot be decoded.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        image_size: int | tuple[int, int] | None = None,
        keep_aspect: bool = False,
    ) -> None:
        self.paths = list(paths)
        self.image_size = image_size
        self.keep_aspect = keep_aspect

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            image = load_image(self.paths[index])  # (H, W, 3)
        except UnreadableImageError as error:
            return {"image": None, "index": index, "size": None, "error": str(error)}
        size = (
            None
            if self.image_size is None
            else resized_size(image.shape[:2], self.image_size, self.keep_aspect)
        )
        return {
            "image": network_input(image, size),
            "index": index,
            "size": image.shape[:2],
            "error": None,
        }


def collate_image_files(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Items of `ImageFileDataset` -> a batch of the decoded ones and the failures:

    `{"image": [uint8 (3, h_i, w_i)], "index": [i], "size": [(H_i, W_i)], "failed": [(index, reason)]}`.
    Images stay a list because their sizes may differ.
    """
    decoded = [item for item in items if item["error"] is None]
    return {
        "image": [item["image"] for item in decoded],
        "index": [item["index"] for item in decoded],
        "size": [item["size"] for item in decoded],
        "failed": [(item["index"], item["error"]) for item in items if item["error"] is not None],
    }
