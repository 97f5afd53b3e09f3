"""Own data through the real entry points, as a user meets it: a folder of photos with binary masks (some
0/255, one saved as JPEG, one missing); check-data names the two bad files and fails; once they are
removed it passes, and fit, test and predict run on the folder (predicted masks at each image's size)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from own_data import write_own_folder
from PIL import Image

from unetskip.ablation.examples import comparison_figure, runs_to_compare
from unetskip.ablation.grid import grid_runs, variants_named
from unetskip.ablation.report import load_study, write_report
from unetskip.ablation.study import check_settings, run_args, run_folder
from unetskip.ablation.worker import train_and_test
from unetskip.cli.check_data import check_data_main
from unetskip.cli.lightning_cli import cli_main
from unetskip.deploy.export import main as export_main

REPO = Path(__file__).resolve().parents[1]


def folder_flags(root: Path) -> list[str]:
    """configs/unet.yaml + configs/folder.yaml shrunk to seconds on a CPU, on `root`."""
    return [
        "--config",
        str(REPO / "configs" / "unet.yaml"),
        "--config",
        str(REPO / "configs" / "folder.yaml"),
        "--data.root",
        str(root),
        "--data.image_size",
        "32",
        "--data.batch_size",
        "4",
        "--data.num_workers",
        "0",
        "--data.val_fraction",
        "0.25",
        "--data.test_fraction",
        "0.25",
        "--model.net.init_args.base_channels",
        "4",
        "--model.net.init_args.depth",
        "2",
    ]


def test_held_out_style_folder_through_check_fit_test_predict(tmp_path, capsys):
    root = write_own_folder(tmp_path / "own", count=16)
    mask = Image.open(root / "masks" / "photo_02.png")
    mask.convert("L").point(lambda v: 255 * (v > 0)).save(root / "masks" / "photo_02.jpg", quality=90)
    (root / "masks" / "photo_02.png").unlink()
    (root / "masks" / "batch2" / "photo_07.png").unlink()

    # The real command line: exit status and the files named.
    result = subprocess.run(
        [sys.executable, "-m", "unetskip", "check-data", *folder_flags(root)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if "ERROR" in line]
    assert any("mask stored as JPEG" in line and "masks/photo_02.jpg" in line for line in errors), errors
    assert any("image without mask" in line and "images/batch2/photo_07.jpg" in line for line in errors), (
        errors
    )
    assert len(errors) == 2
    assert "0/255 binary encoding in" in result.stdout
    assert not (tmp_path / "runs").exists() and not (tmp_path / "wandb").exists()  # nothing written

    (root / "masks" / "photo_02.jpg").unlink()
    (root / "images" / "photo_02.jpg").unlink()
    (root / "images" / "batch2" / "photo_07.jpg").unlink()
    assert check_data_main(folder_flags(root)) == 0
    assert capsys.readouterr().out.rstrip().endswith("0 errors: training can proceed")

    out = tmp_path / "runs"
    run = [
        *folder_flags(root),
        "--trainer.max_epochs",
        "1",
        "--trainer.limit_train_batches",
        "2",
        "--trainer.logger",
        "CSVLogger",
        "--trainer.logger.save_dir",
        str(out),
        "--trainer.default_root_dir",
        str(out),
        "--mask_overlays.num_images",
        "0",
    ]
    cli = cli_main(["fit", *run])
    checkpoint = cli.trainer.checkpoint_callback.best_model_path
    assert Path(checkpoint).is_file()
    assert cli.model.class_names == ["background", "foreground"]

    test = cli_main(["test", "--ckpt_path", checkpoint, "--data.root", str(root)])
    assert 0.0 <= float(test.trainer.callback_metrics["test/dice_macro"]) <= 1.0

    predictions = tmp_path / "masks_out"
    cli_main(
        ["predict", "--ckpt_path", checkpoint, "--input", str(root / "images"), "--output", str(predictions)]
    )
    images = sorted((root / "images").rglob("*.*"))
    assert len(images) == 14
    for image in images:
        relative = image.relative_to(root / "images").with_suffix(".png")
        written = np.asarray(Image.open(predictions / relative))
        assert written.shape == Image.open(image).size[::-1], relative
        assert set(np.unique(written).tolist()) <= {0, 1}


def test_check_data_of_the_oxford_module_says_what_it_checks(pet_root, capsys):
    status = check_data_main(["--data.root", str(pet_root), "--model.net", "unetskip.models.UNet"])
    assert status == 2
    assert "check-data checks a folder of your own images and masks" in capsys.readouterr().out


def test_class_weights_auto_through_the_cli_and_the_export(tmp_path):
    root = write_own_folder(tmp_path / "own", count=8)
    cli = cli_main(
        [
            "fit",
            *folder_flags(root),
            "--model.class_weights",
            "auto",
            "--trainer.max_steps",
            "1",
            "--trainer.limit_val_batches",
            "0",
            "--trainer.logger",
            "false",
            "--trainer.default_root_dir",
            str(tmp_path / "runs"),
        ]
    )
    weights = cli.model.criterion.class_weights
    assert weights[1] > weights[0] > 0 and torch.isfinite(weights).all()
    checkpoint = next((tmp_path / "runs").rglob("*.ckpt"))
    saved = torch.load(checkpoint, weights_only=True)
    assert torch.equal(saved["state_dict"]["criterion.class_weights"], weights)

    # The checkpoint alone rebuilds the model for the export, weights and class names included.
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    export_main(["--ckpt_path", str(checkpoint), "--output", str(tmp_path / "own.onnx")])
    metadata = {prop.key: prop.value for prop in onnx.load(tmp_path / "own.onnx").metadata_props}
    assert json.loads(metadata["class_names"]) == ["background", "foreground"]
    assert json.loads(metadata["training_size"]) == [32, 32]


def test_ablation_study_runs_on_a_folder_config(tmp_path):
    """`python -m unetskip.ablation run --config configs/unet.yaml --config configs/folder.yaml`: the grid's
    runs train and test on the folder, the report has its scores (no border band), the figure its images."""
    root = write_own_folder(tmp_path / "own", count=12)
    results_dir = tmp_path / "study"
    base = [str(REPO / "configs" / "unet.yaml"), str(REPO / "configs" / "folder.yaml")]
    flags = [*folder_flags(root)[4:], "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"]
    check_settings(results_dir, base, flags)
    for run in grid_runs(variants_named(["long+short", "short"]), 1):
        train_and_test(run_folder(results_dir, run), run.variant.name, "own", run_args(base, flags, run))
    write_report(results_dir)
    records, unfinished = load_study(results_dir)
    assert unfinished == [] and [r.variant for r in records] == ["long+short", "short"]
    for record in records:
        assert 0.0 <= record.row["test_dice_macro"] <= 1.0 and record.row["test_pet_iou_border_band"] is None
    figure = comparison_figure(runs_to_compare(results_dir, ("long+short", "short")), num_images=2)
    assert len(figure.axes) == 2 * 4 and figure.axes[0].get_title().startswith(("photo_", "batch2/photo_"))
