"""Synthetic "own data" folders for the folder tests: the documented layout (images/ and masks/), and
CamVid's and Cityscapes' own folder names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def blob_sample(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image (H, W, 3) with a bright ellipse on a dark background, and its 0/1 mask (H, W)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
    ry, rx = rng.uniform(0.2, 0.35) * height, rng.uniform(0.2, 0.35) * width
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    image[inside] = rng.integers(180, 255, 3, dtype=np.uint8)
    return image, inside.astype(np.uint8)


def write_own_folder(root: Path, count: int = 16, nested: bool = True) -> Path:
    """`count` images of varied sizes and formats under `root/images` (every other one in `batch2/` when
    `nested`) with binary PNG masks under `root/masks`: every third mask stored as 0/255, the rest 0/1."""
    for index in range(count):
        image, mask = blob_sample(40 + 3 * (index % 4), 56 - 4 * (index % 3), seed=index)
        relative = Path("batch2" if nested and index % 2 else ".") / f"photo_{index:02d}"
        suffix = ".png" if index % 5 == 4 else ".jpg"
        for folder in ("images", "masks"):
            (root / folder / relative).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save((root / "images" / relative).with_suffix(suffix), quality=95)
        Image.fromarray(mask * 255 if index % 3 == 0 else mask).save(
            (root / "masks" / relative).with_suffix(".png")
        )
    return root


def street_sample(height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image and its class-index mask of three classes and void: 0 sky, 1 car (the blob), 2 road
    (the bottom quarter), 11 (CamVid's void) in the first column."""
    image, blob = blob_sample(height, width, seed)
    mask = blob.copy()
    mask[3 * height // 4 :][blob[3 * height // 4 :] == 0] = 2
    mask[:, 0] = 11
    return image, mask


def write_camvid_folder(root: Path, counts: dict[str, int] | None = None) -> Path:
    """CamVid as SegNet ships it: `<split>/<name>.png` images beside `<split>annot/<name>.png` masks
    (same file names; classes of `street_sample`), for train, val and test."""
    for split, count in (counts or {"train": 6, "val": 3, "test": 2}).items():
        for index in range(count):
            image, mask = street_sample(36, 48, seed=100 * len(split) + index)
            name = f"0001TP_{split}_{index:06d}.png"
            for folder, pixels in ((split, image), (f"{split}annot", mask)):
                (root / folder).mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(root / folder / name)
    return root


def write_cityscapes_folder(root: Path, counts: dict[str, int] | None = None) -> Path:
    """Cityscapes' layout: `leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png` and, for train
    and val only, `gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png` (classes of
    `street_sample`) beside the `_gtFine_color.png`, `_gtFine_instanceIds.png` and `_gtFine_polygons.json`
    files that are no class masks; test has images and no masks."""
    for split, count in (counts or {"train": 6, "val": 3, "test": 2}).items():
        for index in range(count):
            city = ("aachen", "bremen")[index % 2]
            image, mask = street_sample(32, 64, seed=10 * len(split) + index)
            name = f"{city}_{index:06d}_000019"
            (root / "leftImg8bit" / split / city).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png")
            if split == "test":
                continue
            masks = root / "gtFine" / split / city
            masks.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(masks / f"{name}_gtFine_labelIds.png")
            Image.fromarray(np.stack([mask * 60] * 3, axis=2)).save(masks / f"{name}_gtFine_color.png")
            Image.fromarray(mask.astype(np.int32) * 1000 + 26).save(masks / f"{name}_gtFine_instanceIds.png")
            (masks / f"{name}_gtFine_polygons.json").write_text("{}")
    return root
