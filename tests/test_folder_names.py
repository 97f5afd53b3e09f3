"""A dataset used where it lies: CamVid's `train/` + `trainannot/` and Cityscapes' `leftImg8bit/` + `gtFine/`
(suffixed stems, city folders, a test split without masks) are found, paired, checked and trained on
through the real CLI with `data.images_dir`, `data.masks_dir`, `data.*_suffix` and `data.split_names`;
bad values name their key."""

from __future__ import annotations

from pathlib import Path

import pytest
from own_data import write_camvid_folder, write_cityscapes_folder, write_own_folder
from test_own_data_cli import folder_flags

from unetskip.cli.check_data import check_data_main
from unetskip.cli.lightning_cli import cli_main
from unetskip.data.folder import FolderDataModule
from unetskip.data.folder_layout import FolderNames, find_layout

STREET = {"class_names": ["sky", "car", "road"], "ignore_index": 11}
CAMVID = {"images_dir": "{split}", "masks_dir": "{split}annot"}
CITYSCAPES = {
    "images_dir": "leftImg8bit/{split}",
    "masks_dir": "gtFine/{split}",
    "image_suffix": "_leftImg8bit",
    "mask_suffix": "_gtFine_labelIds",
}


def test_camvid_folders_pair_images_and_masks_of_the_same_name(tmp_path):
    root = write_camvid_folder(tmp_path / "camvid")
    layout = find_layout(root, names=FolderNames(**CAMVID))
    assert {split: len(samples) for split, samples in layout.splits.items()} == {
        "train": 6,
        "val": 3,
        "test": 2,
    }
    for split, samples in layout.splits.items():
        for sample in samples:
            assert sample.image == root / split / f"{sample.stem}.png"
            assert sample.mask == root / f"{split}annot" / f"{sample.stem}.png"
    report = FolderDataModule(root=str(root), **STREET, **CAMVID, check_workers=0).check()
    text = report.format()
    assert "layout: split folders (train, val, test): images in {split}/, masks in {split}annot/" in text
    assert report.all_errors() == [], text
    assert report.split("train").pairs == 6 and report.split("train").ignored_pixels == 6 * 36


def test_cityscapes_suffixes_are_stripped_and_other_files_ignored(tmp_path):
    root = write_cityscapes_folder(tmp_path / "cityscapes")
    layout = find_layout(root, names=FolderNames(**CITYSCAPES))
    train = layout.splits["train"]
    assert [sample.stem for sample in train[:2]] == [
        "aachen/aachen_000000_000019",
        "aachen/aachen_000002_000019",
    ]
    assert all(
        sample.mask.name.endswith("_gtFine_labelIds.png") for sample in train
    )  # not _color, _instanceIds
    assert all(sample.image.name.endswith("_leftImg8bit.png") for sample in train)
    assert len(train) == 6 and len(layout.splits["val"]) == 3

    # Cityscapes' test split has no masks: an error naming the expected file, unless it is left out.
    text = FolderDataModule(root=str(root), **STREET, **CITYSCAPES, check_workers=0).check().format()
    assert (
        "ERROR image without mask: leftImg8bit/test/aachen/aachen_000000_000019_leftImg8bit.png "
        "(no mask gtFine/test/aachen/aachen_000000_000019_gtFine_labelIds.png)" in text
    ), text
    module = FolderDataModule(
        root=str(root), **STREET, **CITYSCAPES, split_names={"train": "train", "val": "val"}, check_workers=0
    )
    report = module.check()
    assert [split.name for split in report.splits] == ["train", "val"] and report.all_errors() == []
    assert (
        "layout: split folders (train, val): images in leftImg8bit/{split}/ (stems end with '_leftImg8bit'), "
        "masks in gtFine/{split}/ (stems end with '_gtFine_labelIds')"
    ) in report.format()


def test_split_names_rename_split_folders_and_lists(tmp_path):
    root = tmp_path / "renamed"
    for folder, count in (("training", 6), ("validation", 2)):
        write_own_folder(root / folder, count=count, nested=False)
    layout = find_layout(root, names=FolderNames(split_names={"train": "training", "val": "validation"}))
    assert [len(layout.splits[s]) for s in ("train", "val")] == [6, 2] and "test" not in layout.splits
    assert layout.splits["val"][0].mask.parent == root / "validation" / "masks"

    lists = write_own_folder(tmp_path / "lists", count=6, nested=False)
    (lists / "splits").mkdir()
    (lists / "splits" / "trn.txt").write_text("photo_00\nphoto_01\nphoto_02\n")
    (lists / "splits" / "dev.txt").write_text("photo_03\n")
    names = FolderNames(split_names={"train": "trn", "val": "dev"})
    layout = find_layout(lists, names=names)
    assert [s.stem for s in layout.splits["val"]] == ["photo_03"] and len(layout.unused) == 2
    assert layout.description.startswith("split lists (splits/trn.txt, splits/dev.txt)")


def test_the_default_names_keep_the_three_layouts(tmp_path):
    root = write_own_folder(tmp_path / "own", count=8, nested=False)
    assert find_layout(root).splits == find_layout(root, names=FolderNames()).splits
    assert find_layout(root).description == (
        "random split (val_fraction 0.1, test_fraction 0.0, split_seed 42): "
        "images in images/, masks in masks/"
    )


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"images_dir": "/data/images"}, "data.images_dir"),
        ({"images_dir": "../images"}, "data.images_dir"),
        ({"images_dir": ""}, "data.images_dir"),
        ({"masks_dir": "{name}annot"}, "data.masks_dir"),
        ({"images_dir": "{split"}, "data.images_dir"),
        ({"images_dir": "{split}"}, "data.masks_dir"),  # {split} in one of the two folders only
        ({"masks_dir": "images"}, "data.masks_dir"),
        ({"mask_suffix": "_gtFine_labelIds.png"}, "data.mask_suffix"),
        ({"image_suffix": "a/b"}, "data.image_suffix"),
        ({"split_names": {"val": "val"}}, "data.split_names"),
        ({"split_names": {"train": "train", "dev": "dev"}}, "data.split_names"),
        ({"split_names": {"train": "a", "val": "a"}}, "data.split_names"),
        ({"check_workers": -1}, "data.check_workers"),
    ],
)
def test_bad_folder_options_name_the_key_in_one_line(options, key):
    with pytest.raises(ValueError, match=key) as error:
        FolderDataModule(**options)
    assert "\n" not in str(error.value)


def test_a_bad_option_through_the_cli_names_the_key(tmp_path):
    """jsonargparse lists the constructor's one-line error among the ways the value did not fit."""
    with pytest.raises(ValueError, match="Does not validate") as error:
        check_data_main([*folder_flags(tmp_path), "--data.images_dir", "/abs/images"])
    expected = "data.images_dir='/abs/images' must be a folder below data.root (relative, without ..)"
    assert f"- {expected}" in [line.strip() for line in str(error.value).splitlines()]


def street_flags(root: Path, options: dict[str, str]) -> list[str]:
    flags = [*folder_flags(root), "--data.class_names", "[sky, car, road]", "--data.ignore_index", "11"]
    flags += ["--model.net.init_args.num_classes", "3"]
    for key, value in options.items():
        flags += [f"--data.{key}", value]
    return flags


@pytest.mark.parametrize(
    ("write", "options"),
    [
        (write_camvid_folder, CAMVID),
        (write_cityscapes_folder, {**CITYSCAPES, "split_names": "{train: train, val: val}"}),
    ],
    ids=["camvid", "cityscapes"],
)
def test_check_data_and_fit_through_the_cli(tmp_path, capsys, write, options):
    root = write(tmp_path / "data")
    assert check_data_main(street_flags(root, options)) == 0
    assert "0 errors: training can proceed" in capsys.readouterr().out
    cli = cli_main(
        [
            "fit",
            *street_flags(root, options),
            "--trainer.max_steps",
            "2",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
        ]
    )
    assert cli.trainer.global_step == 2
    assert [len(cli.datamodule.datasets[s]) for s in ("train", "val")] == [6, 3]
    assert cli.model.class_names == ["sky", "car", "road"]
