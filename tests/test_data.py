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
from unetskip.data.image_files import load_image
from unetskip.data.image_size import parse_image_size
from unetskip.data.oxford_pet import OxfordPetDataset, find_samples, read_split
from unetskip.data.oxford_pet_datamodule import split_trainval
from unetskip.data.transforms import train_transforms

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


def test_load_image_converts_gif_and_rgba_named_jpg(tmp_path):
    gif, rgba = tmp_path / "cat.jpg", tmp_path / "dog.jpg"
    Image.fromarray(np.full((5, 7), 3, np.uint8), mode="L").convert("P").save(gif, format="GIF")
    Image.fromarray(np.full((4, 6, 4), 200, np.uint8), mode="RGBA").save(rgba, format="PNG")
    assert load_image(gif).shape == (5, 7, 3)
    assert load_image(rgba).shape == (4, 6, 3)


def write_rotated_sample(root: Path, name: str, trimap_shape: tuple[int, int]) -> np.ndarray:
    """A JPEG stored 12 high and 20 wide with EXIF orientation 6 (displayed 20 high, 12 wide: turned 90
    degrees clockwise) and a trimap of `trimap_shape`; returns the stored pixels."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "trimaps").mkdir(parents=True, exist_ok=True)
    stored = np.zeros((12, 20, 3), np.uint8)
    stored[:, :10] = 255  # left half white as stored: the top half as displayed
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(root / "images" / f"{name}.jpg", exif=exif, quality=100)
    Image.fromarray(np.full(trimap_shape, 1, np.uint8)).save(root / "annotations" / "trimaps" / f"{name}.png")
    return stored


def test_training_sees_an_exif_rotated_photo_as_displayed(tmp_path):
    write_rotated_sample(tmp_path, "Turned_1", trimap_shape=(20, 12))  # the trimap fits the displayed image
    write_rotated_sample(tmp_path, "Turned_2", trimap_shape=(12, 20))  # it fits the stored pixels only
    samples = find_samples(tmp_path, ["Turned_1", "Turned_2"])
    assert [sample.name for sample in samples] == ["Turned_1"]

    def to_tensor(image, mask, masks):
        return {"image": torch.tensor(image), "mask": torch.tensor(mask), "masks": masks}

    item = OxfordPetDataset(samples, to_tensor)[0]
    image = item["image"].numpy()  # (H, W, 3) as the transform got it
    assert image.shape == (20, 12, 3) and item["mask"].shape == (20, 12)
    np.testing.assert_array_equal(image, load_image(tmp_path / "images" / "Turned_1.jpg"))
    assert image[:10].min() > 240 and image[10:].max() < 15  # white on top, as displayed


def test_a_mask_fitting_only_the_stored_pixels_is_named(tmp_path, caplog):
    write_rotated_sample(tmp_path, "Turned_2", trimap_shape=(12, 20))
    with caplog.at_level(logging.WARNING):
        assert find_samples(tmp_path, ["Turned_2"]) == []
    assert "trimap size (20, 12) differs from image size (12, 20) (as displayed) for Turned_2" in caplog.text


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


@pytest.mark.parametrize(
    ("image_size", "expected"), [(160, (160, 160)), ([96, 128], (96, 128)), ((1, 7), (1, 7))]
)
def test_image_size_is_height_and_width(image_size, expected):
    assert parse_image_size(image_size) == expected


@pytest.mark.parametrize("image_size", [0, (0, 5), (3, 4, 5), [64], (64.5, 64), (True, 3), "256"])
def test_bad_image_size_names_the_key(image_size):
    with pytest.raises(ValueError, match="data.image_size"):
        parse_image_size(image_size)


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
    for crop_scale in [(0.0, 1.0), (0.9, 0.5), (0.5, 1.2)]:
        with pytest.raises(ValueError, match="data.crop_scale"):
            OxfordPetDataModule(crop_scale=crop_scale)
    with pytest.raises(ValueError, match="data.rotate_degrees"):
        OxfordPetDataModule(rotate_degrees=-1)


def ignored_pixels(crop_scale: tuple[float, float], rotate_degrees: float) -> list[int]:
    """Pixels set to the ignore index in 16 augmented copies of an all-pet 48 x 64 sample."""
    transform = train_transforms((48, 64), 255, crop_scale, rotate_degrees)
    image = np.full((48, 64, 3), 128, np.uint8)
    mask = np.ones((48, 64), np.uint8)
    counts = []
    for seed in range(16):
        transform.set_random_seed(seed)
        counts.append(int((transform(image=image, mask=mask)["mask"] == 255).sum()))
    return counts


def test_augmentation_strength_is_configurable():
    assert ignored_pixels((1.0, 1.0), 0.0) == [0] * 16  # no rotation: no pixel comes from outside
    assert sum(count > 0 for count in ignored_pixels((1.0, 1.0), 30.0)) >= 3  # about half are rotated
    dm = OxfordPetDataModule(crop_scale=[0.8, 1.0], rotate_degrees=0)
    assert dm.crop_scale == (0.8, 1.0) and dm.hparams["rotate_degrees"] == 0


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
    assert load_image(root / "images" / "Abyssinian_5.jpg").shape[2] == 3
    assert len(set(names)) == 322
