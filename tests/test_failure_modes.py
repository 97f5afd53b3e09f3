"""Failure modes end with a clear message and lose nothing: a NaN loss, a full disk while saving, a
checkpoint of another architecture or format, an untrusted checkpoint, a GPU that is not there."""

from __future__ import annotations

import errno
import os
import pickle
import re
import resource
import stat
from pathlib import Path

import lightning as L
import pytest
import torch
from test_cli import CONFIGS, tiny_args

from unetskip.cli.lightning_cli import cli_main
from unetskip.runs.checkpointing import AtomicCheckpointIO, IncompatibleCheckpointError
from unetskip.training.guards import NonFiniteLossError

NAN_STEP = 3
SAVE_EVERY = 2


class NanInputAtStep(L.Callback):
    """Test fault: a NaN pixel in the batch of optimizer step `step`, as a corrupt input would give."""

    def __init__(self, step: int = 0) -> None:
        self.step = step

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: dict, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step:
            batch["image"][0, 0, 0, 0] = float("nan")


def fit_args(pet_root: Path, tmp_path: Path) -> list[str]:
    """One epoch of 5 steps (11 training images, batches of 2), last.ckpt every 2 steps, logged to
    `runs/unet/version_<n>` whatever logger the config names."""
    return [
        "fit",
        *tiny_args(pet_root, tmp_path),
        "--trainer.logger.class_path",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.init_args.name",
        "unet",
        "--data.batch_size",
        "2",
        "--trainer.max_epochs",
        "1",
        "--last_checkpoint.every_n_train_steps",
        str(SAVE_EVERY),
    ]


@pytest.fixture(scope="module")
def stopped_by_nan(pet_root, tmp_path_factory) -> tuple[str, Path]:
    """A run whose loss turns NaN at step 3: (error message, its checkpoint folder)."""
    tmp_path = tmp_path_factory.mktemp("nan")
    fault = f'{{"class_path": "{__name__}.NanInputAtStep", "init_args": {{"step": {NAN_STEP}}}}}'
    with pytest.raises(NonFiniteLossError) as error:
        cli_main([*fit_args(pet_root, tmp_path), f"--trainer.callbacks+={fault}"])
    (checkpoints,) = (tmp_path / "runs").glob("unet/version_*/checkpoints")
    return str(error.value), checkpoints


def test_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(stopped_by_nan):
    message, checkpoints = stopped_by_nan
    last = checkpoints / "last.ckpt"
    assert f"loss is nan at global step {NAN_STEP} (epoch 0, batch {NAN_STEP})" in message
    assert f"the last good checkpoint is {last}" in message
    assert sorted(path.name for path in checkpoints.iterdir()) == ["last.ckpt"]  # nothing after the NaN
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == NAN_STEP - NAN_STEP % SAVE_EVERY
    assert all(torch.isfinite(weight).all() for weight in saved["state_dict"].values())


def nan_checkpoint(stopped_by_nan) -> str:
    return str(stopped_by_nan[1] / "last.ckpt")


def test_evaluating_with_another_architecture_names_the_difference(stopped_by_nan, tmp_path):
    args = ["validate", "--ckpt_path", nan_checkpoint(stopped_by_nan), "--trainer.logger", "false"]
    args += ["--trainer.default_root_dir", str(tmp_path), "--model.net.skip_connections", "false"]
    with pytest.raises(IncompatibleCheckpointError) as error:
        cli_main(args)
    message = str(error.value)
    assert "net.init_args.skip_connections: checkpoint True, model False" in message
    assert re.search(r"\d+ weights of another shape \(checkpoint vs model\): net\.decoder", message)


def test_resuming_fit_with_another_architecture_names_the_difference(stopped_by_nan, pet_root, tmp_path):
    args = [*fit_args(pet_root, tmp_path), "--model.net.depth", "3"]
    with pytest.raises(IncompatibleCheckpointError) as error:
        cli_main([*args, "--ckpt_path", nan_checkpoint(stopped_by_nan)])
    message = str(error.value)
    assert "net.init_args.depth: checkpoint 2, model 3" in message
    assert "weights missing from the checkpoint" in message


def test_checkpoint_of_another_format_names_both_versions(stopped_by_nan, tmp_path):
    checkpoint = torch.load(nan_checkpoint(stopped_by_nan), weights_only=True)
    assert checkpoint["unetskip"]["format"] == 1
    checkpoint["unetskip"] |= {"version": "9.0.0", "format": 99}
    torch.save(checkpoint, tmp_path / "future.ckpt")
    args = ["test", "--ckpt_path", str(tmp_path / "future.ckpt"), "--trainer.logger", "false"]
    with pytest.raises(IncompatibleCheckpointError, match=r"unetskip 9\.0\.0 in checkpoint format 99;"):
        cli_main([*args, "--trainer.default_root_dir", str(tmp_path)])


def test_checkpoint_that_holds_code_is_refused_by_default(stopped_by_nan, pet_root, tmp_path):
    checkpoint = torch.load(nan_checkpoint(stopped_by_nan), weights_only=True)
    checkpoint["callbacks"]["extra"] = {"made_by": torch.nn.Identity()}  # any pickled object
    torch.save(checkpoint, tmp_path / "tampered.ckpt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed") as error:
        cli_main([*fit_args(pet_root, tmp_path), "--ckpt_path", str(tmp_path / "tampered.ckpt")])
    assert "torch.nn.modules.linear.Identity" in str(error.value)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_checkpoints_get_the_permissions_of_a_plain_file(tmp_path, umask):
    previous = os.umask(umask)
    try:
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, tmp_path / "a.ckpt")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.ckpt").stat().st_mode) == 0o666 & ~umask


def test_a_full_disk_while_saving_leaves_the_previous_checkpoint(tmp_path):
    checkpoint_io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    checkpoint_io.save_checkpoint({"global_step": 1, "state_dict": {"w": torch.zeros(10)}}, path)
    previous = path.read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # The file size limit makes the write fail part way, as a full disk would (EFBIG for ENOSPC).
    resource.setrlimit(resource.RLIMIT_FSIZE, (4 * len(previous), hard))
    try:
        with pytest.raises(OSError, match="could not write checkpoint .*last.ckpt") as error:
            checkpoint_io.save_checkpoint({"global_step": 2, "state_dict": {"w": torch.zeros(10**5)}}, path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert error.value.errno == errno.EFBIG
    assert path.read_bytes() == previous
    assert [child.name for child in tmp_path.iterdir()] == ["last.ckpt"]  # the partial file is gone


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_asking_for_a_missing_gpu_says_so(accelerator, tmp_path):
    args = ["fit", "--config", str(CONFIGS / "unet.yaml"), "--trainer.accelerator", accelerator]
    with pytest.raises(SystemExit) as exit_info:
        cli_main([*args, "--trainer.default_root_dir", str(tmp_path)])
    message = str(exit_info.value.code)
    assert f"trainer.accelerator='{accelerator}' asks for a CUDA GPU, but this machine has none" in message
    assert "--trainer.accelerator cpu" in message
