"""The network's class count follows the data's classes: UNet's `num_classes` and smp's `classes` are set
from `data.class_names` (Oxford-IIIT Pet: from `data.mask_mode`) for every subcommand, and a config that
sets another value stops at parse time with one line naming both keys. The per-class table printed at the
end of fit and test is here too."""

from __future__ import annotations

import math

import numpy as np
import pytest
import segmentation_models_pytorch as smp
from conftest import REPO, tiny_flags
from own_data import write_own_folder
from PIL import Image

from unetskip.cli.console import class_table
from unetskip.cli.lightning_cli import cli_main
from unetskip.models import UNet
from unetskip.models.class_count import class_count_key, set_class_count

CONFIGS = REPO / "configs"
THREE_CLASSES = "[background, blob, rim]"


def quiet(tmp_path) -> list[str]:
    return [
        "--trainer.logger",
        "false",
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.fast_dev_run",
        "true",
    ]


@pytest.fixture(scope="module")
def three_class_folder(tmp_path_factory):
    """An own-data folder whose masks hold 0, 1 and 2 (a rim around each blob)."""
    root = write_own_folder(tmp_path_factory.mktemp("own") / "three", count=8, nested=False)
    for mask_path in (root / "masks").glob("*.png"):
        mask = (np.array(Image.open(mask_path)) > 0).astype(np.uint8)
        rim = np.zeros_like(mask)
        rim[1:-1, 1:-1] = mask[2:, 1:-1] ^ mask[1:-1, 1:-1]
        Image.fromarray(mask + rim * (1 - mask) * 2).save(mask_path)
    return root


def folder_args(root, config: str) -> list[str]:
    return [
        "--config", str(CONFIGS / config), "--config", str(CONFIGS / "folder.yaml"),
        "--data.root", str(root), "--data.class_names", THREE_CLASSES, "--data.binary_255", "false",
        "--data.image_size", "32", "--data.batch_size", "4", "--data.num_workers", "0",
        "--data.val_fraction", "0.25", "--data.test_fraction", "0.25",
    ]  # fmt: skip


def test_the_unet_gets_the_trimap_mode_three_classes(pet_root, tmp_path):
    args = [
        "fit",
        "--config",
        str(CONFIGS / "unet.yaml"),
        *tiny_flags(pet_root),
        "--data.mask_mode",
        "trimap",
    ]
    cli = cli_main([*args, *quiet(tmp_path)])
    assert cli.model.net.num_classes == 3
    assert cli.model.net.head.out_channels == 3
    assert cli.config.fit.model.net.init_args.num_classes == 3  # what the run's config.yaml records


@pytest.mark.parametrize(("config", "key"), [("unet.yaml", "num_classes"), ("smp_unet.yaml", "classes")])
def test_any_network_gets_the_folder_classes(three_class_folder, tmp_path, config, key):
    flags = ["--model.net.init_args.depth", "2"] if config == "unet.yaml" else []
    flags += [
        "--model.net.init_args.encoder_depth",
        "3",
        "--model.net.init_args.decoder_channels",
        "[16, 8, 4]",
    ] * (config == "smp_unet.yaml")
    cli = cli_main(["fit", *folder_args(three_class_folder, config), *flags, *quiet(tmp_path)])
    assert cli.config.fit.model.net.init_args[key] == 3
    logits = cli.model.net(cli.datamodule.datasets["val"][0]["image"][None])
    assert logits.shape[1] == 3


def test_a_conflicting_class_count_stops_at_parse_time_naming_both_keys(pet_root, tmp_path):
    args = [
        "fit",
        "--config",
        str(CONFIGS / "unet.yaml"),
        *tiny_flags(pet_root),
        "--model.net.init_args.num_classes",
        "5",
    ]
    with pytest.raises(SystemExit) as stop:
        cli_main([*args, *quiet(tmp_path)])
    message = str(stop.value.code)
    assert message.splitlines() == [message]
    assert "model.net.init_args.num_classes is 5" in message
    assert "data.class_names has 2 classes" in message
    assert not list(tmp_path.rglob("*.ckpt"))  # nothing ran


def test_the_same_count_given_explicitly_is_accepted(pet_root, tmp_path):
    args = [
        "fit",
        "--config",
        str(CONFIGS / "unet.yaml"),
        *tiny_flags(pet_root),
        "--model.net.init_args.num_classes",
        "2",
    ]
    assert cli_main([*args, *quiet(tmp_path)]).model.net.num_classes == 2


def test_check_data_links_the_count_too(three_class_folder, capsys):
    from unetskip.cli.check_data import check_data_main

    assert check_data_main(folder_args(three_class_folder, "unet.yaml")) == 0


@pytest.mark.parametrize(
    ("net_class", "given", "expected"),
    [
        (UNet, {}, {"num_classes": 4}),
        (UNet, {"num_classes": 2}, {"num_classes": 4}),  # the constructor's default: not a user's setting
        (UNet, {"num_classes": 4}, {"num_classes": 4}),
        (smp.Unet, {"classes": 1}, {"classes": 4}),
        (smp.FPN, {}, {"classes": 4}),
    ],
)
def test_set_class_count(net_class, given, expected):
    set_class_count(net_class, given, ["a", "b", "c", "d"])
    assert given == expected


def test_a_network_without_a_class_count_argument_is_left_alone():
    class Net:
        def __init__(self, width: int = 3) -> None:
            self.width = width

    args = {"width": 3}
    assert class_count_key(Net) is None
    set_class_count(Net, args, ["a", "b"])
    assert args == {"width": 3}


def test_the_class_table_lists_every_class_and_the_means():
    metrics = {"test/iou/sky": 0.9, "test/dice/sky": 0.95, "test/iou/pole": 0.1, "test/dice/pole": 0.18}
    metrics |= {"test/iou_macro": 0.5, "test/dice_macro": 0.565}
    lines = class_table(metrics, "test", ["sky", "pole", "bicyclist"]).splitlines()
    assert lines[0] == "test scores per class:"
    assert lines[2].split() == ["sky", "0.900", "0.950"]
    assert lines[3].split() == ["pole", "0.100", "0.180"]
    assert lines[4].split() == ["bicyclist", "nan", "nan"]
    assert lines[5].split()[-2:] == ["0.500", "0.565"]
    assert class_table({}, "val", ["sky"]) == ""


def test_fit_and_test_print_the_class_table(three_class_folder, tmp_path, capsys):
    args = [*folder_args(three_class_folder, "unet.yaml"), "--model.net.init_args.depth", "2"]
    cli_main(
        [
            "fit",
            *args,
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.max_epochs",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert "val scores per class:" in out
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()[out.splitlines().index("val scores per class:") + 2 :][:3]
    }
    assert set(rows) == {"background", "blob", "rim"}
    assert all(0.0 <= float(iou) <= 1.0 or math.isnan(float(iou)) for iou, _ in rows.values())
    (ckpt,) = tmp_path.rglob("last.ckpt")
    cli_main(
        [
            "test",
            "--ckpt_path",
            str(ckpt),
            "--data.root",
            str(three_class_folder),
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path),
        ]
    )
    assert "test scores per class:" in capsys.readouterr().out
