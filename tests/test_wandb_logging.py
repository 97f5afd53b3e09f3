"""W&B logging through the real CLI, offline: the offline run folder is read back and checked.

conftest.py's `offline_wandb` removes any API key and WANDB_MODE, so the logger takes its no-key path.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch
import wandb
import yaml
from PIL import Image
from test_cli import tiny_args
from wandb_offline import OfflineRun, offline_run_folders, read_records

from unetskip.cli.lightning_cli import cli_main
from unetskip.data.normalization import denormalize
from unetskip.runs.wandb_logger import api_key_configured, wandb_mode
from unetskip.training.mask_overlays import ValidationMaskOverlays

REPO = Path(__file__).resolve().parents[1]
NUM_IMAGES = 5
EPOCHS = 2


def wandb_args(pet_root: Path, tmp_path: Path) -> list[str]:
    """The default experiment shrunk to seconds: 6 val images in 2 batches, 1 training step per epoch."""
    return [
        *tiny_args(pet_root, tmp_path),
        "--data.val_fraction",
        "0.5",
        "--trainer.max_epochs",
        str(EPOCHS),
        "--trainer.log_every_n_steps",
        "1",
        "--gradient_norms.every_n_steps",
        "1",
        "--mask_overlays.num_images",
        str(NUM_IMAGES),
    ]


def run_cli(args: list[str]) -> tuple[object, list[str]]:
    """cli_main(args) and the lines it printed to stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        cli = cli_main(args)
    return cli, (out.getvalue() + err.getvalue()).splitlines()


@pytest.fixture(scope="module")
def offline_fit(pet_root, tmp_path_factory):
    """Two epochs of the default config with no API key: (cli, printed lines, offline run, tmp dir)."""
    tmp_path = tmp_path_factory.mktemp("wandb_fit")
    repo_had_wandb = (REPO / "wandb").exists()
    cli, lines = run_cli(["fit", *wandb_args(pet_root, tmp_path)])
    assert (REPO / "wandb").exists() == repo_had_wandb
    folders = offline_run_folders(tmp_path / "runs")
    assert len(folders) == 1
    run = OfflineRun.read(folders[0])
    assert run.finished
    return cli, lines, run, tmp_path


def test_no_key_goes_offline_and_prints_one_line(offline_fit):
    cli, lines, run, _ = offline_fit
    assert cli.trainer.state.finished
    wandb_lines = [line for line in lines if line.startswith("wandb")]
    assert wandb_lines == [
        f"wandb: this run is offline, in {run.folder}; upload it with: wandb sync {run.folder}"
    ]


def test_run_name_project_and_full_config_once(offline_fit):
    _, _, run, _ = offline_fit
    assert run.project == "unetskip"
    assert run.name == "unet-skip-residual-seed42"
    net = run.config["model"]["net"]["init_args"]
    assert net["skip_connections"] is True and net["residual"] is True and net["depth"] == 2
    assert run.config["trainer"]["max_epochs"] == EPOCHS
    assert run.config["data"]["init_args"]["image_size"] == 32
    # Lightning's own hyperparameters (net, loss, root, ...) are not logged a second time at the top.
    assert {"seed_everything", "trainer", "model", "data"} <= set(run.config)
    assert not {"net", "loss", "class_names", "root", "image_size"} & set(run.config)


def test_epoch_metrics_and_gradient_norms_are_logged(offline_fit):
    _, _, run, _ = offline_fit
    keys = run.metric_keys()
    for stage in ("train", "val"):
        for name in ("dice/pet", "dice/background", "iou/pet", "iou/background", "dice_macro", "iou_macro"):
            assert f"{stage}/{name}" in keys
        assert f"{stage}/pet_iou_pooled" in keys and f"{stage}/pet_iou_per_image" in keys
    assert {"train/loss_epoch", "val/loss", "train/lr"} <= keys
    assert len(run.values("val/dice_macro")) == EPOCHS
    norms = {f"grad_norm/encoder_{i}" for i in range(3)} | {f"grad_norm/decoder_{i}" for i in range(2)}
    assert {key for key in keys if key.startswith("grad_norm/")} == norms
    assert all(value > 0 for key in norms for value in run.values(key))
    assert len(run.values("grad_norm/encoder_0")) == EPOCHS  # one optimizer step per epoch, every step


def read_png(folder: Path, relative: str) -> np.ndarray:
    return np.asarray(Image.open(folder / "files" / relative))


def test_fixed_validation_images_with_true_and_predicted_masks(offline_fit):
    cli, _, run, _ = offline_fit
    logged = run.values("val/masks")
    assert len(logged) == EPOCHS  # every validation epoch, not the sanity check
    val = cli.datamodule.datasets["val"]
    samples = [val[k] for k in range(NUM_IMAGES)]
    images = torch.stack([sample["image"] for sample in samples])
    with torch.no_grad():
        predictions = cli.model.eval()(images).argmax(dim=1).numpy()  # the last epoch's model
    for epoch in logged:
        assert epoch["count"] == NUM_IMAGES
        assert epoch["captions"] == [sample["name"] for sample in samples]  # the same images every epoch
    last = logged[-1]
    for k, sample in enumerate(samples):
        # Real colours (denormalised), the true mask and the prediction of the logged model.
        np.testing.assert_array_equal(
            read_png(run.folder, last["filenames"][k]), denormalize(images[k : k + 1])[0]
        )
        masks = last["all_masks"][k]
        np.testing.assert_array_equal(
            read_png(run.folder, masks["ground_truth"]["path"]), sample["mask"].numpy()
        )
        np.testing.assert_array_equal(read_png(run.folder, masks["prediction"]["path"]), predictions[k])


def test_config_yaml_sits_in_the_run_folder_and_no_artifact_by_default(offline_fit):
    _, _, run, tmp_path = offline_fit
    config = yaml.safe_load((tmp_path / "runs" / "unetskip" / run.run_id / "config.yaml").read_text())
    assert config["trainer"]["logger"]["init_args"]["name"] == "unet-skip-residual-seed42"
    assert (tmp_path / "runs" / "unetskip" / run.run_id / "checkpoints" / "last.ckpt").is_file()
    assert run.artifacts == []


def test_test_metrics_land_in_the_summary_of_their_own_run(offline_fit, tmp_path):
    _, _, train_run, fit_dir = offline_fit
    ckpt = fit_dir / "runs" / "unetskip" / train_run.run_id / "checkpoints" / "last.ckpt"
    args = [
        "test",
        "--ckpt_path",
        str(ckpt),
        "--trainer.logger",
        "unetskip.runs.AutoOfflineWandbLogger",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
        "--trainer.enable_progress_bar",
        "false",
    ]
    run_cli(args)
    (folder,) = offline_run_folders(tmp_path)
    run = OfflineRun.read(folder)
    assert run.name.startswith("unet-skip-residual-") and run.name.endswith("-test")
    for key in ("test/dice_macro", "test/iou_macro", "test/iou/pet", "test/pet_iou_pooled", "test/loss"):
        assert isinstance(run.summary[key], float), key
    assert (tmp_path / "unetskip" / run.run_id / "config.yaml").is_file()


def test_checkpoint_artifact_is_opt_in(pet_root, tmp_path):
    run_cli(["fit", *wandb_args(pet_root, tmp_path), "--trainer.logger.init_args.log_model", "true"])
    run = OfflineRun.read(offline_run_folders(tmp_path / "runs")[0])
    # The best checkpoint and last.ckpt, as versions of one `model` artifact.
    assert [(artifact.type, artifact.name) for artifact in run.artifacts] == [
        ("model", f"model-{run.run_id}")
    ] * 2
    assert sorted(alias for artifact in run.artifacts for alias in artifact.aliases) == [
        "best",
        "latest",
        "latest",
    ]


def test_wandb_mode_disabled_writes_no_wandb_files(pet_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cli, lines = run_cli(["fit", *wandb_args(pet_root, tmp_path)])
    assert cli.trainer.state.finished
    assert not (tmp_path / "runs" / "wandb").exists()
    assert not any("wandb sync" in line for line in lines)
    assert len(list((tmp_path / "runs").rglob("last.ckpt"))) == 1


def test_wandb_mode_offline_is_honoured(pet_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)  # would go online without WANDB_MODE
    run_cli(["fit", *wandb_args(pet_root, tmp_path), "--trainer.max_epochs", "1"])
    (folder,) = offline_run_folders(tmp_path / "runs")
    assert "val/dice_macro" in OfflineRun.read(folder).metric_keys()


def test_csv_logger_by_one_flag_gets_gradient_norms_and_no_wandb(pet_root, tmp_path):
    cli, _ = run_cli(
        [
            "fit",
            *wandb_args(pet_root, tmp_path),
            "--trainer.logger",
            "CSVLogger",
            "--model.net.residual",
            "false",
        ]
    )
    assert wandb.run is None
    assert not (tmp_path / "runs" / "wandb").exists()
    (metrics,) = (tmp_path / "runs" / "unet-skip-plain-seed42").rglob("metrics.csv")
    header = metrics.read_text().splitlines()[0].split(",")
    assert {"grad_norm/encoder_0", "grad_norm/decoder_1", "val/dice_macro"} <= set(header)
    assert (metrics.parent / "config.yaml").is_file()
    assert "grad_norm/encoder_0" in cli.trainer.callback_metrics


def test_reader_joins_records_that_span_blocks(tmp_path):
    big = "x" * 100_000  # three 32 KiB blocks
    run = wandb.init(project="reader", dir=tmp_path, mode="offline", config={"big": big, "small": 1})
    run.log({"loss": 0.5})
    run.log({"loss": 0.25})
    run.finish()
    read = OfflineRun.read(offline_run_folders(tmp_path)[0])
    assert read.config == {"big": big, "small": 1}
    assert read.values("loss") == [0.5, 0.25]
    assert read.summary["loss"] == 0.25


def test_reader_rejects_a_file_that_is_not_a_wandb_log(tmp_path):
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"not a wandb file at all")
    with pytest.raises(ValueError, match="not a .wandb file"):
        list(read_records(path))


KEY = "k" * 40


@pytest.mark.parametrize(
    ("env", "netrc_text", "has_key", "mode"),
    [
        ({}, None, False, "offline"),
        ({"WANDB_API_KEY": KEY}, None, True, None),
        ({}, f"machine api.wandb.ai login user password {KEY}", True, None),
        ({}, f"machine example.com login user password {KEY}", False, "offline"),
        (
            {"WANDB_BASE_URL": "https://wandb.example.com"},
            f"machine wandb.example.com login u password {KEY}",
            True,
            None,
        ),
        ({"WANDB_API_KEY": KEY, "WANDB_MODE": "disabled"}, None, True, "disabled"),
        ({"WANDB_MODE": "online"}, None, False, "online"),
    ],
)
def test_mode_follows_the_key_and_wandb_mode(env, netrc_text, has_key, mode, tmp_path, monkeypatch):
    if netrc_text is not None:
        (tmp_path / "netrc").write_text(netrc_text + "\n")
        monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert api_key_configured() is has_key
    assert wandb_mode(offline=False) == mode


def test_offline_can_be_forced_with_a_key(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    assert wandb_mode(offline=True) == "offline"


@pytest.mark.parametrize("num_images", [-1, 2.0])
def test_mask_overlays_refuse_a_bad_count(num_images):
    with pytest.raises(ValueError, match="num_images must be an int >= 0"):
        ValidationMaskOverlays(num_images)
