"""The data check: everything that would stop or silently spoil training on a folder of images and masks,
found before training, each problem naming its files. It reads, never writes.

Per split it reports: the pairs found; images without masks and masks without images; image/mask size
mismatches; masks stored in a lossy format (JPEG); mask values outside the declared classes (with pixel
counts and the first files); 0/255 binary masks (mapped to 0/1); images with a non-identity EXIF
orientation; and the pixel frequency of each class. Every image and mask is decoded in full, as training
decodes it (in worker processes: `check_layout`'s `workers`), so a truncated or corrupt file is an error
naming it before training, not a crash in the middle of an epoch.

Orientation: images are used as displayed (their EXIF orientation applied, as `load_image` does for
training and predict); masks are read as stored. A mask that matches an EXIF-rotated image's stored
size but not its displayed size was drawn on the unrotated pixels: that is an error.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from unetskip.data.folder_layout import FolderLayout, Sample
from unetskip.data.image_files import TRANSPOSING_ORIENTATIONS, UnreadableImageError, load_image
from unetskip.data.masks import LOSSY_MASK_SUFFIXES, MaskEncoding, read_mask
from unetskip.data.segmentation_datamodule import available_cpus

FIRST_FILES = 3  # files named per grouped finding
MAX_LINES = 20  # files listed one per line per kind of problem, before "... and N more"


@dataclass
class SplitReport:
    """What the check found in one split: `errors` stop training, `notes` do not."""

    name: str
    pairs: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    class_pixels: np.ndarray | None = None  # (num_classes,) int64, pixels per class
    ignored_pixels: int = 0

    def lines(self, class_names: Sequence[str]) -> list[str]:
        lines = [f"{self.name}: {self.pairs} image/mask pairs"]
        lines += [f"  ERROR {error}" for error in self.errors]
        lines += [f"  note: {note}" for note in self.notes]
        if self.class_pixels is not None and self.pairs:
            total = int(self.class_pixels.sum()) + self.ignored_pixels
            parts = [
                f"{name} {100 * count / max(total, 1):.1f}% ({count:,} px)"
                for name, count in zip(class_names, self.class_pixels.tolist(), strict=True)
            ]
            parts.append(
                f"ignored {100 * self.ignored_pixels / max(total, 1):.1f}% ({self.ignored_pixels:,} px)"
            )
            lines.append("  class pixels: " + ", ".join(parts))
        return lines


@dataclass
class DataReport:
    """The check of a whole folder: its layout, each split, and the folder-wide findings."""

    root: Path
    layout: str
    class_names: list[str]
    encoding: MaskEncoding
    splits: list[SplitReport]
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def all_errors(self) -> list[str]:
        return self.errors + [f"{split.name}: {error}" for split in self.splits for error in split.errors]

    def split(self, name: str) -> SplitReport:
        return next(split for split in self.splits if split.name == name)

    def format(self) -> str:
        """The report as printed by `unetskip check-data` and raised by the DataModule's setup."""
        classes = ", ".join(f"{index} {name}" for index, name in enumerate(self.class_names))
        ignore = self.encoding.ignore_index
        lines = [
            f"data check of {self.root}",
            f"layout: {self.layout}",
            f"classes: {classes}; ignore_index: {ignore}",
        ]
        if self.errors or self.notes:
            lines.append("whole folder:")
            lines += [f"  ERROR {error}" for error in self.errors]
            lines += [f"  note: {note}" for note in self.notes]
        for split in self.splits:
            lines += split.lines(self.class_names)
        count = len(self.all_errors())
        lines.append(
            f"{count} errors: fix them before training" if count else "0 errors: training can proceed"
        )
        return "\n".join(lines)


class DataCheckError(ValueError):
    """The data check found errors; the message is the whole report."""


def _listed(kind: str, paths: list[str]) -> list[str]:
    """One line per file of a kind of problem, at most `MAX_LINES`."""
    lines = [f"{kind}: {path}" for path in paths[:MAX_LINES]]
    if len(paths) > MAX_LINES:
        lines.append(f"{kind}: ... and {len(paths) - MAX_LINES} more")
    return lines


def _first(paths: list[str]) -> str:
    more = f" and {len(paths) - FIRST_FILES} more" if len(paths) > FIRST_FILES else ""
    return ", ".join(paths[:FIRST_FILES]) + more


def image_header(path: Path) -> tuple[tuple[int, int], int]:
    """An image's stored (width, height) and EXIF orientation (1 = none), from its header alone."""
    with Image.open(path) as image:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        stored = image.size
    if orientation not in range(1, 9):
        orientation = 1  # an invalid tag is ignored by the decoder too
    return stored, orientation


@dataclass(frozen=True)
class PairFinding:
    """What decoding one image and its mask found: a `problem` ("unreadable", "mismatched" or
    "stored_size") with its `message`, or the image's EXIF orientation, the mask's encoding, its values
    outside the classes and, when it has none, its pixels per value (`counts`, (256,))."""

    problem: str | None = None
    message: str = ""
    orientation: int = 1
    encoding: str = "index"
    invalid: dict[str, int] = field(default_factory=dict)
    counts: np.ndarray | None = None


def decode_pair(sample: Sample, root: Path, encoding: MaskEncoding) -> PairFinding:
    """Decode `sample`'s image (as training does, `load_image`) and mask in full."""
    image_path, mask_path = _rel(sample.image, root), _rel(sample.mask, root)
    try:
        stored, orientation = image_header(sample.image)
        displayed = load_image(sample.image).shape[1::-1]  # (width, height), EXIF orientation applied
    except (OSError, UnidentifiedImageError, UnreadableImageError) as error:
        return PairFinding("unreadable", f"{image_path}: {error}")
    try:
        decoded = encoding.decode(read_mask(sample.mask))
    except (OSError, UnidentifiedImageError, ValueError) as error:
        return PairFinding("unreadable", f"{mask_path}: {error}")
    mask_size = decoded.mask.shape[::-1]  # (width, height)
    if mask_size != displayed:
        if orientation in TRANSPOSING_ORIENTATIONS and mask_size == stored:
            return PairFinding("stored_size", f"{mask_path} ({image_path}: EXIF orientation {orientation})")
        return PairFinding(
            "mismatched",
            f"{image_path} is {displayed[0]}x{displayed[1]}, {mask_path} is {mask_size[0]}x{mask_size[1]}",
        )
    counts = None if decoded.invalid else np.bincount(decoded.mask.ravel(), minlength=256)
    return PairFinding(None, "", orientation, decoded.encoding, decoded.invalid, counts)


def default_check_workers(processes: int = 1) -> int:
    """Decoding processes of the check: the CPUs this process may use, shared by the node's `processes`
    (the check runs before training, so it takes them all); 0 (decode in this process) on one CPU."""
    workers = available_cpus() // processes
    return workers if workers > 1 else 0


def decode_pairs(
    samples: Sequence[Sample], root: Path, encoding: MaskEncoding, workers: int
) -> list[PairFinding]:
    """`decode_pair` of each sample, in order, in `workers` processes (0: in this process)."""
    decode = partial(decode_pair, root=root, encoding=encoding)
    if workers == 0 or len(samples) < 2:
        return [decode(sample) for sample in samples]
    workers = min(workers, len(samples))
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(decode, samples, chunksize=max(1, len(samples) // (4 * workers))))


def check_split(
    layout: FolderLayout, name: str, decoded: dict[Sample, PairFinding], encoding: MaskEncoding
) -> SplitReport:
    """The report of one split of `layout` from its pairs' findings (see the module docstring)."""
    root = layout.root
    report = SplitReport(name, class_pixels=np.zeros(encoding.num_classes, np.int64))
    no_mask, no_image, lossy, unreadable, mismatched, stored_size, exif = [], [], [], [], [], [], []
    binary_255, rgb_without_palette, not_found = [], [], []
    found = {"unreadable": unreadable, "mismatched": mismatched, "stored_size": stored_size}
    invalid: dict[str, tuple[int, list[str]]] = defaultdict(lambda: (0, []))
    for sample in layout.splits[name]:
        expected_image, expected_mask = layout.expected_files(name, sample.stem)
        if sample.image is None and sample.mask is None:
            not_found.append(f"{sample.stem!r} (no {expected_image}, no {expected_mask})")
            continue
        if sample.image is None:
            no_image.append(f"{_rel(sample.mask, root)} (no image for stem {sample.stem!r})")
            continue
        if sample.mask is None:
            no_mask.append(f"{_rel(sample.image, root)} (no mask {expected_mask})")
            continue
        if sample.mask.suffix.lower() in LOSSY_MASK_SUFFIXES:
            lossy.append(f"{_rel(sample.mask, root)} (for {_rel(sample.image, root)})")
            continue
        finding = decoded[sample]
        if finding.problem is not None:
            found[finding.problem].append(finding.message)
            continue
        mask_path = _rel(sample.mask, root)
        if finding.orientation != 1:
            exif.append(f"{_rel(sample.image, root)} ({finding.orientation})")
        if finding.invalid:
            if finding.encoding == "rgb" and encoding.palette is None:
                rgb_without_palette.append(mask_path)
            for value, count in finding.invalid.items():
                pixels, files = invalid[value]
                invalid[value] = (pixels + count, [*files, mask_path])
            continue
        if finding.encoding == "binary_255":
            binary_255.append(mask_path)
        report.class_pixels += finding.counts[: encoding.num_classes]
        report.ignored_pixels += (
            int(finding.counts[encoding.ignore_index]) if encoding.ignore_index is not None else 0
        )
        report.pairs += 1
    report.errors += _listed("listed, but neither image nor mask found", not_found)
    report.errors += _listed("image without mask", no_mask)
    report.errors += _listed("mask without image", no_image)
    report.errors += _listed("mask stored as JPEG (lossy: values smeared at edges; save it as PNG)", lossy)
    report.errors += _listed("unreadable file", unreadable)
    report.errors += _listed("image/mask size mismatch", mismatched)
    report.errors += _listed(
        "mask matches the stored, not the displayed (EXIF-rotated) image: images are used as displayed; "
        "rotate the mask or remove the image's EXIF orientation",
        stored_size,
    )
    if rgb_without_palette:
        report.errors.append(
            f"{len(rgb_without_palette)} colour (RGB) masks and no data.palette: give one [r, g, b] per "
            f"class, or save class indices (first: {_first(rgb_without_palette)})"
        )
    for value, (pixels, files) in sorted(invalid.items()):
        report.errors.append(
            f"mask value {value} is outside {encoding.describe_classes()}: {pixels:,} px in {len(files)} "
            f"masks (first: {_first(files)})"
        )
    if binary_255:
        report.notes.append(
            f"0/255 binary encoding in {len(binary_255)} masks: 255 is read as class 1 "
            f"(first: {_first(binary_255)})"
        )
    if exif:
        report.notes.append(
            f"{len(exif)} images have a non-identity EXIF orientation and are used as displayed; their masks "
            f"match the displayed size (first: {_first(exif)})"
        )
    if report.pairs:
        absent = [index for index, count in enumerate(report.class_pixels.tolist()) if not count]
        if absent:
            report.notes.append(f"classes with no pixel in this split: {absent}")
    else:
        report.errors.append("no usable image/mask pair")
    return report


def check_layout(
    layout: FolderLayout,
    class_names: Sequence[str],
    encoding: MaskEncoding,
    splits: Sequence[str] | None = None,
    workers: int = 0,
) -> DataReport:
    """Check the `splits` of `layout` (all of them when None), decoding in `workers` processes (0: in this
    process); the report does not depend on `workers`."""
    names = [name for name in layout.splits if splits is None or name in splits]
    pairs = {
        sample: None
        for name in names
        for sample in layout.splits[name]
        if sample.image is not None
        and sample.mask is not None
        and sample.mask.suffix.lower() not in LOSSY_MASK_SUFFIXES
    }
    decoded = dict(zip(pairs, decode_pairs(list(pairs), layout.root, encoding, workers), strict=True))
    report = DataReport(
        layout.root,
        layout.description,
        list(class_names),
        encoding,
        [check_split(layout, name, decoded, encoding) for name in names],
        errors=list(layout.problems),
    )
    if layout.unused:
        stems = [sample.stem for sample in layout.unused]
        report.notes.append(f"{len(stems)} stems are in no split list and not used (first: {_first(stems)})")
    return report


def _rel(path: Path | None, root: Path) -> str:
    """`path` relative to the data root, as messages name files."""
    if path is None:
        return "?"
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
