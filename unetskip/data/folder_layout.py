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

`FolderNames` renames all of it, so that a dataset is used where it lies: the image and mask folders
(`images_dir`, `masks_dir`; a `{split}` in them makes each split's folders, e.g. CamVid's `{split}` and
`{split}annot`), the suffixes that file stems carry before pairing (Cityscapes' `_leftImg8bit` and
`_gtFine_labelIds`), and the split folders and lists (`split_names`).
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from unetskip.data.image_files import IMAGE_SUFFIXES
from unetskip.data.list_files import list_entries
from unetskip.data.masks import LOSSY_MASK_SUFFIXES, MASK_SUFFIXES
from unetskip.data.segmentation_datamodule import split_trainval

SPLITS = ("train", "val", "test")
# Every suffix a mask may have; lossy ones are found so that the check can name them.
MASK_FILE_SUFFIXES = (*MASK_SUFFIXES, *LOSSY_MASK_SUFFIXES)
SPLIT_FIELD = "split"  # the placeholder of `images_dir` and `masks_dir`: `{split}`


def _check_folder(value: str, key: str) -> None:
    """A folder below the data root, with no placeholder but `{split}`."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as error:
        raise ValueError(
            f"{key}={value!r} is not a folder name: {error} (braces only as {{split}})"
        ) from None
    if fields - {SPLIT_FIELD}:
        raise ValueError(f"{key}={value!r}: the only placeholder is {{split}}, got {sorted(fields)}")
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{key}={value!r} must be a folder below data.root (relative, without ..)")


def _check_suffix(value: str, key: str) -> None:
    if "/" in value or PurePosixPath(f"x{value}").suffix.lower() in (*IMAGE_SUFFIXES, *MASK_FILE_SUFFIXES):
        raise ValueError(
            f"{key}={value!r} is the end of a file's stem, without folder or extension "
            "(e.g. '_gtFine_labelIds')"
        )


@dataclass(frozen=True)
class FolderNames:
    """The names of a folder's parts (see the module docstring): the image and mask folders, relative to
    the data root or, in split folders, to each split's folder; the suffix each stem ends with (stripped
    before pairing; files without it are not taken); and `split_names`, split -> its folder or list name
    (the splits left out are not used). Bad values raise `ValueError` naming the `data.*` key."""

    images_dir: str = "images"
    masks_dir: str = "masks"
    image_suffix: str = ""
    mask_suffix: str = ""
    split_names: dict[str, str] = field(default_factory=lambda: {split: split for split in SPLITS})

    def __post_init__(self) -> None:
        _check_folder(self.images_dir, "data.images_dir")
        _check_folder(self.masks_dir, "data.masks_dir")
        if self.templated != ("{split}" in self.masks_dir):
            raise ValueError(
                f"data.images_dir={self.images_dir!r}, data.masks_dir={self.masks_dir!r}: put {{split}} in "
                "both or in neither"
            )
        if PurePosixPath(self.images_dir) == PurePosixPath(self.masks_dir):
            raise ValueError(f"data.masks_dir={self.masks_dir!r} must differ from data.images_dir")
        _check_suffix(self.image_suffix, "data.image_suffix")
        _check_suffix(self.mask_suffix, "data.mask_suffix")
        names = self.split_names
        if "train" not in names or set(names) - set(SPLITS):
            raise ValueError(f"data.split_names maps train (and optionally val, test) to names, got {names}")
        values = list(names.values())
        if len(set(values)) != len(values) or not all(value and "/" not in value for value in values):
            raise ValueError(f"data.split_names must give distinct names without '/', got {names}")

    @property
    def templated(self) -> bool:
        """Whether the folders name their split (`{split}`): each split has its own folder pair."""
        return "{split}" in self.images_dir

    def folders(self, root: Path, split: str | None = None) -> tuple[Path, Path]:
        """The image and mask folders (of `split` when they name it)."""
        name = self.split_names[split] if split is not None else ""
        return (
            root / self.images_dir.format(split=name),
            root / self.masks_dir.format(split=name),
        )

    def describe(self, images: str, masks: str) -> str:
        """'images in X/, masks in Y/' with the suffixes that are set."""
        parts = []
        for kind, folder, suffix in (
            ("images", images, self.image_suffix),
            ("masks", masks, self.mask_suffix),
        ):
            parts.append(f"{kind} in {folder}/" + (f" (stems end with {suffix!r})" if suffix else ""))
        return ", ".join(parts)


@dataclass(frozen=True)
class Sample:
    """The files found for one stem: its image and its mask, either of them possibly missing."""

    stem: str
    image: Path | None
    mask: Path | None


@dataclass
class FolderLayout:
    """The samples of each split (`splits`, train and val always present), the stems that no split list
    names (`unused`), what makes the folder unusable as found (`problems`, each naming its files), and
    each split's image and mask folders (`folders`, for messages) with the names that found them."""

    root: Path
    description: str
    splits: dict[str, list[Sample]]
    unused: list[Sample] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    folders: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    names: FolderNames = field(default_factory=FolderNames)

    def expected_files(self, split: str, stem: str) -> tuple[str, str]:
        """The image and mask a stem of `split` would have, relative to the root, e.g.
        ('images/a.*', 'masks/a.png')."""
        images, masks = (folder.relative_to(self.root).as_posix() for folder in self.folders[split])
        return (
            f"{images}/{stem}{self.names.image_suffix}.*",
            f"{masks}/{stem}{self.names.mask_suffix}.png",
        )


def relative_stem(path: Path, folder: Path, suffix: str = "") -> str:
    """`folder/a/b<suffix>.png` -> `a/b`: the key pairing an image with its mask."""
    stem = path.relative_to(folder).with_suffix("").as_posix()
    return stem[: len(stem) - len(suffix)]


def _walk(
    folder: Path, keep: tuple[str, ...], suffix: str, root: Path, problems: list[str]
) -> dict[str, Path]:
    """stem -> the file of `folder` (recursively) with an extension in `keep` and a stem ending with
    `suffix`; two files for one stem are a problem (which one would be used is a guess)."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for directory, _, names in os.walk(folder):
        for name in sorted(names):
            path = Path(directory) / name
            if path.suffix.lower() not in keep or not path.stem.endswith(suffix) or path.stem == suffix:
                continue
            stem = relative_stem(path, folder, suffix)
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
    root: str | Path,
    val_fraction: float = 0.1,
    test_fraction: float = 0.0,
    split_seed: int = 42,
    names: FolderNames | None = None,
) -> FolderLayout:
    """The files and splits of the folder `root` (see the module docstring), with the folder and file
    names of `names` (default: `FolderNames()`). Reads no pixels.

    Raises:
        FileNotFoundError: `root` has none of the three layouts.
    """
    root = Path(root)
    names = names or FolderNames()
    problems: list[str] = []
    lists_dir = root / "splits"
    split_folder = root / names.split_names["train"]
    if lists_dir.is_dir() and not names.templated:
        images_dir, masks_dir = names.folders(root)
        images = _walk(images_dir, IMAGE_SUFFIXES, names.image_suffix, root, problems)
        masks = _walk(masks_dir, MASK_FILE_SUFFIXES, names.mask_suffix, root, problems)
        lists = {
            split: lists_dir / f"{name}.txt"
            for split, name in names.split_names.items()
            if (lists_dir / f"{name}.txt").is_file()
        }
        if "train" not in lists:
            raise FileNotFoundError(
                f"{lists_dir} has no {names.split_names['train']}.txt (one image stem per line)"
            )
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
        listed = ", ".join(path.relative_to(root).as_posix() for path in lists.values())
        described = f"split lists ({listed}): {names.describe(names.images_dir, names.masks_dir)}"
        folders = dict.fromkeys(splits, (images_dir, masks_dir))
        return FolderLayout(
            root, described, splits, _samples(unused, images, masks), problems, folders, names
        )
    if names.templated or split_folder.is_dir():
        if not names.templated:  # layout 2: the folders below each split's folder
            names = FolderNames(
                f"{{split}}/{names.images_dir}",
                f"{{split}}/{names.masks_dir}",
                names.image_suffix,
                names.mask_suffix,
                names.split_names,
            )
        splits, folders = {}, {}
        for split in names.split_names:
            images_dir, masks_dir = names.folders(root, split)
            if images_dir.is_dir():
                folders[split] = (images_dir, masks_dir)
                images = _walk(images_dir, IMAGE_SUFFIXES, names.image_suffix, root, problems)
                masks = _walk(masks_dir, MASK_FILE_SUFFIXES, names.mask_suffix, root, problems)
                splits[split] = _samples(sorted(set(images) | set(masks)), images, masks)
        if "train" not in splits:
            missing = names.folders(root, "train")[0].relative_to(root).as_posix()
            raise FileNotFoundError(
                f"data.root={str(root)!r} has no folder {missing}/ of training images "
                "(see data.images_dir and data.split_names)"
            )
        if "val" not in splits:
            by_stem = {sample.stem: sample for sample in splits["train"]}
            train, val = split_trainval(sorted(by_stem), val_fraction, split_seed)
            splits["train"], splits["val"] = [by_stem[s] for s in train], [by_stem[s] for s in val]
            folders["val"] = folders["train"]
        found = ", ".join(f"{names.split_names[split]}" for split in names.split_names if split in folders)
        described = f"split folders ({found}): {names.describe(names.images_dir, names.masks_dir)}"
        return FolderLayout(root, described, splits, [], problems, folders, names)
    images_dir, masks_dir = names.folders(root)
    if images_dir.is_dir():
        images = _walk(images_dir, IMAGE_SUFFIXES, names.image_suffix, root, problems)
        masks = _walk(masks_dir, MASK_FILE_SUFFIXES, names.mask_suffix, root, problems)
        stems: dict[str, list[str]] = {"train": sorted(images)}
        if test_fraction > 0 and "test" in names.split_names:
            stems["train"], stems["test"] = split_trainval(
                stems["train"], test_fraction, split_seed, "data.test_fraction"
            )
        _split_val(stems, val_fraction, split_seed)
        splits = {split: _samples(stems[split], images, masks) for split in SPLITS if split in stems}
        layout = FolderLayout(
            root, "", splits, [], problems, dict.fromkeys(splits, (images_dir, masks_dir)), names
        )
        for stem in sorted(set(masks) - set(images)):
            expected_image = layout.expected_files("train", stem)[0]
            problems.append(f"mask without image: {masks[stem].relative_to(root)} (no {expected_image})")
        fractions = f"val_fraction {val_fraction}, test_fraction {test_fraction}"
        folders = names.describe(names.images_dir, names.masks_dir)
        layout.description = f"random split ({fractions}, split_seed {split_seed}): {folders}"
        return layout
    train = names.split_names["train"]
    raise FileNotFoundError(
        f"data.root={str(root)!r} holds none of the folder layouts: {names.images_dir}/ and "
        f"{names.masks_dir}/ (with an optional splits/{{train,val,test}}.txt), or {train}/{names.images_dir} "
        f"and {train}/{names.masks_dir} (and val/, test/), or the folders of data.images_dir with {{split}}"
    )
