"""Where the images and masks of your own data are, and which split each belongs to.

Images are `images/**/<stem>.<ext>` (any format predict reads), masks `masks/**/<stem>.png` (or another
lossless format), paired by their path relative to `images/` and `masks/` without the suffix (the
"stem", e.g. `cells/plate1/a01`). The splits, in this order of preference:

1. `<root>/splits/{train,val,test}.txt`: one stem per line (`#` comments and blank lines skipped);
   stems listed nowhere are not used.
2. `<root>/{train,val,test}/images` and `.../masks`: one folder pair per split.
3. `<root>/images` and `<root>/masks` alone: a seeded random split, `test_fraction` of the images for
   test (0: no test split), then `val_fraction` of the rest for val.

Without `val.txt` or `val/`, val is `val_fraction` of train, split by `split_seed` as well. A missing
`test` split is allowed (fit and validate need none).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from unetskip.data.image_files import IMAGE_SUFFIXES
from unetskip.data.list_files import list_entries
from unetskip.data.masks import LOSSY_MASK_SUFFIXES, MASK_SUFFIXES
from unetskip.data.segmentation_datamodule import split_trainval

SPLITS = ("train", "val", "test")
# Every suffix a mask may have; lossy ones are found so that the check can name them.
MASK_FILE_SUFFIXES = (*MASK_SUFFIXES, *LOSSY_MASK_SUFFIXES)


@dataclass(frozen=True)
class Sample:
    """The files found for one stem: its image and its mask, either of them possibly missing."""

    stem: str
    image: Path | None
    mask: Path | None


@dataclass
class FolderLayout:
    """The samples of each split (`splits`, train and val always present), the stems that no split list
    names (`unused`), and what makes the folder unusable as found (`problems`, each naming its files)."""

    root: Path
    description: str
    splits: dict[str, list[Sample]]
    unused: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def relative_stem(path: Path, folder: Path) -> str:
    """`folder/a/b.png` -> `a/b`: the key pairing an image with its mask."""
    return path.relative_to(folder).with_suffix("").as_posix()


def _walk(folder: Path, keep: tuple[str, ...], root: Path, problems: list[str]) -> dict[str, Path]:
    """stem -> the file of `folder` (recursively) with a suffix in `keep`; two files for one stem are a
    problem (which one would be used is a guess)."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for directory, _, names in os.walk(folder):
        for name in sorted(names):
            path = Path(directory) / name
            if path.suffix.lower() not in keep:
                continue
            stem = relative_stem(path, folder)
            if stem in found:
                first, second = sorted((found[stem], path))
                problems.append(
                    f"two files for stem {stem!r}: {first.relative_to(root)} and {second.relative_to(root)} "
                    "(keep one)"
                )
            found[stem] = path
    return found


def _samples(stems: list[str], images: dict[str, Path], masks: dict[str, Path]) -> list[Sample]:
    return [Sample(stem, images.get(stem), masks.get(stem)) for stem in stems]


def _read_list(path: Path, problems: list[str], root: Path) -> list[str]:
    stems = []
    for number, line in list_entries(path):
        known_suffix = Path(line).suffix.lower() in (*IMAGE_SUFFIXES, *MASK_FILE_SUFFIXES)
        stem = Path(line).with_suffix("").as_posix() if known_suffix else line
        if stem in stems:
            problems.append(f"{path.relative_to(root)}:{number}: {stem!r} is listed twice")
            continue
        stems.append(stem)
    return stems


def _split_val(splits: dict[str, list[str]], val_fraction: float, split_seed: int) -> None:
    """Val as `val_fraction` of train when no val split was given."""
    if "val" not in splits:
        splits["train"], splits["val"] = split_trainval(splits["train"], val_fraction, split_seed)


def find_layout(
    root: str | Path, val_fraction: float = 0.1, test_fraction: float = 0.0, split_seed: int = 42
) -> FolderLayout:
    """The files and splits of the folder `root` (see the module docstring). Reads no pixels.

    Raises:
        FileNotFoundError: `root` has none of the three layouts.
    """
    root = Path(root)
    problems: list[str] = []
    if (root / "splits").is_dir():
        images = _walk(root / "images", IMAGE_SUFFIXES, root, problems)
        masks = _walk(root / "masks", MASK_FILE_SUFFIXES, root, problems)
        lists = {s: root / "splits" / f"{s}.txt" for s in SPLITS if (root / "splits" / f"{s}.txt").is_file()}
        if "train" not in lists:
            raise FileNotFoundError(f"{root / 'splits'} has no train.txt (one image stem per line)")
        stems = {split: _read_list(path, problems, root) for split, path in lists.items()}
        _split_val(stems, val_fraction, split_seed)
        seen: dict[str, str] = {}
        for split, split_stems in stems.items():
            for stem in split_stems:
                if stem in seen:
                    problems.append(f"{stem!r} is listed in both the {seen[stem]} and {split} splits")
                seen.setdefault(stem, split)
        splits = {split: _samples(split_stems, images, masks) for split, split_stems in stems.items()}
        unused = sorted((set(images) | set(masks)) - set(seen))
        described = ", ".join(f"splits/{s}.txt" for s in lists)
        unused_samples = _samples(unused, images, masks)
        return FolderLayout(root, f"split lists ({described})", splits, unused_samples, problems)
    if (root / "train").is_dir():
        splits = {}
        for split in SPLITS:
            if (root / split).is_dir():
                images = _walk(root / split / "images", IMAGE_SUFFIXES, root, problems)
                masks = _walk(root / split / "masks", MASK_FILE_SUFFIXES, root, problems)
                splits[split] = _samples(sorted(set(images) | set(masks)), images, masks)
        if "val" not in splits:
            by_stem = {sample.stem: sample for sample in splits["train"]}
            train, val = split_trainval(sorted(by_stem), val_fraction, split_seed)
            splits["train"], splits["val"] = [by_stem[s] for s in train], [by_stem[s] for s in val]
        described = ", ".join(f"{s}/" for s in SPLITS if (root / s).is_dir())
        return FolderLayout(root, f"split folders ({described})", splits, [], problems)
    if (root / "images").is_dir():
        images = _walk(root / "images", IMAGE_SUFFIXES, root, problems)
        masks = _walk(root / "masks", MASK_FILE_SUFFIXES, root, problems)
        stems: dict[str, list[str]] = {"train": sorted(images)}
        if test_fraction > 0:
            stems["train"], stems["test"] = split_trainval(
                stems["train"], test_fraction, split_seed, "data.test_fraction"
            )
        _split_val(stems, val_fraction, split_seed)
        splits = {split: _samples(stems[split], images, masks) for split in SPLITS if split in stems}
        for stem in sorted(set(masks) - set(images)):
            problems.append(f"mask without image: {masks[stem].relative_to(root)} (no images/{stem}.*)")
        fractions = f"val_fraction {val_fraction}, test_fraction {test_fraction}"
        described = f"random split ({fractions}, split_seed {split_seed})"
        return FolderLayout(root, described, splits, [], problems)
    raise FileNotFoundError(
        f"data.root={str(root)!r} holds none of the folder layouts: images/ and masks/ (with an optional "
        "splits/{train,val,test}.txt), or train/images and train/masks (and val/, test/)"
    )
