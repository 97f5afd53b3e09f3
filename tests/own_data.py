"""Synthetic "own data" folders in the documented layout (images/ and masks/), for the folder tests."""

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
