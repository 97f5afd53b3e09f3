"""Runs from before the subpackage move keep working: `fixtures/pre_move/` holds a checkpoint and the run's
saved config.yaml written by unetskip at commit cf21cd2 (the last flat layout: a 1-epoch fit of a U-Net of
base width 2 and depth 2 on 32 px synthetic pets, with EMAWeights). The checkpoint is tested, predicted and
exported; the old config stops with one line naming the moved class path and its new name. The one
checkpoint reader's errors are here too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from conftest import REPO

from unetskip.cli.lightning_cli import cli_main
from unetskip.deploy.export import export
from unetskip.deploy.trained_model import load_trained_model
from unetskip.runs.checkpoint_file import CheckpointReadError, read_checkpoint
from unetskip.runs.moved_paths import MOVED, moved_in, renamed

FIXTURE = REPO / "tests" / "fixtures" / "pre_move"
CHECKPOINT = FIXTURE / "last.ckpt"


def quiet(tmp_path: Path) -> list[str]:
    return ["--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path / "runs")]


def test_the_fixture_is_of_the_flat_layout():
    saved = CHECKPOINT.read_bytes()
    assert b"unetskip.segmentation_module" not in saved  # class paths are only in the hparams and config
    assert "unetskip.callbacks.TrainThroughput" in (FIXTURE / "config.yaml").read_text()
    assert torch.load(CHECKPOINT, weights_only=True)["unetskip"]["version"] == "0.1.0"


def test_an_old_checkpoint_is_tested(pet_root, tmp_path):
    args = ["test", "--ckpt_path", str(CHECKPOINT), "--data.root", str(pet_root), "--data.num_workers", "0"]
    cli = cli_main([*args, *quiet(tmp_path)])
    scores = cli.trainer.callback_metrics
    assert 0.0 <= float(scores["test/iou_macro"]) <= 1.0
    assert cli.model.net.stem[0].out_channels == 2  # base width 2: the network of the checkpoint


def test_an_old_checkpoint_predicts(pet_root, tmp_path):
    output = tmp_path / "masks"
    args = ["predict", "--ckpt_path", str(CHECKPOINT), "--input", str(pet_root / "images"), "--output"]
    cli_main([*args, str(output)])
    images = sorted(path.stem for path in (pet_root / "images").glob("*.jpg"))
    assert sorted(path.stem for path in output.glob("*.png")) == images


def test_an_old_checkpoint_exports_and_loads_for_the_demo(tmp_path):
    pytest.importorskip("onnxruntime")
    export(str(CHECKPOINT), str(tmp_path / "model.onnx"))
    assert (tmp_path / "model.onnx").stat().st_size > 0
    model = load_trained_model(CHECKPOINT)  # what the demo page loads
    assert model.class_names == ["background", "pet"]
    assert model.training_size == (32, 32)


def test_an_old_class_path_in_the_hparams_is_renamed(tmp_path):
    checkpoint = torch.load(CHECKPOINT, weights_only=True)
    checkpoint["hyper_parameters"]["inferer"] = {
        "class_path": "unetskip.inference.Inferer",
        "init_args": {"flip_tta": True},
    }
    path = tmp_path / "old_inferer.ckpt"
    torch.save(checkpoint, path)
    assert read_checkpoint(path)["hyper_parameters"]["inferer"]["class_path"] == "unetskip.predict.Inferer"
    assert load_trained_model(path).module.inferer.flip_tta


def test_an_old_config_stops_with_one_line_naming_the_new_path(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(["fit", "--config", str(FIXTURE / "config.yaml")])
    message = str(stop.value.code)
    assert message.splitlines() == [message]
    assert "unetskip.callbacks.TrainThroughput is now unetskip.training.TrainThroughput" in message
    assert str(FIXTURE / "config.yaml") in message
    assert "more moved path" in message  # guards, acceleration, averaging and checkpointing moved too


def test_an_old_class_path_as_a_flag_stops_too(pet_root, tmp_path):
    with pytest.raises(SystemExit) as stop:
        cli_main(["fit", "--trainer.callbacks+=unetskip.averaging.EMAWeights", *quiet(tmp_path)])
    assert str(stop.value.code) == (
        "error: a flag: unetskip.averaging.EMAWeights is now unetskip.training.EMAWeights; replace it"
    )


def test_every_new_name_imports():
    import importlib

    for new in MOVED.values():
        module, _, name = new.rpartition(".")
        assert hasattr(importlib.import_module(module), name), new


def test_renamed_and_moved_in_leave_other_paths_alone():
    value = {"a": ["unetskip.models.UNet", {"class_path": "unetskip.guards.StopOnNonFiniteLoss"}], "b": 3}
    new = {"class_path": "unetskip.training.StopOnNonFiniteLoss"}
    assert renamed(value) == {"a": ["unetskip.models.UNet", new], "b": 3}
    assert moved_in(["class_path: unetskip.models.UNet", "x unetskip.guards.StopOnNonFiniteLoss"]) == [
        "unetskip.guards.StopOnNonFiniteLoss"
    ]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda path: None, "it is not a file"),
        (lambda path: path.write_bytes(CHECKPOINT.read_bytes()[:5000]), "cannot be read: "),
        (lambda path: torch.save({"weights": torch.zeros(2)}, path), "holds no state_dict"),
        (lambda path: torch.save({"state_dict": {}, "obj": Path("x")}, path), "cannot be read: "),
        (lambda path: path.write_text("not a checkpoint"), "cannot be read: "),
    ],
    ids=["missing", "truncated", "foreign", "pickled object", "text"],
)
def test_one_error_for_every_unreadable_checkpoint(tmp_path, make, reason):
    path = tmp_path / "model.ckpt"
    make(path)
    with pytest.raises(CheckpointReadError) as error:
        read_checkpoint(path)
    message = str(error.value)
    assert message.startswith(f"checkpoint {path} cannot be read: ")
    assert reason in message
    assert "\n" not in message


def test_test_with_an_unreadable_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "half.ckpt"
    shutil.copy(CHECKPOINT, path)
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(SystemExit) as stop:
        cli_main(["test", "--ckpt_path", str(path), *quiet(tmp_path)])
    assert str(stop.value.code).startswith(f"error: --ckpt_path: checkpoint {path} cannot be read: ")
