"""Oxford-IIIT Pet reading: mask modes, splits, odd files, and the DataModule's batches."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from unetskip.data import OxfordPetDataModule, class_names_for, trimap_to_mask
from unetskip.data.datamodule import split_trainval
from unetskip.data.oxford_pet import load_rgb, read_split

# Official trimap values: 1 pet, 2 background, 3 border.
TRIMAP = np.array([[2, 2, 3], [3, 1, 1]], dtype=np.uint8)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("binary", [[0, 0, 1], [1, 1, 1]]),
        ("binary_ignore_border", [[0, 0, 255], [255, 1, 1]]),
        ("trimap", [[0, 0, 2], [2, 1, 1]]),
    ],
)
def test_trimap_to_mask(mode, expected):
    mask = trimap_to_mask(TRIMAP, mode, ignore_index=255)
    np.testing.assert_array_equal(mask, np.array(expected, dtype=np.uint8))
    assert len(class_names_for(mode)) == (3 if mode == "trimap" else 2)


def test_unknown_mask_mode_names_the_key():
    with pytest.raises(ValueError, match="data.mask_mode"):
        trimap_to_mask(TRIMAP, "quadmap")


def test_split_is_deterministic_disjoint_and_complete():
    names = [f"img_{i}" for i in range(50)]
    train, val = split_trainval(names, 0.2, seed=1)
    assert (train, val) == split_trainval(list(reversed(names)), 0.2, seed=1)
    assert len(val) == 10 and not set(train) & set(val) and set(train) | set(val) == set(names)
    assert split_trainval(names, 0.2, seed=2)[1] != val
    with pytest.raises(ValueError, match="val_fraction"):
        split_trainval(names, 1.0, seed=1)


def test_split_lists_skip_comments(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "test.txt").write_text(
        "#Image CLASS-ID SPECIES BREED ID\nA_1 1 1 1\n\nB_2 2 2 1\n"
    )
    assert read_split(tmp_path, "test") == ["A_1", "B_2"]


def test_load_rgb_converts_gif_and_rgba_named_jpg(tmp_path):
    gif, rgba = tmp_path / "cat.jpg", tmp_path / "dog.jpg"
    Image.fromarray(np.full((5, 7), 3, np.uint8), mode="L").convert("P").save(gif, format="GIF")
    Image.fromarray(np.full((4, 6, 4), 200, np.uint8), mode="RGBA").save(rgba, format="PNG")
    assert load_rgb(gif).shape == (5, 7, 3)
    assert load_rgb(rgba).shape == (4, 6, 3)


def file_snapshot(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


@pytest.mark.parametrize("mode", ["binary", "binary_ignore_border", "trimap"])
def test_datamodule_batches(pet_root, mode):
    before = file_snapshot(pet_root)
    dm = OxfordPetDataModule(
        root=str(pet_root),
        image_size=(32, 48),
        mask_mode=mode,
        batch_size=4,
        num_workers=0,
        val_fraction=0.25,
    )
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.datasets["train"]) == 9 and len(dm.datasets["val"]) == 3
    assert len(dm.datasets["test"]) == 6
    train_names = {s.name for s in dm.datasets["train"].samples}
    assert not train_names & {s.name for s in dm.datasets["test"].samples}
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 48) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (4, 32, 48) and batch["mask"].dtype == torch.long
    allowed = {"binary": {0, 1, 255}, "binary_ignore_border": {0, 1, 255}, "trimap": {0, 1, 2, 255}}
    assert set(batch["mask"].unique().tolist()) <= allowed[mode]
    val = next(iter(dm.val_dataloader()))
    values = set(val["mask"].unique().tolist())  # eval: no rotation fill, so no 255 except borders
    assert {0, 1} <= values
    assert (255 in values) == (mode == "binary_ignore_border")
    assert file_snapshot(pet_root) == before  # nothing is written into data.root


def test_broken_samples_are_reported_by_name_and_skipped(pet_root, tmp_path, caplog):
    root = tmp_path / "pets"
    shutil.copytree(pet_root, root)
    (root / "annotations" / "trimaps" / "Synthetic_cat_0.png").unlink()
    Image.fromarray(np.ones((3, 3), np.uint8)).save(root / "annotations" / "trimaps" / "Synthetic_cat_1.png")
    (root / "images" / "Synthetic_cat_2.jpg").write_bytes(b"not an image")
    dm = OxfordPetDataModule(root=str(root), image_size=32, num_workers=0, val_fraction=0.25)
    with caplog.at_level(logging.WARNING):
        dm.setup("fit")
    assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == 9
    assert "Synthetic_cat_0.png" in caplog.text and "missing" in caplog.text
    assert "Synthetic_cat_1" in caplog.text and "differs from image size" in caplog.text
    assert "Synthetic_cat_2.jpg" in caplog.text and "unreadable" in caplog.text


def test_missing_root_says_how_to_get_the_data(tmp_path):
    dm = OxfordPetDataModule(root=str(tmp_path / "nowhere"), num_workers=0)
    with pytest.raises(FileNotFoundError, match="data.download=true"):
        dm.setup("fit")


def test_bad_datamodule_arguments_name_the_key():
    with pytest.raises(ValueError, match="data.val_fraction"):
        OxfordPetDataModule(val_fraction=0.0)
    with pytest.raises(ValueError, match="data.mask_mode"):
        OxfordPetDataModule(mask_mode="rgb")
    with pytest.raises(ValueError, match="data.batch_size"):
        OxfordPetDataModule(batch_size=0)
    with pytest.raises(ValueError, match="data.max_images"):
        OxfordPetDataModule(max_images=1)


@pytest.mark.parametrize(
    ("max_images", "trainval", "test"), [(None, 12, 6), (8, 8, 6), (4, 4, 4), (100, 12, 6)]
)
def test_max_images_caps_each_official_list(pet_root, max_images, trainval, test):
    """pet_root has 12 trainval and 6 test images; the same seed takes the same images."""
    chosen = []
    for _ in range(2):
        dm = OxfordPetDataModule(root=str(pet_root), image_size=32, max_images=max_images, num_workers=0)
        dm.setup("fit")
        dm.setup("test")
        assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == trainval
        assert len(dm.datasets["test"]) == test
        chosen.append([s.name for split in ("train", "val", "test") for s in dm.datasets[split].samples])
    assert chosen[0] == chosen[1]
    assert set(chosen[0][:trainval]) <= set(read_split(pet_root, "trainval"))


SHARED_SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "oxford-iiit-pet"


@pytest.mark.skipif(not SHARED_SUBSET.is_dir(), reason="the shared real subset is not beside the repo")
def test_real_subset_loads_with_its_odd_files():
    root = SHARED_SUBSET
    dm = OxfordPetDataModule(root=str(root), image_size=64, num_workers=0)
    dm.setup("fit")
    dm.setup("test")
    assert len(dm.datasets["train"]) + len(dm.datasets["val"]) == 322
    assert len(dm.datasets["test"]) == 298
    names = [s.name for s in dm.datasets["train"].samples + dm.datasets["val"].samples]
    sample = dm.datasets["train"][0]
    assert sample["image"].shape == (3, 64, 64)
    # Abyssinian_5.jpg is an RGBA PNG; it must load as RGB like the rest.
    assert load_rgb(root / "images" / "Abyssinian_5.jpg").shape[2] == 3
    assert len(set(names)) == 322
