"""Crash and resume: a real `python -m unetskip fit` killed with SIGKILL mid-epoch, restarted with
`--ckpt_path last`, ends with the same metrics as an uninterrupted run; the same seed twice gives the
same metrics; the training loader resumes on the very batches it would have served."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from conftest import make_pet_folder, tiny_flags
from jsonargparse import Namespace, dict_to_namespace
from lightning.pytorch.demos.boring_classes import BoringModel

from unetskip.cli.lightning_cli import cli_main
from unetskip.data.resumable import EpochShuffleSampler, ResumableDataLoader
from unetskip.runs.checkpointing import AtomicCheckpointIO, LastCheckpoint
from unetskip.runs.resume import resume_run

REPO = Path(__file__).resolve().parents[1]
# 40 trainval images -> 36 train (4 val); batches of 2 -> 18 optimizer steps per epoch.
STEPS_PER_EPOCH = 18
EPOCHS = 2
SAVE_EVERY = 4
# Metrics that measure the machine, not the model.
TIMING_METRICS = ("train/img_per_sec",)
# Both runs do the same float operations in the same order on one CPU thread count; allow only
# rounding noise, in case a kernel picks another reduction order after the restart.
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def pets(tmp_path_factory) -> Path:
    return make_pet_folder(tmp_path_factory.mktemp("resume") / "oxford-iiit-pet", num_trainval=40, num_test=2)


def fit_args(pets: Path, out: Path) -> list[str]:
    """A 2-epoch run of the default experiment in seconds, keeping last.ckpt every 4 steps."""
    return [
        "fit",
        "--config",
        str(REPO / "configs" / "unet.yaml"),
        *tiny_flags(pets, batch_size=2),
        "--trainer.accelerator",
        "cpu",  # the claim is for CPU; GPU kernels may pick other reduction orders
        "--trainer.max_epochs",
        str(EPOCHS),
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.default_root_dir",
        str(out),
        # Pinned, whatever logger the config names: these tests read its run folder.
        "--trainer.logger.class_path",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.init_args.save_dir",
        str(out / "runs"),
        "--trainer.logger.init_args.name",
        "unet",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--last_checkpoint.every_n_train_steps",
        str(SAVE_EVERY),
    ]


def final_metrics(cli) -> dict[str, float]:
    metrics = cli.trainer.callback_metrics
    return {key: float(value) for key, value in metrics.items() if key not in TIMING_METRICS}


@pytest.fixture(scope="module")
def uninterrupted(pets, tmp_path_factory) -> dict[str, float]:
    """The reference run. Given `--ckpt_path last` with nothing to resume, it starts a new run."""
    out = tmp_path_factory.mktemp("uninterrupted")
    with pytest.warns(UserWarning, match="no .*last.ckpt of this model.net; starting a new run"):
        cli = cli_main([*fit_args(pets, out), "--ckpt_path", "last"])
    assert cli.trainer.global_step == EPOCHS * STEPS_PER_EPOCH
    return final_metrics(cli)


def kill_after_first_checkpoint(args: list[str], last: Path) -> subprocess.Popen:
    """Start `python -m unetskip fit` and SIGKILL it as soon as `last` exists."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(torch.get_num_threads()))
    process = subprocess.Popen(
        [sys.executable, "-m", "unetskip", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == -signal.SIGKILL, f"the run ended before it was killed:\n{stderr[-3000:]}"
    return process


def test_killed_run_resumes_to_the_same_metrics(pets, tmp_path, uninterrupted):
    args = fit_args(pets, tmp_path)
    run = tmp_path / "runs" / "unet" / "version_0"
    kill_after_first_checkpoint(args, run / "checkpoints" / "last.ckpt")

    saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    saved_step = saved["global_step"]
    assert saved_step % STEPS_PER_EPOCH != 0, "the kill must land mid-epoch"
    assert saved["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"seed": 42, "epoch": saved["epoch"], "batches": saved_step % STEPS_PER_EPOCH}
    ]

    resumed = cli_main([*args, "--ckpt_path", "last"])

    trainer = resumed.trainer
    assert trainer.ckpt_path == str(run / "checkpoints" / "last.ckpt")
    assert (trainer.global_step, trainer.current_epoch) == (EPOCHS * STEPS_PER_EPOCH, EPOCHS)
    # Optimizer and scheduler state came back: AdamW counted every step, the cosine every epoch.
    adam_steps = {int(state["step"]) for state in trainer.optimizers[0].state.values()}
    assert adam_steps == {EPOCHS * STEPS_PER_EPOCH}
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == EPOCHS
    # Checkpoints were written through a temporary file; none is left behind.
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    assert sorted(path.name for path in (run / "checkpoints").iterdir()) == [
        "epoch001-dice{:.4f}.ckpt".format(float(trainer.callback_metrics["val/dice_macro"])),
        "last.ckpt",
    ]
    # The same run folder, no second version, with every step from the restart on.
    assert sorted(path.name for path in run.parent.iterdir()) == ["version_0"]
    with (run / "metrics.csv").open(newline="") as rows:
        logged_steps = {int(row["step"]) for row in csv.DictReader(rows)}
    assert set(range(saved_step, EPOCHS * STEPS_PER_EPOCH)) <= logged_steps

    metrics = final_metrics(resumed)
    assert metrics.keys() == uninterrupted.keys()
    assert {"val/dice_macro", "val/iou_macro", "val/loss", "train/loss_epoch"} <= metrics.keys()
    for key, value in uninterrupted.items():
        print(f"{key}: resumed from step {saved_step} {metrics[key]!r}, uninterrupted {value!r}")
        assert metrics[key] == pytest.approx(value, abs=TOLERANCE, nan_ok=True), key


def test_same_seed_gives_the_same_metrics(pets, tmp_path, uninterrupted):
    again = cli_main(fit_args(pets, tmp_path))
    assert final_metrics(again) == uninterrupted
    config = yaml.safe_load((tmp_path / "runs" / "unet" / "version_0" / "config.yaml").read_text())
    hparams = yaml.safe_load((tmp_path / "runs" / "unet" / "version_0" / "hparams.yaml").read_text())
    assert config["seed_everything"] == hparams["seed"] == 42  # the seed reaches the logger's run config


def test_another_seed_gives_other_batches():
    first, other = EpochShuffleSampler(20, seed=1), EpochShuffleSampler(20, seed=2)
    assert list(first) != list(other)
    assert list(first) == list(EpochShuffleSampler(20, seed=1))
    first.set_epoch(1)
    assert sorted(index for index, _ in first) == list(range(20))
    assert list(first) != list(EpochShuffleSampler(20, seed=1))


class Numbers(torch.utils.data.Dataset):
    """`dataset[(index, seed)]` -> (index, seed): shows exactly what the loader serves."""

    def __len__(self) -> int:
        return 10

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        return torch.tensor(key)


def test_loader_resumes_on_the_batches_it_had_not_served():
    def loader() -> ResumableDataLoader:
        return ResumableDataLoader(Numbers(), EpochShuffleSampler(10, seed=7), batch_size=3, drop_last=True)

    reference = loader()
    reference.sampler.set_epoch(2)
    epoch = [batch.tolist() for batch in reference]
    assert len(epoch) == 3

    interrupted = loader()
    interrupted.sampler.set_epoch(2)
    iterator = iter(interrupted)
    served = [next(iterator).tolist()]
    state = interrupted.state_dict()
    assert state == {"seed": 7, "epoch": 2, "batches": 1}

    restarted = loader()  # a new process: epoch 0 until the state is loaded
    restarted.load_state_dict(state)
    assert served + [batch.tolist() for batch in restarted] == epoch
    assert restarted.state_dict()["batches"] == 3
    assert [batch.tolist() for batch in restarted] == epoch  # the next pass is whole again


def write_last(runs: Path, version: str, skip_connections: bool, mtime: float) -> Path:
    """A last.ckpt as the CLI records it: the network's settings and the logger's run version."""
    path = runs / version / "checkpoints" / "last.ckpt"
    path.parent.mkdir(parents=True)
    net = {"class_path": "unetskip.models.UNet", "init_args": {"skip_connections": skip_connections}}
    loggers = [{"class": "CSVLogger", "version": version}]
    torch.save({"hyper_parameters": {"net": net}, "unetskip": {"format": 1, "loggers": loggers}}, path)
    os.utime(path, (mtime, mtime))
    return path


def fit_config(tmp_path: Path, skip_connections: bool) -> Namespace:
    net = {"class_path": "unetskip.models.UNet", "init_args": {"skip_connections": skip_connections}}
    logger = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(tmp_path)}}
    trainer = {"default_root_dir": str(tmp_path), "logger": logger}
    return dict_to_namespace({"ckpt_path": "last", "model": {"net": net}, "trainer": trainer})


def test_last_is_the_newest_run_of_the_same_network_and_continues_it(tmp_path):
    runs = tmp_path / "lightning_logs"  # CSVLogger's default name
    older = write_last(runs, "version_0", skip_connections=True, mtime=1000)
    write_last(runs, "version_1", skip_connections=False, mtime=2000)  # newer, but another network

    config = fit_config(tmp_path, skip_connections=True)
    resume_run(config)
    assert config.ckpt_path == str(older)
    assert config.trainer.logger.init_args.version == "version_0"

    config = fit_config(tmp_path, skip_connections=True)
    config.model.net.init_args.residual = False
    with pytest.warns(UserWarning, match=r"\(2 of other networks, newest .*version_1.*starting a new run"):
        resume_run(config)
    assert config.ckpt_path is None and "version" not in config.trainer.logger.init_args


class RecordingCheckpointIO(AtomicCheckpointIO):
    """Records `(file name, global step)` of every checkpoint written, in `events`."""

    def __init__(self, events: list) -> None:
        super().__init__()
        self.events = events

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        self.events.append((Path(path).name, checkpoint["global_step"]))
        super().save_checkpoint(checkpoint, path, storage_options)


class RecordingValidation(L.Callback):
    def __init__(self, events: list) -> None:
        self.events = events

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.events.append(("validation", trainer.global_step))


@pytest.mark.parametrize(
    ("every_n_train_steps", "expected_steps"),
    # 2 epochs of 5 steps: every epoch's end after its validation, every N steps but the epoch's last.
    [(0, [5, 10]), (2, [2, 4, 5, 6, 8, 10]), (5, [5, 10])],
)
def test_last_checkpoint_every_epoch_after_validation_and_every_n_steps(
    every_n_train_steps, expected_steps, tmp_path
):
    events = []
    trainer = L.Trainer(
        max_epochs=2,
        limit_train_batches=5,
        limit_val_batches=1,
        callbacks=[LastCheckpoint(every_n_train_steps), RecordingValidation(events)],
        plugins=[RecordingCheckpointIO(events)],
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(BoringModel())
    saves = [step for name, step in events if name == "last.ckpt"]
    assert saves == expected_steps
    assert {name for name, _ in events} == {"last.ckpt", "validation"}
    for epoch_end in (5, 10):  # written after that epoch's validation
        assert events.index(("validation", epoch_end)) < events.index(("last.ckpt", epoch_end))
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["last.ckpt"]
    assert torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 10
