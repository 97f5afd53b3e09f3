"""`data.keep_aspect`: the shorter side of every image resized to `data.image_size`, the longer one by its
aspect ratio, in evaluation, predict and the demo alike; batches of mixed sizes padded with ignore_index."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import REPO
from own_data import write_own_folder
from PIL import Image

from unetskip.cli.lightning_cli import cli_main
from unetskip.data.image_size import check_keep_aspect, resized_size
from unetskip.data.segmentation_datamodule import collate_padded
from unetskip.data.transforms import eval_transforms
from unetskip.deploy.trained_model import load_trained_model


@pytest.mark.parametrize(
    ("size", "image_size", "keep_aspect", "expected"),
    [
        ((360, 480), 144, True, (144, 192)),
        ((480, 360), 144, True, (192, 144)),
        ((37, 50), 20, True, (20, 27)),
        ((360, 480), 144, False, (144, 144)),
        ((360, 480), (100, 50), False, (100, 50)),
        ((1, 900), 8, True, (8, 7200)),
    ],
)
def test_resized_size(size, image_size, keep_aspect, expected):
    assert resized_size(size, image_size, keep_aspect) == expected


def test_keep_aspect_takes_one_int():
    with pytest.raises(ValueError, match=r"data.keep_aspect: true takes data.image_size as one int"):
        check_keep_aspect((32, 48), True)
    check_keep_aspect((32, 48), False)


def test_eval_transforms_keep_the_aspect_ratio_and_the_mask_values():
    image = np.random.default_rng(0).integers(0, 255, (36, 48, 3), dtype=np.uint8)
    mask = np.zeros((36, 48), np.uint8)
    mask[:, 24:] = 2
    out = eval_transforms(12, keep_aspect=True)(image=image, mask=mask)
    assert tuple(out["image"].shape) == (3, 12, 16)
    assert tuple(out["mask"].shape) == (12, 16)
    assert set(np.unique(out["mask"].numpy())) == {0, 2}  # nearest neighbour: no blended class
    assert tuple(eval_transforms(12)(image=image, mask=mask)["image"].shape) == (3, 12, 12)


def test_collate_padded_pads_masks_with_ignore_index():
    items = [
        {"image": torch.ones(3, 4, 6), "mask": torch.ones(4, 6, dtype=torch.long), "name": "a"},
        {"image": torch.ones(3, 6, 4), "mask": torch.ones(6, 4, dtype=torch.long), "name": "b"},
    ]
    batch = collate_padded(items, ignore_index=255)
    assert tuple(batch["image"].shape) == (2, 3, 6, 6)
    assert batch["name"] == ["a", "b"]
    assert (batch["mask"][0, 4:] == 255).all() and (batch["mask"][0, :4] == 1).all()
    assert (batch["mask"][1, :, 4:] == 255).all()
    assert (batch["image"][1, :, :, 4:] == 0).all()
    border = collate_padded(
        [{**item, "border": torch.ones_like(item["mask"], dtype=torch.bool)} for item in items], 255
    )
    assert border["border"].dtype == torch.bool and not border["border"][0, 4:].any()


def test_fit_test_and_predict_keep_the_aspect_ratio(tmp_path):
    root = write_own_folder(tmp_path / "own", count=12, nested=False)  # 40-49 x 48-56 px, mixed ratios
    args = [
        "--config", str(REPO / "configs" / "unet.yaml"), "--config", str(REPO / "configs" / "folder.yaml"),
        "--data.root", str(root), "--data.image_size", "24", "--data.keep_aspect", "true",
        "--data.batch_size", "4", "--data.num_workers", "0", "--data.val_fraction", "0.25",
        "--data.test_fraction", "0.25", "--model.net.init_args.base_channels", "4",
        "--model.net.init_args.depth", "2",
        "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    fit = cli_main(["fit", *args, "--trainer.max_epochs", "1"])
    val_batch = next(iter(fit.datamodule.val_dataloader()))
    val = fit.datamodule.datasets["val"]
    shapes = {tuple(val[i]["image"].shape[1:]) for i in range(len(val))}
    assert min(min(shape) for shape in shapes) == 24  # shorter side 24, the longer one by the image
    assert tuple(val_batch["image"].shape[2:]) == tuple(max(s[i] for s in shapes) for i in (0, 1))
    (ckpt,) = (tmp_path / "runs").rglob("last.ckpt")
    model = load_trained_model(ckpt)
    assert model.keep_aspect and model.network_size(360, 480) == (24, 32)
    output = tmp_path / "masks"
    cli_main(["predict", "--ckpt_path", str(ckpt), "--input", str(root / "images"), "--output", str(output)])
    for image_path in (root / "images").iterdir():
        mask = Image.open(output / f"{image_path.stem}.png")
        assert mask.size == Image.open(image_path).size  # written at the image's own size
    test = cli_main(["test", "--ckpt_path", str(ckpt), "--trainer.logger", "false"])
    assert 0.0 <= float(test.trainer.callback_metrics["test/iou_macro"]) <= 1.0
