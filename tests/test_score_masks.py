"""scripts/score_masks.py: pooled and per-image pet IoU of predicted masks against trimaps."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "score_masks.py"


def load_script():
    spec = importlib.util.spec_from_file_location("score_masks", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.fixture
def scored_folder(tmp_path: Path) -> tuple[Path, Path]:
    """Two 4x5 test images with known counts.

    a: trimap pet 1 + border 3 in 6 pixels; the mask hits 4 of them and 2 background pixels:
       intersection 4, union 8 -> IoU 0.5.
    b: trimap pet in 4 pixels, the mask exactly them -> intersection 4, union 4 -> IoU 1.
    Pooled: 8 / 12; per image: 0.75.
    """
    root, masks = tmp_path / "pets", tmp_path / "masks"
    (root / "images").mkdir(parents=True)
    write_png(
        root / "annotations" / "trimaps" / "a.png", np.array([[1, 1, 3, 2, 2]] * 2 + [[2, 2, 2, 2, 2]] * 2)
    )
    write_png(masks / "a.png", np.array([[1, 1, 0, 1, 0]] * 2 + [[0, 0, 0, 0, 0]] * 2))
    trimap_b = np.full((4, 5), 2)
    trimap_b[1:3, 1:3] = 1
    write_png(root / "annotations" / "trimaps" / "b.png", trimap_b)
    write_png(masks / "b.png", (trimap_b == 1) * 2)  # trimap-mode class 2 (border) counts as pet too
    (root / "annotations" / "test.txt").write_text("a 1 1 1\n# comment\nb 2 2 2\n")
    return root, masks


def test_scores_pooled_and_per_image(scored_folder: tuple[Path, Path]) -> None:
    root, masks = scored_folder
    scores = load_script().score_masks(masks, root, "test")
    assert scores.num_images == 2
    assert scores.pooled_iou == pytest.approx(8 / 12)
    assert scores.per_image_iou == pytest.approx(0.75)


def test_command_line_prints_json_and_writes_the_list(
    scored_folder: tuple[Path, Path], tmp_path: Path
) -> None:
    root, masks = scored_folder
    listed = tmp_path / "test_images.txt"
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            str(masks),
            "--data.root",
            str(root),
            "--write_list",
            str(listed),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    scores = json.loads(result.stdout.splitlines()[-1])
    assert scores["pooled_iou"] == pytest.approx(8 / 12)
    assert listed.read_text().splitlines() == [
        str((root / "images" / n).resolve()) for n in ("a.jpg", "b.jpg")
    ]


@pytest.mark.parametrize(
    ("damage", "message"),
    [("missing", "b.png not found"), ("resized", "masks must be at the image's original size")],
)
def test_bad_masks_are_named(scored_folder: tuple[Path, Path], damage: str, message: str) -> None:
    root, masks = scored_folder
    if damage == "missing":
        (masks / "b.png").unlink()
    else:
        write_png(masks / "b.png", np.zeros((2, 2)))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(masks), "--data.root", str(root)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_round_trip_at_the_trimaps_size_is_exact_and_loses_what_is_thinner_than_a_pixel(
    tmp_path: Path,
) -> None:
    script = load_script()
    trimap = np.full((8, 8), 2)
    trimap[:, 3] = 1  # a pet one pixel wide: a quarter of a pixel at 2 x 2
    root = tmp_path / "pets"
    write_png(root / "annotations" / "trimaps" / "a.png", trimap)
    (root / "annotations" / "test.txt").write_text("a 1 1 1\n")
    assert script.resolution_ceiling(root, 8).pooled_iou == 1.0
    assert script.round_trip(trimap, 2).sum() == 0
    assert script.resolution_ceiling(root, 2).per_image_iou == 0.0


def test_round_trip_takes_no_mask_folder(scored_folder: tuple[Path, Path]) -> None:
    root, masks = scored_folder
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(masks), "--data.root", str(root), "--round_trip", "4"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "--round_trip takes a size >= 1 and no MASK_DIR" in result.stderr
