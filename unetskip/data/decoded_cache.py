"""Decoded images and masks held in memory, so that training decodes each file once (`data.cache`).

A `DecodedCache` is filled in the main process by the DataModule's `setup`, before any loader worker
starts: forked workers read its arrays copy-on-write (the arrays are read-only, so no page is copied) and
persistent workers keep them for every epoch. Each process holds its own cache (under DDP each rank
fills one), so processes never share or rebuild anything: nothing is written to disk.

What is stored, per sample, as uint8: the image (H, W, 3) and its masks (H, W) (Oxford's `mask` and
`border`, a folder's `mask`), resized as the transforms would resize them (image bilinear, masks nearest):

- training samples with their shorter side at most `CACHE_SHORT_SIDE_FACTOR` x the training size (larger
  images are shrunk, smaller ones kept as decoded); the random crop then resizes from these pixels;
- evaluation samples at the exact size the evaluation transform resizes to, so val batches are the same
  pixels with and without the cache.

Each entry keeps its files' modification time and size from before they were decoded; an entry whose
files changed or vanished since is dropped at its next read and the file decoded again (no stale pixels).
The cache stops growing at `max_bytes`, with one warning line; the samples left out are decoded each time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from unetskip.data.image_size import parse_image_size, resized_size

log = logging.getLogger(__name__)

# Training images are cached with their shorter side at most this many times the training size. The
# default crop (`data.crop_scale` from 0.5 of the area, aspect 3:4 to 4:3) is at least about 0.62 of the
# shorter side, so crops from these pixels are still shrunk, never enlarged, as from the original file.
CACHE_SHORT_SIDE_FACTOR = 2
MIB = 2**20

# (st_mtime_ns, st_size) of each of a sample's files.
FileStamps = tuple[tuple[int, int], ...]
# A sample's size (H, W) as decoded -> the size it is cached at.
CachedSize = Callable[[tuple[int, int]], tuple[int, int]]


class DecodableDataset(Protocol):
    """A dataset whose samples the cache can hold: its files, and their decoded arrays (uint8, the image
    under "image" (H, W, 3), masks (H, W) under their own keys)."""

    def __len__(self) -> int: ...

    def files(self, index: int) -> tuple[Path, ...]: ...

    def decode(self, index: int) -> dict[str, np.ndarray]: ...


def file_stamps(paths: Sequence[Path]) -> FileStamps | None:
    """Modification time and size of each file, or None when one is missing or unreadable."""
    try:
        return tuple((stat.st_mtime_ns, stat.st_size) for stat in (Path(path).stat() for path in paths))
    except OSError:
        return None


def train_cached_size(image_size: int | tuple[int, int]) -> CachedSize:
    """Training samples: shorter side at most `CACHE_SHORT_SIDE_FACTOR` x the larger side of `image_size`."""
    limit = CACHE_SHORT_SIDE_FACTOR * max(parse_image_size(image_size))

    def cached_size(size: tuple[int, int]) -> tuple[int, int]:
        return size if min(size) <= limit else resized_size(size, limit, keep_aspect=True)

    return cached_size


def eval_cached_size(image_size: int | tuple[int, int], keep_aspect: bool) -> CachedSize:
    """Evaluation samples: the size `eval_transforms` resizes them to (resizing again is then a no-op)."""
    return lambda size: resized_size(size, image_size, keep_aspect)


def resize_arrays(arrays: dict[str, np.ndarray], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Each array to `size` (H, W): the image bilinearly (as the transforms), masks with nearest neighbour."""
    height, width = size
    resized = {}
    for key, array in arrays.items():
        if array.shape[:2] != (height, width):
            interpolation = cv2.INTER_LINEAR if key == "image" else cv2.INTER_NEAREST
            array = cv2.resize(array, (width, height), interpolation=interpolation)
        resized[key] = np.ascontiguousarray(array)
    return resized


@dataclass(frozen=True)
class CachedSample:
    arrays: dict[str, np.ndarray]  # read-only
    stamps: FileStamps  # of the files, taken before they were decoded


class DecodedCache:
    """Decoded samples of one dataset by index; `get` returns them while their files are unchanged."""

    def __init__(self, entries: dict[int, CachedSample]) -> None:
        self.entries = entries

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for entry in self.entries.values() for array in entry.arrays.values())

    def get(self, index: int, files: Sequence[Path]) -> dict[str, np.ndarray] | None:
        """A copy of the cached arrays of sample `index` (the transforms may write to theirs; a copy costs
        microseconds, the decode milliseconds), or None when it is not cached or its `files` changed
        (modification time or size) or vanished since it was cached; a changed entry is dropped."""
        entry = self.entries.get(index)
        if entry is None:
            return None
        if file_stamps(files) != entry.stamps:
            del self.entries[index]
            return None
        return {key: array.copy() for key, array in entry.arrays.items()}

    @classmethod
    def fill(
        cls, dataset: DecodableDataset, cached_size: CachedSize, max_bytes: int, split: str
    ) -> tuple[DecodedCache, bool]:
        """Decode the samples of `dataset` in order, each resized to `cached_size` of its size, until the
        next one would take the cache past `max_bytes`. Returns the cache and whether it holds them all
        (when not, the caller says so once: `full_message`)."""
        start, entries, total = time.perf_counter(), {}, 0
        for index in range(len(dataset)):
            files = dataset.files(index)
            stamps = file_stamps(files)
            arrays = dataset.decode(index)
            arrays = resize_arrays(arrays, cached_size(arrays["image"].shape[:2]))
            size = sum(array.nbytes for array in arrays.values())
            if stamps is None or total + size > max_bytes:
                if stamps is not None:
                    return cls(entries), False
                continue  # a file vanished while decoding: leave it to the loader to report
            for array in arrays.values():
                array.flags.writeable = False  # forked workers then never copy its pages
            entries[index] = CachedSample(arrays, stamps)
            total += size
        log.info(
            "data.cache: %d %s samples decoded into memory (%.0f MiB) in %.1f s",
            len(entries),
            split,
            total / MIB,
            time.perf_counter() - start,
        )
        return cls(entries), True


def full_message(split: str, cached: int, total: int, max_bytes: int, later: Sequence[str]) -> str:
    """The one line saying that the cache reached its bound: which samples are decoded every time."""
    rest = f"the other {total - cached} {split} samples"
    if later:
        rest += " and the " + " and ".join(later) + " split" + ("s" if len(later) > 1 else "")
    return (
        f"data.cache: data.cache_max_bytes={max_bytes} ({max_bytes / MIB:.0f} MiB) holds {cached} of "
        f"{total} {split} samples; {rest} are decoded every time (raise data.cache_max_bytes to cache them)"
    )
