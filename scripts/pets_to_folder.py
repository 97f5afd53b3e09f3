"""Convert an Oxford-IIIT Pet folder (official layout, trimaps) to the folder layout of FolderDataModule.

    python scripts/pets_to_folder.py SOURCE OUT [--mask-mode binary] [--val-fraction 0.1] [--split-seed 42]

OUT gets `images/<name>.jpg` (the original files, byte for byte), `masks/<name>.png` (class-index masks
of `--mask-mode`, as OxfordPetDataModule makes them: binary = pet and border 1, background 0) and
`splits/{train,val,test}.txt` holding exactly OxfordPetDataModule's split for the same `val_fraction` and
`split_seed`. Samples that OxfordPetDataModule skips (missing or unreadable files, size mismatches) are
skipped and named. OUT must not exist or be empty; SOURCE is only read.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from unetskip.data.oxford_pet import MASK_MODES, check_sample, class_names_for, read_split, trimap_to_mask
from unetskip.data.segmentation_datamodule import split_trainval


def convert(
    source: Path, out: Path, mask_mode: str = "binary", val_fraction: float = 0.1, split_seed: int = 42
) -> dict[str, list[str]]:
    """Write the folder layout of `source` into `out`; return the names of each split (and "skipped")."""
    class_names_for(mask_mode)  # validates the mode
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder: choose a new one")
    train, val = split_trainval(read_split(source, "trainval"), val_fraction, split_seed)
    splits = {"train": train, "val": val, "test": read_split(source, "test")}
    kept: dict[str, list[str]] = {split: [] for split in splits}
    kept["skipped"] = []
    for folder in ("images", "masks", "splits"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    for split, names in splits.items():
        for name in names:
            sample, reason = check_sample(source, name)
            if sample is None:
                kept["skipped"].append(f"{name}: {reason}")
                continue
            shutil.copyfile(sample.image_path, out / "images" / f"{name}.jpg")
            with Image.open(sample.trimap_path) as trimap:
                mask = trimap_to_mask(np.asarray(trimap), mask_mode)
            Image.fromarray(mask, mode="L").save(out / "masks" / f"{name}.png")
            kept[split].append(name)
        (out / "splits" / f"{split}.txt").write_text("".join(f"{name}\n" for name in kept[split]))
    return kept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="an Oxford-IIIT Pet folder (images/, annotations/)")
    parser.add_argument("out", type=Path, help="a new folder for the folder layout")
    parser.add_argument("--mask-mode", default="binary", choices=MASK_MODES)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--split-seed", type=int, default=42)
    args = parser.parse_args(argv)
    try:
        kept = convert(args.source, args.out, args.mask_mode, args.val_fraction, args.split_seed)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    counts = ", ".join(f"{split} {len(kept[split])}" for split in ("train", "val", "test"))
    print(f"{args.out}: {counts} samples; class names {class_names_for(args.mask_mode)}")
    for line in kept["skipped"]:
        print(f"skipped (as OxfordPetDataModule does) {line}")


if __name__ == "__main__":
    main()
