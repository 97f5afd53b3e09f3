"""`unetskip predict` through the real CLI on a synthetic photo folder: every format and mode, odd sizes,
broken files, EXIF orientation, name collisions, the manifest, the output-folder rules, determinism."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import ONE_STEP
from PIL import Image
from test_cli import tiny_args

from unetskip.cli.lightning_cli import cli_main
from unetskip.data.image_files import find_images
from unetskip.deploy.export import PROBABILITY_TOLERANCE
from unetskip.deploy.export import main as export_main
from unetskip.predict.inferer import ProbabilityNet
from unetskip.predict.rendering import mask_from_probabilities
from unetskip.predict.writer import MaskWriter
from unetskip.training.module import SegmentationModule

# Every good image of the photo folder: relative path -> its (height, width) as displayed (EXIF applied).
GOOD_IMAGES = {
    "rgb.jpg": (30, 40),
    "odd.JPEG": (217, 333),
    "one.png": (1, 1),
    "rgba.png": (24, 20),
    "palette.png": (16, 21),
    "grey.bmp": (33, 17),
    "cmyk.jpg": (20, 26),
    "anim.gif": (18, 22),
    "cat.jpg": (25, 25),
    "cat.png": (26, 27),
    "exif_rotated.jpg": (40, 20),  # stored 20 high, 40 wide, EXIF orientation 6 (turn 90 degrees)
    "sub/deeper/x.tif": (35, 28),
    "sub/grey16.TIFF": (19, 23),
    "sub/rgb16.png": (21, 19),
    "sub/photo.webp": (32, 48),
}
# Broken images: relative path -> a word the skip reason must contain.
BROKEN_IMAGES = {
    "empty.jpg": "empty",
    "truncated.jpg": "truncated",
    "sub/not_an_image.png": "cannot identify",
}
IGNORED_FILES = ("notes.txt", "data.csv", "README", "sub/.hidden")
# Where each input's mask goes (cat.jpg and cat.png would both be cat.png: the later one gets its full name).
MASK_NAMES = {path: str(Path(path).with_suffix(".png")) for path in GOOD_IMAGES} | {"cat.png": "cat.png.png"}


def random_rgb(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def make_photo_folder(root: Path) -> Path:
    """The inputs above: every format and Pillow mode, odd sizes, broken and non-image files."""
    (root / "sub" / "deeper").mkdir(parents=True)
    for index, (name, (height, width)) in enumerate(GOOD_IMAGES.items()):
        rgb, path = random_rgb(height, width, index), root / name
        if name == "rgba.png":
            Image.fromarray(np.dstack([rgb, rgb[:, :, 0]])).save(path)
        elif name in ("palette.png", "anim.gif"):
            frames = [Image.fromarray(random_rgb(height, width, seed)).quantize(16) for seed in (index, 99)]
            frames[0].save(path, save_all=True, append_images=frames[1:])
        elif name == "grey.bmp":
            Image.fromarray(rgb[:, :, 0]).save(path)
        elif name == "cmyk.jpg":
            Image.fromarray(rgb).convert("CMYK").save(path)
        elif name == "exif_rotated.jpg":
            exif = Image.Exif()
            exif[0x0112] = 6
            Image.fromarray(random_rgb(width, height, index)).save(path, exif=exif)
        elif name == "sub/grey16.TIFF":
            Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(path)
        elif name == "sub/rgb16.png":
            cv2.imwrite(str(path), rgb.astype(np.uint16) * 257)
        else:
            Image.fromarray(rgb).save(path)
    (root / "empty.jpg").write_bytes(b"")
    encoded = io.BytesIO()
    Image.fromarray(random_rgb(64, 64, 7)).save(encoded, format="JPEG")
    (root / "truncated.jpg").write_bytes(encoded.getvalue()[: len(encoded.getvalue()) // 2])
    (root / "sub" / "not_an_image.png").write_text("this is text, not a PNG")
    for name in IGNORED_FILES:
        (root / name).write_text("not an image")
    return root


def snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under `folder`."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def read_manifest(output: Path) -> dict[str, dict[str, str]]:
    with (output / "manifest.csv").open(newline="") as file:
        return {row["input"]: row for row in csv.DictReader(file)}


def predict(ckpt: Path, source: Path, output: Path, *flags: str) -> None:
    cli_main(["predict", "--ckpt_path", str(ckpt), "--input", str(source), "--output", str(output), *flags])


@pytest.fixture(scope="module")
def checkpoint(pet_root, tmp_path_factory) -> Path:
    """One training step of the tiny U-Net; its data settings then point at a folder that does not exist
    and ask for a download, which predict must need neither of."""
    tmp_path = tmp_path_factory.mktemp("fit")
    cli_main(["fit", *tiny_args(pet_root, tmp_path), *ONE_STEP])
    (ckpt,) = (tmp_path / "runs").rglob("last.ckpt")
    contents = torch.load(ckpt, weights_only=True)
    contents["datamodule_hyper_parameters"] |= {"root": str(tmp_path / "missing"), "download": True}
    torch.save(contents, ckpt)
    return ckpt


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_photo_folder(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def predicted(checkpoint, photos, tmp_path_factory) -> Path:
    """The masks of the photo folder in the default (resize) mode."""
    output = tmp_path_factory.mktemp("predicted") / "masks"
    predict(checkpoint, photos, output)
    return output


def test_every_good_image_gets_a_mask_of_its_own_size(predicted, photos):
    for name, (height, width) in GOOD_IMAGES.items():
        with Image.open(predicted / MASK_NAMES[name]) as mask:
            assert mask.mode == "L", name
            assert (mask.height, mask.width) == (height, width), name
            assert set(np.unique(np.asarray(mask))) <= {0, 1}, name


def test_the_manifest_has_every_input_and_nothing_else_is_written(predicted, photos):
    manifest = read_manifest(predicted)
    assert set(manifest) == {str(photos / name) for name in [*GOOD_IMAGES, *BROKEN_IMAGES]}
    for name, (height, width) in GOOD_IMAGES.items():
        row = manifest[str(photos / name)]
        assert (row["status"], row["mask"], row["height"], row["width"]) == (
            "written",
            MASK_NAMES[name],
            str(height),
            str(width),
        )
    for name, word in BROKEN_IMAGES.items():
        row = manifest[str(photos / name)]
        assert row["status"] == "skipped" and row["mask"] == "", name
        assert word in row["reason"], row["reason"]
    assert set(snapshot(predicted)) == {*MASK_NAMES.values(), "manifest.csv", "config.yaml"}


@pytest.mark.parametrize("mode", ["native", "tiled"])
def test_native_and_tiled_modes_give_masks_of_every_size(checkpoint, photos, tmp_path, mode):
    before = snapshot(photos)
    predict(checkpoint, photos, tmp_path / "out", "--mode", mode, "--tile_size", "16", "--tta")
    for name, (height, width) in GOOD_IMAGES.items():
        with Image.open(tmp_path / "out" / MASK_NAMES[name]) as mask:
            assert (mask.height, mask.width) == (height, width), name
    assert snapshot(photos) == before  # inputs untouched


def test_ckpt_path_and_options_in_a_config_file(checkpoint, photos, predicted, tmp_path):
    """predict --config FILE, the file holding ckpt_path and options, writes what the flags write."""
    config = {"ckpt_path": str(checkpoint), "input": str(photos), "mode": "resize", "overlay": True}
    (tmp_path / "predict.yaml").write_text(yaml.safe_dump(config))
    cli_main(["predict", "--config", str(tmp_path / "predict.yaml"), "--output", str(tmp_path / "out")])
    first, second = snapshot(predicted), snapshot(tmp_path / "out")
    for mask in MASK_NAMES.values():
        assert first[mask] == second[mask], mask
    assert (tmp_path / "out" / "odd.overlay.jpg").is_file()


def test_predicting_twice_gives_identical_masks(checkpoint, photos, predicted, tmp_path):
    predict(checkpoint, photos, tmp_path / "again")
    first, second = snapshot(predicted), snapshot(tmp_path / "again")
    for mask in MASK_NAMES.values():
        assert first[mask] == second[mask], mask


def test_overlay_and_probabilities_of_a_single_file(checkpoint, photos, tmp_path):
    predict(checkpoint, photos / "odd.JPEG", tmp_path / "out", "--overlay", "--probabilities")
    written = set(snapshot(tmp_path / "out"))
    names = ["odd.png", "odd.overlay.jpg", "odd.prob_background.png", "odd.prob_pet.png"]
    assert written == {*names, "manifest.csv", "config.yaml"}
    mask, overlay, background, pet = (np.asarray(Image.open(tmp_path / "out" / name)) for name in names)
    assert overlay.shape == (217, 333, 3) and background.shape == pet.shape == mask.shape == (217, 333)
    assert np.abs(background.astype(int) + pet - 255).max() <= 1  # probabilities sum to 1
    decided = np.abs(pet.astype(int) - background) > 2
    np.testing.assert_array_equal(mask[decided], (pet > background)[decided])


def test_a_list_file_reports_missing_and_non_image_entries(checkpoint, tmp_path):
    (tmp_path / "images" / "deep").mkdir(parents=True)
    for name in ("b.png", "deep/c.png"):
        Image.fromarray(random_rgb(12, 10, 0)).save(tmp_path / "images" / name)
    lines = [
        "# relative to the list's folder, or absolute",
        "images/b.png",
        str(tmp_path / "images/deep/c.png"),
    ]
    (tmp_path / "list.txt").write_text("\n".join([*lines, "", "missing.jpg", "notes.txt", "images/b.png"]))
    predict(checkpoint, tmp_path / "list.txt", tmp_path / "out")
    manifest = read_manifest(tmp_path / "out")
    assert len(manifest) == 4  # the duplicate line counts once
    assert manifest[str(tmp_path / "images/b.png")]["mask"] == "b.png"
    assert manifest[str(tmp_path / "images/deep/c.png")]["mask"] == "deep/c.png"
    assert "not found" in manifest[str(tmp_path / "missing.jpg")]["reason"]
    assert "not an image" in manifest[str(tmp_path / "notes.txt")]["reason"]
    assert (tmp_path / "out" / "deep" / "c.png").is_file()


def test_a_non_empty_output_needs_overwrite_and_keeps_other_files(checkpoint, photos, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "mine.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="not empty"):
        predict(checkpoint, photos / "rgb.jpg", output)
    assert set(snapshot(output)) == {"mine.txt"}
    predict(checkpoint, photos / "rgb.jpg", output, "--overwrite")
    assert set(snapshot(output)) == {"mine.txt", "rgb.png", "manifest.csv", "config.yaml"}


def test_an_output_folder_inside_the_input_is_not_read_back(checkpoint, photos, tmp_path):
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(random_rgb(9, 9, 0)).save(source / "a.png")
    predict(checkpoint, source, source / "masks")
    predict(checkpoint, source, source / "masks", "--overwrite")
    assert set(read_manifest(source / "masks")) == {str(source / "a.png")}
    with pytest.raises(SystemExit, match="is the input folder"):
        predict(checkpoint, source, source, "--overwrite")


def test_an_output_that_would_replace_an_input_is_refused(checkpoint, tmp_path):
    (tmp_path / "m").mkdir()
    for name in ("x.png", "m/x.png"):
        Image.fromarray(random_rgb(9, 9, 0)).save(tmp_path / name)
    (tmp_path / "list.txt").write_text("x.png\nm/x.png\n")
    before = snapshot(tmp_path)
    with pytest.raises(SystemExit, match="would overwrite the input"):
        predict(checkpoint, tmp_path / "list.txt", tmp_path / "m", "--overwrite")
    assert snapshot(tmp_path) == before


def test_predict_without_a_checkpoint_is_a_clear_error(photos, tmp_path):
    with pytest.raises(SystemExit, match="needs --ckpt_path"):
        cli_main(["predict", "--input", str(photos), "--output", str(tmp_path / "out")])


def test_strict_exits_with_status_1_when_an_input_was_skipped(checkpoint, photos, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        predict(checkpoint, photos, tmp_path / "out", "--strict")
    assert exit_info.value.code == 1
    assert len(read_manifest(tmp_path / "out")) == len(GOOD_IMAGES) + len(BROKEN_IMAGES)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("nowhere", "does not exist"),
        ("data.csv", "listing image paths"),
        ("README", "neither"),
        ("bin.txt", "UTF-8"),
    ],
)
def test_bad_inputs_give_a_clear_error(checkpoint, photos, tmp_path, source, message):
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00binary")
    folder = tmp_path if source == "bin.txt" else photos
    with pytest.raises(SystemExit, match=message):
        predict(checkpoint, folder / source, tmp_path / "out")


def test_a_folder_without_images_is_an_error(checkpoint, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("text")
    with pytest.raises(SystemExit, match="holds no image"):
        predict(checkpoint, tmp_path / "docs", tmp_path / "out")


def test_trimap_masks_hold_three_classes_at_the_original_size(tmp_path):
    """MaskWriter alone, on probabilities at a model size (8 x 8) for a 3-class (trimap) model."""
    Image.fromarray(random_rgb(13, 21, 0)).save(tmp_path / "pet.png")
    found = find_images(tmp_path / "pet.png")
    classes = ["background", "pet", "border"]
    writer = MaskWriter(str(tmp_path / "out"), overlay=True, probabilities=True)
    writer.plan(found, classes)
    # Left third background, middle pet, right border, at 8 x 8; resized to 13 x 21 by the writer.
    probabilities = torch.full((3, 8, 8), 0.1)
    for index, columns in enumerate((slice(0, 3), slice(3, 5), slice(5, 8))):
        probabilities[index, :, columns] = 0.8
    trainer = SimpleNamespace(world_size=1, global_rank=0, is_global_zero=True)  # what the writer reads
    writer.on_predict_start(trainer, None)
    batch = {"index": [0], "size": [(13, 21)], "failed": []}
    writer.write_on_batch_end(trainer, None, [probabilities], None, batch, 0)
    writer.on_predict_end(trainer, None)
    mask = np.asarray(Image.open(tmp_path / "out" / "pet.png"))
    assert mask.shape == (13, 21)
    assert (
        mask[:, 0].tolist() == [0] * 13
        and mask[:, 10].tolist() == [1] * 13
        and mask[:, 20].tolist() == [2] * 13
    )
    for name in classes:
        assert np.asarray(Image.open(tmp_path / "out" / f"pet.prob_{name}.png")).shape == (13, 21)
    assert np.asarray(Image.open(tmp_path / "out" / "pet.overlay.jpg")).shape == (13, 21, 3)
    assert writer.written == 1 and writer.skipped == 0


@pytest.mark.parametrize(
    ("probabilities", "size", "expected"),
    [
        # Same size: the argmax of each pixel.
        ([[[0.9, 0.2]], [[0.1, 0.8]]], (1, 2), [[0, 1]]),
        # Upsized 1 x 2 -> 2 x 4: each half takes its pixel's class.
        ([[[0.9, 0.2]], [[0.1, 0.8]]], (2, 4), [[0, 0, 1, 1], [0, 0, 1, 1]]),
        # Three classes, downsized 2 x 2 -> 1 x 1 (bilinear: the mean, class 2 wins).
        ([[[0.5, 0.1], [0.1, 0.1]], [[0.4, 0.4], [0.2, 0.2]], [[0.1, 0.5], [0.7, 0.7]]], (1, 1), [[2]]),
    ],
)
def test_mask_from_probabilities_gives_uint8_classes_at_the_original_size(probabilities, size, expected):
    mask = mask_from_probabilities(torch.tensor(probabilities), size)
    assert mask.dtype == np.uint8 and mask.shape == size
    np.testing.assert_array_equal(mask, np.array(expected, dtype=np.uint8))


def test_onnx_export_has_dynamic_sizes_and_matches_pytorch(checkpoint, tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    export_main(["--ckpt_path", str(checkpoint), "--output", str(tmp_path / "model.onnx")])
    assert "wrote" in capsys.readouterr().out
    proto = onnx.load(tmp_path / "model.onnx")
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    assert json.loads(metadata["class_names"]) == ["background", "pet"]
    assert json.loads(metadata["training_size"]) == [32, 32]
    batch, _, height, width = proto.graph.input[0].type.tensor_type.shape.dim
    assert all(dim.dim_param and not dim.dim_value for dim in (batch, height, width))
    # A size the export's own check did not use.
    net = ProbabilityNet(SegmentationModule.load_from_checkpoint(checkpoint, map_location="cpu").net).eval()
    images = torch.randint(0, 256, (2, 3, 45, 31), dtype=torch.uint8)
    with torch.no_grad():
        expected = net(images).numpy()
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"image": images.numpy()})
    np.testing.assert_allclose(actual, expected, atol=PROBABILITY_TOLERANCE, rtol=0)


def test_export_without_a_checkpoint_is_a_clear_error(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    with pytest.raises(SystemExit, match="is not a file"):
        export_main(["--ckpt_path", str(tmp_path / "none.ckpt"), "--output", str(tmp_path / "m.onnx")])
