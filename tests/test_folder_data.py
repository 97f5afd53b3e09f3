"""Own images and masks: mask encodings, folder layouts, the data check (each problem naming its file),
the FolderDataModule's batches, and class weights."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from own_data import blob_sample, write_own_folder
from PIL import Image

from unetskip.bench.loader import measure_loader
from unetskip.bench.settings import Settings
from unetskip.bench.subjects import load_subject
from unetskip.data.check import DataCheckError
from unetskip.data.folder import FolderDataModule
from unetskip.data.folder_layout import find_layout
from unetskip.data.masks import MaskEncoding, read_mask
from unetskip.models import UNet
from unetskip.training.losses import SegmentationLoss, inverse_frequency_weights
from unetskip.training.module import SegmentationModule

STORED = np.array([[0, 1, 2], [2, 1, 255]], dtype=np.uint8)
RED, GREEN, BLUE, VOID = (255, 0, 0), (0, 255, 0), (0, 0, 255), (224, 224, 192)


def encoding(num_classes: int = 3, **options) -> MaskEncoding:
    names = [f"class{i}" for i in range(num_classes)]
    args = {"ignore_index": 255, "palette": None, "void_color": None, "binary_255": True} | options
    return MaskEncoding.build(
        names, args["ignore_index"], args["palette"], args["void_color"], args["binary_255"]
    )


def save_palette_png(path: Path, indices: np.ndarray) -> None:
    """A mode P PNG whose palette index is the class (the palette's colours are arbitrary)."""
    image = Image.fromarray(indices, mode="P")
    image.putpalette([value for i in range(256) for value in ((i * 37) % 256, (i * 91) % 256, i)])
    image.save(path)


def colour_mask(classes: np.ndarray, colours: list[tuple[int, int, int]]) -> np.ndarray:
    return np.array(colours, dtype=np.uint8)[classes]  # (H, W, 3)


# (what is written, how it is written, the encoding, the expected classes, the expected encoding name)
ENCODINGS = [
    ("index L", lambda p: Image.fromarray(STORED).save(p), encoding(), STORED, "index"),
    ("index P", lambda p: save_palette_png(p, STORED), encoding(), STORED, "index"),
    (
        "binary 0/255",
        lambda p: Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(p),
        encoding(2),
        [[0, 1], [1, 0]],
        "binary_255",
    ),
    (
        "0/255 read as void",
        lambda p: Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(p),
        encoding(2, binary_255=False),
        [[0, 255], [255, 0]],
        "index",
    ),
    (
        "binary mode 1",
        lambda p: Image.fromarray(np.array([[0, 1], [1, 1]], bool)).save(p),
        encoding(2),
        [[0, 1], [1, 1]],
        "index",
    ),
    (
        "rgb palette",
        lambda p: Image.fromarray(colour_mask(np.array([[0, 1], [2, 3]]), [RED, GREEN, BLUE, VOID])).save(p),
        encoding(palette=[RED, GREEN, BLUE], void_color=VOID),
        [[0, 1], [2, 255]],
        "rgb",
    ),
    (
        "grey rgb",
        lambda p: Image.fromarray(np.repeat(STORED[:, :, None], 3, axis=2)).save(p),
        encoding(),
        STORED,
        "index",
    ),
    (
        "16-bit index",
        lambda p: Image.fromarray(STORED.astype(np.uint16)).save(p),
        encoding(),
        STORED,
        "index",
    ),
]


@pytest.mark.parametrize(
    ("name", "write", "mask_encoding", "expected", "kind"), ENCODINGS, ids=[e[0] for e in ENCODINGS]
)
def test_mask_encodings(tmp_path, name, write, mask_encoding, expected, kind):
    path = tmp_path / "mask.png"
    write(path)
    decoded = mask_encoding.decode(read_mask(path))
    assert decoded.invalid == {}
    assert decoded.encoding == kind
    assert decoded.mask.dtype == np.uint8
    np.testing.assert_array_equal(decoded.mask, np.array(expected, np.uint8))


@pytest.mark.parametrize(
    ("stored", "mask_encoding", "invalid"),
    [
        (np.array([[0, 7, 7], [3, 1, 255]], np.uint8), encoding(), {"3": 1, "7": 2}),
        (np.array([[0, 255]], np.uint8), encoding(ignore_index=None), {"255": 1}),
        (colour_mask(np.array([[0, 1]]), [RED, (9, 9, 9)]), encoding(), {"255,0,0": 1, "9,9,9": 1}),
        (
            colour_mask(np.array([[0, 1]]), [RED, (9, 9, 9)]),
            encoding(palette=[RED, GREEN, BLUE]),
            {"9,9,9": 1},
        ),
    ],
)
def test_values_outside_the_classes_are_counted(stored, mask_encoding, invalid):
    assert mask_encoding.decode(stored).invalid == invalid


@pytest.mark.parametrize(
    ("names", "options", "key"),
    [
        (["only"], {}, "data.class_names"),
        (["a", "a"], {}, "data.class_names"),
        (["a", "b", "c"], {"ignore_index": 2}, "data.ignore_index"),
        (["a", "b"], {"palette": [RED]}, "data.palette"),
        (["a", "b"], {"palette": [RED, (0, 0, 256)]}, "data.palette"),
        (["a", "b"], {"palette": [RED, GREEN], "void_color": RED}, "data.void_color"),
    ],
)
def test_bad_mask_options_name_the_key(names, options, key):
    args = {"ignore_index": 255, "palette": None, "void_color": None, "binary_255": True} | options
    with pytest.raises(ValueError, match=key):
        MaskEncoding.build(
            names, args["ignore_index"], args["palette"], args["void_color"], args["binary_255"]
        )


# -- layouts ---------------------------------------------------------------------------------------


def test_random_split_pairs_nested_folders_and_is_seeded(tmp_path):
    root = write_own_folder(tmp_path / "own", count=20)
    layout = find_layout(root, val_fraction=0.2, test_fraction=0.25, split_seed=3)
    stems = {split: [s.stem for s in samples] for split, samples in layout.splits.items()}
    assert [len(stems[s]) for s in ("train", "val", "test")] == [12, 3, 5]
    assert set().union(*stems.values()) == {f"{'batch2/' if i % 2 else ''}photo_{i:02d}" for i in range(20)}
    assert all(
        s.mask.with_suffix("").relative_to(root / "masks") == Path(s.stem) for s in layout.splits["val"]
    )
    assert find_layout(root, 0.2, 0.25, 3).splits == layout.splits
    assert find_layout(root, 0.2, 0.25, 4).splits["test"] != layout.splits["test"]
    assert "test" not in find_layout(root, 0.2).splits


def test_split_lists_and_split_folders(tmp_path):
    root = write_own_folder(tmp_path / "lists", count=8, nested=False)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("# train\nphoto_00\nphoto_01.jpg\nphoto_02\n\nphoto_03\n")
    (root / "splits" / "val.txt").write_text("photo_04\nphoto_05\n")
    layout = find_layout(root)
    assert [s.stem for s in layout.splits["train"]] == ["photo_00", "photo_01", "photo_02", "photo_03"]
    assert [s.stem for s in layout.splits["val"]] == ["photo_04", "photo_05"]
    assert [s.stem for s in layout.unused] == ["photo_06", "photo_07"] and "test" not in layout.splits

    folders = tmp_path / "folders"
    for split, count in (("train", 6), ("test", 3)):
        write_own_folder(folders / split, count=count, nested=False)
    layout = find_layout(folders, val_fraction=0.34)
    assert [len(layout.splits[s]) for s in ("train", "val", "test")] == [4, 2, 3]
    assert layout.splits["test"][0].image.parent == folders / "test" / "images"


def test_no_layout_says_which_are_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="images/ and masks/"):
        find_layout(tmp_path)


# -- the data check: each problem names its file ---------------------------------------------------


@pytest.fixture
def own_root(tmp_path) -> Path:
    return write_own_folder(tmp_path / "own", count=12)


def check(root: Path, **options) -> str:
    module = FolderDataModule(root=str(root), num_workers=0, **options)
    return module.check().format()


def test_clean_folder_has_no_errors_and_counts_class_pixels(own_root):
    report = FolderDataModule(root=str(own_root), num_workers=0, val_fraction=0.25).check()
    assert report.all_errors() == []
    expected = np.zeros(2, np.int64)
    for sample in report_samples(own_root, "train"):
        expected += np.bincount((read_mask(sample.mask) > 0).ravel(), minlength=2)
    np.testing.assert_array_equal(report.split("train").class_pixels, expected)
    assert report.split("train").pairs + report.split("val").pairs == 12
    text = report.format()
    assert "0/255 binary encoding in" in text and "255 is read as class 1" in text
    assert text.endswith("0 errors: training can proceed")


def report_samples(root: Path, split: str):
    return find_layout(root, val_fraction=0.25).splits[split]


@pytest.mark.parametrize(
    ("breakage", "named", "message"),
    [
        (lambda r: (r / "masks" / "photo_00.png").unlink(), "images/photo_00.jpg", "image without mask"),
        (
            lambda r: (r / "images" / "batch2" / "photo_01.jpg").unlink(),
            "masks/batch2/photo_01.png",
            "mask without image",
        ),
        (
            lambda r: jpeg_mask(r / "masks" / "photo_02.png"),
            "masks/photo_02.jpg",
            "mask stored as JPEG",
        ),
        (
            lambda r: Image.fromarray(np.zeros((5, 5), np.uint8)).save(r / "masks" / "photo_04.png"),
            "images/photo_04.png is 52x40, masks/photo_04.png is 5x5",
            "size mismatch",
        ),
        (
            lambda r: add_value(r / "masks" / "batch2" / "photo_05.png", 7),
            "masks/batch2/photo_05.png",
            "mask value 7 is outside classes 0..1 and ignore_index 255: 3 px in 1 masks",
        ),
        (
            lambda r: Image.fromarray(colour_mask(np.zeros((43, 52), int), [RED])).save(
                r / "masks/batch2/photo_01.png"
            ),
            "masks/batch2/photo_01.png",
            "colour (RGB) masks and no data.palette",
        ),
        (lambda r: (r / "masks" / "photo_06.png").write_bytes(b"no png"), "masks/photo_06.png", "unreadable"),
        (
            lambda r: shutil.copy(r / "images" / "photo_08.jpg", r / "images" / "photo_08.bmp"),
            "images/photo_08.bmp",
            "two files for stem 'photo_08'",
        ),
    ],
    ids=["no mask", "no image", "jpeg mask", "size", "values", "rgb", "unreadable", "duplicate"],
)
def test_each_problem_is_an_error_naming_its_file(own_root, breakage, named, message):
    breakage(own_root)
    after_breakage = snapshot(own_root)
    text = check(own_root)
    assert any(message in line and named in line for line in text.splitlines() if "ERROR" in line), text
    assert not text.endswith("0 errors: training can proceed")
    assert snapshot(own_root) == after_breakage  # the check writes nothing
    # fit stops in setup with the same message (the broken file is in train, val or test)
    module = FolderDataModule(root=str(own_root), num_workers=0, test_fraction=0.3)
    with pytest.raises(DataCheckError, match=re.escape(named)):
        module.setup("fit")
        module.setup("test")


def jpeg_mask(png: Path) -> None:
    Image.open(png).convert("L").save(png.with_suffix(".jpg"), quality=90)
    png.unlink()


def add_value(png: Path, value: int) -> None:
    mask = np.array(Image.open(png))
    mask[0, :3] = value
    Image.fromarray(mask).save(png)


def snapshot(root: Path) -> dict[str, tuple[float, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime, p.stat().st_size)
        for p in root.rglob("*")
        if p.is_file()
    }


def exif_rotated(path: Path, image: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(image).save(path, exif=exif, quality=95)


def test_exif_orientation_policy(tmp_path):
    root = write_own_folder(tmp_path / "own", count=6, nested=False)
    image, mask = blob_sample(30, 50, seed=99)  # stored 50 wide, 30 high; displayed 30 x 50 (orientation 6)
    exif_rotated(root / "images" / "phone_ok.jpg", image, 6)
    Image.fromarray(np.rot90(mask, k=-1).copy()).save(root / "masks" / "phone_ok.png")  # drawn as displayed
    text = check(root)
    assert "1 images have a non-identity EXIF orientation" in text and "images/phone_ok.jpg (6)" in text
    assert text.endswith("0 errors: training can proceed")
    exif_rotated(root / "images" / "phone_bad.jpg", image, 6)
    Image.fromarray(mask).save(root / "masks" / "phone_bad.png")  # drawn on the stored pixels
    text = check(root)
    error = next(line for line in text.splitlines() if "phone_bad" in line)
    assert "ERROR mask matches the stored, not the displayed" in error and "masks/phone_bad.png" in error


def test_list_problems_name_the_list(tmp_path):
    root = write_own_folder(tmp_path / "own", count=6, nested=False)
    (root / "splits").mkdir()
    (root / "splits" / "train.txt").write_text("photo_00\nphoto_01\nphoto_01\nghost\n")
    (root / "splits" / "val.txt").write_text("photo_00\nphoto_02\n")
    text = check(root)
    assert "splits/train.txt:3: 'photo_01' is listed twice" in text
    assert "'photo_00' is listed in both the train and val splits" in text
    assert "mask without image" not in text and "ghost" in text  # listed, but no image and no mask


# -- the DataModule --------------------------------------------------------------------------------


def test_datamodule_batches_and_writes_nothing(own_root):
    before = snapshot(own_root)
    module = FolderDataModule(root=str(own_root), image_size=(32, 40), batch_size=4, num_workers=0, seed=1)
    module.setup("fit")
    assert module.class_names == ["background", "foreground"] and module.ignore_index == 255
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 40) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (4, 32, 40) and batch["mask"].dtype == torch.long
    assert set(batch["mask"].unique().tolist()) <= {0, 1, 255} and "border" not in batch
    val = next(iter(module.val_dataloader()))
    assert set(val["mask"].unique().tolist()) == {0, 1}  # 0/255 masks arrive as 0/1
    assert all(name.startswith(("photo_", "batch2/photo_")) for name in val["name"])
    with pytest.raises(ValueError, match="no test split"):
        module.setup("test")
    assert snapshot(own_root) == before


def test_class_weights_auto_from_the_training_split(own_root):
    module = FolderDataModule(root=str(own_root), image_size=32, batch_size=4, num_workers=0)
    model = SegmentationModule(UNet(num_classes=2, base_channels=4, depth=2), class_weights="auto")
    trainer = L.Trainer(
        max_steps=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    )
    trainer.fit(model, datamodule=module)
    expected = inverse_frequency_weights(module.class_pixels())
    assert torch.allclose(model.criterion.class_weights, torch.tensor(expected, dtype=torch.float32))
    pixels = module.class_pixels()
    assert expected[1] > expected[0] and np.isclose(np.dot(expected, pixels), pixels.sum())


def test_weighted_cross_entropy():
    logits, target = torch.randn(2, 3, 4, 5), torch.randint(0, 3, (2, 4, 5))
    target[0, 0, 0] = 255
    weights = [0.5, 2.0, 1.0]
    loss = SegmentationLoss("ce", 255, weights)
    assert torch.allclose(
        loss(logits, target), F.cross_entropy(logits, target, torch.tensor(weights), ignore_index=255)
    )
    assert "criterion.class_weights" not in SegmentationModule(UNet(num_classes=2, depth=2)).state_dict()
    assert inverse_frequency_weights([30, 10, 0]) == [pytest.approx(40 / 90), pytest.approx(40 / 30), 0.0]
    with pytest.raises(ValueError, match="model.class_weights has 3 weights for 2 classes"):
        SegmentationModule(UNet(num_classes=2, depth=2), class_weights=weights)
    with pytest.raises(ValueError, match="model.class_weights must be finite"):
        SegmentationLoss("ce", 255, [1.0, -1.0])


def test_benchmark_loader_reads_the_configs_own_data_module(own_root, tmp_path):
    """`python -m unetskip.bench` measures the loader of the config's DataModule: a folder config's too."""
    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "unet.yaml").read_text())
    palette_free = {"class_names": ["background", "blob"], "binary_255": True}
    config["data"] = {
        "class_path": "unetskip.data.FolderDataModule",
        "init_args": {"root": "x", **palette_free},
    }
    path = tmp_path / "own.yaml"
    path.write_text(yaml.safe_dump(config))
    subject = load_subject(path)
    assert subject.data_class is FolderDataModule and subject.data_args["class_names"] == [
        "background",
        "blob",
    ]
    settings = Settings(torch.device("cpu"), "32-true", False, False, 2, 32, 1, 1, 1)
    result = measure_loader(subject, str(own_root), settings, num_workers=0, batches=2, samples=2)
    assert result.img_s > 0 and result.decode_ms > 0 and result.sample_ms > 0


def test_colour_masks_with_a_palette_and_void_through_the_datamodule(tmp_path):
    """Three classes as VOC-style colours plus a void colour: batches hold 0, 1, 2 and ignore_index."""
    root = tmp_path / "voc"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index in range(6):
        image, mask = blob_sample(40, 48, seed=index)
        classes = mask + (np.arange(48)[None, :] >= 40) * 2 * mask  # class 2: the blob's right end
        classes[:, :2] = 3  # a void margin
        Image.fromarray(image).save(root / "images" / f"scene_{index}.png")
        Image.fromarray(colour_mask(classes, [(0, 0, 0), RED, GREEN, VOID])).save(
            root / "masks" / f"scene_{index}.png"
        )
    module = FolderDataModule(
        root=str(root),
        class_names=["background", "car", "road"],
        palette=[(0, 0, 0), RED, GREEN],
        void_color=VOID,
        image_size=(40, 48),
        batch_size=2,
        num_workers=0,
        val_fraction=0.34,
    )
    module.setup("fit")
    values = set(next(iter(module.val_dataloader()))["mask"].unique().tolist())
    assert {0, 1, 255} <= values <= {0, 1, 2, 255}
    pixels = module.class_pixels()
    assert pixels.shape == (3,) and pixels[0] > pixels[1] > 0
