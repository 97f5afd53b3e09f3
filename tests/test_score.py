"""`unetskip score`: masks any tool wrote against true masks (Oxford trimaps or a mask folder); the
assertions of the older scripts/score_masks.py, and errors that name the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unetskip.evaluate.score_command import score_main


def write_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


@pytest.fixture
def scored_folder(tmp_path: Path) -> tuple[Path, Path]:
    """Two 4x5 test images with known counts (as in tests/test_score_masks.py).

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
    write_png(masks / "b.png", trimap_b == 1)
    write_png(masks / "b.prob_pet.png", np.zeros((4, 5)))  # predict's probability map: not a prediction
    (root / "annotations" / "test.txt").write_text("a 1 1 1\n# comment\nb 2 2 2\n")
    return root, masks


def score(*args: str) -> int:
    return score_main(list(args))


def test_oxford_trimaps_score_pooled_and_per_image(scored_folder, tmp_path, capsys):
    root, masks = scored_folder
    score(str(masks), "--truth", str(root), "--output", str(tmp_path / "out"))
    content = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert content["num_images"] == 2 and content["truth_format"] == "oxford_trimap"
    assert content["pooled"]["pet_iou_pooled"] == pytest.approx(8 / 12)
    assert content["pooled"]["iou/pet"] == pytest.approx(8 / 12)
    assert content["pooled"]["pet_iou_per_image"] == pytest.approx(0.75)
    assert content["per_image"]["iou/pet"] == pytest.approx(0.75)
    assert "pet_iou_border_band" in content["pooled"]  # trimaps carry the border
    assert "worst 2 by iou_macro" in capsys.readouterr().out
    assert (tmp_path / "out" / "worst.png").is_file() and (
        tmp_path / "out" / "confusion_matrix.png"
    ).is_file()


def test_trimap_mode_reads_class_2_as_the_border(scored_folder, tmp_path):
    root, masks = scored_folder
    write_png(masks / "b.png", (np.asarray(Image.open(masks / "b.png")) > 0) * 2)
    assert score(str(masks), "--truth", str(root), "--output", str(tmp_path / "binary")) == 2
    score(str(masks), "--truth", str(root), "--mask_mode", "trimap", "--output", str(tmp_path / "out"))
    content = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert content["class_names"] == ["background", "pet", "border"]
    assert content["pooled"]["pet_iou_pooled"] == pytest.approx(8 / 12)  # pet or border vs background


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "1 true masks have no prediction in .*masks: b"),
        ("extra", "1 predictions in .*masks have no true mask in .*pets: sub/c"),
        (
            "resized",
            "masks/b.png is 2x2 .WxH. but its true mask .*b.png is 5x4: masks must be at the image's",
        ),
        ("out of range", "masks/b.png holds class 7, but there are 2 classes"),
    ],
)
def test_bad_masks_are_named(scored_folder, tmp_path, capsys, damage, message):
    root, masks = scored_folder
    if damage == "missing":
        (masks / "b.png").unlink()
    elif damage == "extra":
        write_png(masks / "sub" / "c.png", np.zeros((4, 5)))
    else:
        write_png(masks / "b.png", np.zeros((2, 2)) if damage == "resized" else np.full((4, 5), 7))
    assert score(str(masks), "--truth", str(root), "--output", str(tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert re.search(message, err), err


def test_a_mask_folder_pairs_by_relative_path_and_reads_0_255(tmp_path):
    truth, predicted = tmp_path / "truth", tmp_path / "pred"
    write_png(truth / "x" / "one.png", np.array([[0, 255], [255, 255]]))  # 0/255: read as 0/1
    write_png(predicted / "x" / "one.png", np.array([[0, 1], [0, 1]]))
    (tmp_path / "config.yaml").write_text("data:\n  init_args:\n    class_names: [sky, tree]\n")
    score(str(predicted), "--truth", str(truth), "--config", str(tmp_path / "config.yaml"))
    content = json.loads((tmp_path / "pred-score" / "summary.json").read_text())
    assert content["class_names"] == ["sky", "tree"] and content["truth_format"] == "masks"
    assert content["pooled"]["iou/tree"] == pytest.approx(2 / 3)
    rows = (tmp_path / "pred-score" / "per_image.csv").read_text().splitlines()
    assert rows[1].startswith("x/one.png,")
    assert score(str(predicted), "--truth", str(truth)) == 2  # the default output exists now
