"""Mask files of your own data -> class indices: the encodings a folder dataset may use.

- Class-index masks: one channel (PNG mode L, I or 1, or mode P where the palette *index* is the class;
  the palette's colours are ignored), pixel value = class index.
- Binary masks stored as 0/255: with two classes, a mask holding only 0 and 255 is read as 0 -> class 0,
  255 -> class 1 (`binary_255=False` reads 255 as-is, e.g. as `ignore_index`).
- RGB colour masks (the Pascal VOC / CamVid habit): `palette[c]` is the colour of class `c`; `void_color`
  marks pixels that count nowhere (they get `ignore_index`). A grey RGB mask (R = G = B) without a
  palette is read as one channel.

Values that are neither a class nor `ignore_index` (nor, in colour masks, a palette colour) are an
error naming the file: they would otherwise reach the loss as out-of-bounds targets.
Masks are read as stored: no EXIF orientation is applied (see `unetskip.data.folder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

# Lossless formats a mask may be stored in; lossy ones smear class values at the edges.
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".gif")
LOSSY_MASK_SUFFIXES = (".jpg", ".jpeg", ".webp")

Encoding = Literal["index", "binary_255", "rgb"]
Color = tuple[int, int, int]


class MaskValueError(ValueError):
    """A mask with values outside the declared classes, or colours outside the palette."""


def read_mask(path: Path) -> np.ndarray:
    """A mask file's stored values: (H, W) for one-channel masks (mode P gives palette indices), (H, W, 3)
    for colour ones (alpha dropped). Raises OSError / PIL errors for unreadable files."""
    with Image.open(path) as image:
        if image.mode in ("RGB", "RGBA", "CMYK", "YCbCr"):
            return np.asarray(image.convert("RGB"))
        if image.mode == "LA":
            return np.asarray(image)[:, :, 0]
        if image.mode == "1":
            return np.asarray(image).astype(np.uint8)
        return np.asarray(image)  # L, P (indices), I, I;16


@dataclass(frozen=True)
class DecodedMask:
    """`mask` (H, W) uint8 class indices (or `ignore_index`), the encoding found, and the stored values
    outside the classes as `{value: pixel count}` (colours as "r,g,b"); empty when the mask is usable."""

    mask: np.ndarray
    encoding: Encoding
    invalid: dict[str, int]


@dataclass(frozen=True)
class MaskEncoding:
    """How stored masks map to `num_classes` classes (see the module docstring)."""

    num_classes: int
    ignore_index: int | None = 255
    palette: tuple[Color, ...] | None = None
    void_color: Color | None = None
    binary_255: bool = True

    @classmethod
    def build(
        cls,
        class_names: Sequence[str],
        ignore_index: int | None,
        palette: Sequence[Sequence[int]] | None,
        void_color: Sequence[int] | None,
        binary_255: bool,
    ) -> MaskEncoding:
        """Validate the data options (named in errors as `data.<key>`) and build the encoding."""
        if len(class_names) < 2 or len(set(class_names)) != len(class_names):
            raise ValueError(f"data.class_names must be 2 or more distinct names, got {list(class_names)}")
        if len(class_names) > 255:
            raise ValueError(f"data.class_names: at most 255 classes, got {len(class_names)}")
        if ignore_index is not None and not len(class_names) <= ignore_index <= 255:
            raise ValueError(
                f"data.ignore_index must be a value in [{len(class_names)}, 255] (not a class index), "
                f"got {ignore_index}"
            )
        colors = None if palette is None else tuple(_color(c, "data.palette") for c in palette)
        if colors is not None and (len(colors) != len(class_names) or len(set(colors)) != len(colors)):
            raise ValueError(
                f"data.palette must give one distinct [r, g, b] colour per class ({len(class_names)}), "
                f"got {[list(c) for c in colors]}"
            )
        void = None if void_color is None else _color(void_color, "data.void_color")
        if void is not None and (ignore_index is None or (colors is not None and void in colors)):
            raise ValueError(
                "data.void_color needs data.ignore_index and a colour that is no class colour, "
                f"got {list(void)}"
            )
        return cls(len(class_names), ignore_index, colors, void, binary_255)

    def decode(self, stored: np.ndarray) -> DecodedMask:
        """Stored mask values, (H, W) or (H, W, 3) -> class indices (H, W) uint8."""
        if stored.ndim == 3:
            if self.palette is not None:
                return self._decode_colors(stored)
            grey = stored[..., 0]
            if not (np.array_equal(grey, stored[..., 1]) and np.array_equal(grey, stored[..., 2])):
                return DecodedMask(np.zeros(grey.shape, np.uint8), "rgb", _count(stored.reshape(-1, 3)))
            stored = grey
        values, counts = _value_counts(stored)
        if self.binary_255 and self.num_classes == 2 and 255 in values and set(values.tolist()) <= {0, 255}:
            return DecodedMask((stored == 255).astype(np.uint8), "binary_255", {})
        valid = values < self.num_classes
        if self.ignore_index is not None:
            valid |= values == self.ignore_index
        invalid = dict(zip(map(str, values[~valid].tolist()), counts[~valid].tolist(), strict=True))
        mask = np.zeros(stored.shape, np.uint8) if invalid else stored.astype(np.uint8)
        return DecodedMask(mask, "index", invalid)

    def _decode_colors(self, stored: np.ndarray) -> DecodedMask:
        """(H, W, 3) colours -> class indices by `palette` (and `void_color` -> `ignore_index`)."""
        codes = _color_codes(stored)  # (H, W) int
        lookup = {_code(color): index for index, color in enumerate(self.palette or ())}
        if self.void_color is not None:
            lookup[_code(self.void_color)] = int(self.ignore_index)  # build() ensures it is set
        keys, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
        mapped = np.array([lookup.get(int(key), -1) for key in keys])
        unknown = {_name(int(key)): int(n) for key, n, m in zip(keys, counts, mapped, strict=True) if m < 0}
        if unknown:
            return DecodedMask(np.zeros(stored.shape[:2], np.uint8), "rgb", unknown)
        return DecodedMask(mapped[inverse.reshape(codes.shape)].astype(np.uint8), "rgb", {})

    def describe_classes(self) -> str:
        """'classes 0..C-1 (and ignore_index 255)' as the check's messages say it."""
        ignore = "" if self.ignore_index is None else f" and ignore_index {self.ignore_index}"
        return f"classes 0..{self.num_classes - 1}{ignore}"


def _value_counts(stored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a one-channel mask and their pixel counts (a bincount for 8 bits)."""
    if stored.dtype == np.uint8:
        counts = np.bincount(stored.ravel(), minlength=256)
        values = np.flatnonzero(counts)
        return values, counts[values]
    return np.unique(stored, return_counts=True)


def _color(value: Sequence[int], key: str) -> Color:
    if len(value) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in value):
        raise ValueError(f"{key}: a colour is [r, g, b] with integers in 0..255, got {list(value)}")
    return (int(value[0]), int(value[1]), int(value[2]))


def _code(color: Color) -> int:
    return (color[0] << 16) | (color[1] << 8) | color[2]


def _name(code: int) -> str:
    return f"{code >> 16},{(code >> 8) & 255},{code & 255}"


def _color_codes(stored: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 colours -> (...) int32 codes r << 16 | g << 8 | b."""
    rgb = stored.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _count(colors: np.ndarray) -> dict[str, int]:
    keys, counts = np.unique(_color_codes(colors), return_counts=True)
    return {_name(int(key)): int(n) for key, n in zip(keys, counts, strict=True)}
