"""Score predicted masks against Oxford-IIIT Pet trimaps at the images' original size.

Independent of the training code: it reads the trimaps and the masks `unetskip predict` wrote (PNG class
indices, any value > 0 is the pet: class 1 in binary mode, 1 or 2 in trimap mode) and prints the pet IoU
pooled over all pixels of the split and its mean over images. The pet of a trimap is its pet region plus
its border (values 1 and 3), the `binary` mask mode's convention.

    # the split's images as a list for predict, then its masks, then their scores
    python scripts/score_masks.py --data.root ../shared/data/oxford-iiit-pet --write_list test_images.txt
    python -m unetskip predict --ckpt_path BEST.ckpt --input test_images.txt --output masks_test
    python scripts/score_masks.py masks_test --data.root ../shared/data/oxford-iiit-pet

A mask is looked up as `MASK_DIR/<name>.png` for each `<name>` of `annotations/<split>.txt`; a missing
mask or one whose size differs from its trimap stops the scoring with the file named.

`--round_trip N` scores the trimaps themselves, each pet resized to N x N pixels (area) and back
(bilinear, then > 0.5), as predict resizes probabilities: the score a perfect model at that training
size would reach, the cost of the resolution alone.

    python scripts/score_masks.py --data.root ../shared/data/oxford-iiit-pet --round_trip 96
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

TRIMAP_PET_VALUES = (1, 3)  # pet and border; 2 is the background


@dataclass(frozen=True)
class PetScores:
    """Pet IoU pooled over every pixel of every image, and the mean of the images' own pet IoU."""

    pooled_iou: float
    per_image_iou: float
    num_images: int


def split_names(root: Path, split: str) -> list[str]:
    """The image names of `annotations/<split>.txt` (first field of each non-comment line)."""
    path = root / "annotations" / f"{split}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --data.root must be an Oxford-IIIT Pet folder")
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.split()[0] for line in lines if line and not line.startswith("#")]


def pet_iou_counts(mask: np.ndarray, trimap: np.ndarray) -> tuple[int, int]:
    """(H, W) predicted class indices and (H, W) trimap -> (pet intersection, pet union) pixel counts."""
    predicted = mask > 0
    true = np.isin(trimap, TRIMAP_PET_VALUES)
    return int(np.count_nonzero(predicted & true)), int(np.count_nonzero(predicted | true))


def split_trimaps(root: Path, split: str) -> Iterator[tuple[str, np.ndarray]]:
    """(name, (H, W) trimap) for each name of the split.

    Raises:
        ValueError: the split lists no image. FileNotFoundError: a trimap is missing.
    """
    names = split_names(root, split)
    if not names:
        raise ValueError(f"annotations/{split}.txt in {root} lists no image")
    for name in names:
        path = root / "annotations" / "trimaps" / f"{name}.png"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (image {name} of the {split} split)")
        with Image.open(path) as trimap_file:
            yield name, np.asarray(trimap_file)


def pet_scores(pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> PetScores:
    """Pooled and per-image pet IoU of (mask, trimap) pairs, each (H, W).

    An image whose prediction and trimap both hold no pet has IoU 1 in the per-image mean."""
    intersection_total = union_total = 0
    per_image = []
    for mask, trimap in pairs:
        intersection, union = pet_iou_counts(mask, trimap)
        intersection_total += intersection
        union_total += union
        per_image.append(intersection / union if union else 1.0)
    pooled = intersection_total / union_total if union_total else 1.0
    return PetScores(pooled, float(np.mean(per_image)), len(per_image))


def score_masks(mask_dir: Path, root: Path, split: str = "test") -> PetScores:
    """Scores `mask_dir/<name>.png` against `root/annotations/trimaps/<name>.png` for the split's names.

    Raises:
        FileNotFoundError: a mask or trimap is missing. ValueError: a mask's size differs from its trimap's.
    """

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for name, trimap in split_trimaps(root, split):
            mask_path = mask_dir / f"{name}.png"
            if not mask_path.is_file():
                raise FileNotFoundError(f"{mask_path} not found (image {name} of the {split} split)")
            with Image.open(mask_path) as mask_file:
                mask = np.asarray(mask_file)
            if mask.shape != trimap.shape:
                raise ValueError(
                    f"{mask_path} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its trimap is "
                    f"{trimap.shape[1]}x{trimap.shape[0]}: masks must be at the image's original size"
                )
            yield mask, trimap

    return pet_scores(pairs())


def round_trip(trimap: np.ndarray, size: int) -> np.ndarray:
    """(H, W) trimap -> (H, W) 0/1 pet mask after resizing the pet to `size` x `size` (area) and back
    (bilinear, > 0.5)."""
    pet = Image.fromarray(np.isin(trimap, TRIMAP_PET_VALUES).astype(np.float32))  # mode F
    small = pet.resize((size, size), Image.Resampling.BOX)
    return (np.asarray(small.resize(pet.size, Image.Resampling.BILINEAR)) > 0.5).astype(np.uint8)


def resolution_ceiling(root: Path, size: int, split: str = "test") -> PetScores:
    """The split's trimaps scored against themselves after `round_trip` at `size` px."""
    return pet_scores((round_trip(trimap, size), trimap) for _, trimap in split_trimaps(root, split))


def write_image_list(root: Path, split: str, path: Path) -> int:
    """Writes the split's image paths (absolute, one a line) to `path` for `predict --input`; returns
    how many."""
    images = [(root / "images" / f"{name}.jpg").resolve() for name in split_names(root, split)]
    path.write_text("".join(f"{image}\n" for image in images))
    return len(images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mask_dir", nargs="?", type=Path, help="The folder `unetskip predict` wrote.")
    parser.add_argument("--data.root", dest="root", type=Path, required=True, help="Oxford-IIIT Pet folder.")
    parser.add_argument("--split", default="test", help="annotations/<split>.txt (default: test).")
    parser.add_argument("--write_list", type=Path, help="Write the split's image paths here for predict.")
    parser.add_argument("--json", action="store_true", help="Print the scores as one JSON object.")
    parser.add_argument(
        "--round_trip",
        type=int,
        metavar="N",
        help="Score the trimaps resized to N x N and back instead of masks (the resolution's ceiling).",
    )
    args = parser.parse_args(argv)
    if args.round_trip is not None and (args.mask_dir is not None or args.round_trip < 1):
        parser.error("--round_trip takes a size >= 1 and no MASK_DIR")
    if args.write_list is None and args.mask_dir is None and args.round_trip is None:
        parser.error("give MASK_DIR to score, --round_trip N, or --write_list FILE")
    scores = None
    try:
        if args.write_list is not None:
            count = write_image_list(args.root, args.split, args.write_list)
            print(f"{count} images of the {args.split} split listed in {args.write_list}")
        if args.mask_dir is not None:
            scores = score_masks(args.mask_dir, args.root, args.split)
        elif args.round_trip is not None:
            scores = resolution_ceiling(args.root, args.round_trip, args.split)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if scores is not None:
        if args.json:
            print(json.dumps(scores.__dict__))
        else:
            scored = (
                args.split if args.round_trip is None else f"{args.split} trimaps via {args.round_trip} px"
            )
            print(
                f"{scored}: {scores.num_images} images, pet IoU pooled {scores.pooled_iou:.4f}, "
                f"per image {scores.per_image_iou:.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
