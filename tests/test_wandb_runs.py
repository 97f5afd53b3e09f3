"""W&B, offline: `fit --ckpt_path last` continues the same W&B run, whose config holds the seed, and a
W&B API key in the environment appears in no file the runs wrote and in none of their output."""

from __future__ import annotations

import pytest
import wandb
from test_cli import tiny_args

from unetskip.cli.lightning_cli import cli_main

# Shaped like a real key (40 characters), and found nowhere by chance.
FAKE_KEY = "0f1e2d3c4b5a69788796a5b4c3d2e1f0FAKEKEY9"
# Every folder W&B writes to, so that the test sees all of it.
WANDB_FOLDERS = ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR")


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    # With a key, the configs' logger would go online: WANDB_MODE wins, and the logger hands it to wandb.init
    # (wandb itself reads the variable only once per process, which an earlier test may have used up).
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for name in WANDB_FOLDERS:
        monkeypatch.setenv(name, str(tmp_path / "wandb_home" / name.lower()))
    yield
    wandb.teardown()  # stop W&B's service process: nothing is written after the test


def test_resumed_run_logs_to_the_same_wandb_run_and_no_file_holds_the_api_key(
    wandb_env, pet_root, tmp_path, capfd
):
    args = [
        "fit",
        *tiny_args(pet_root, tmp_path),
        "--trainer.logger.init_args.project",
        "unet",
    ]
    first = cli_main([*args, "--trainer.max_epochs", "1"])
    run_id = first.trainer.logger.version
    assert first.trainer.logger.experiment.config["seed_everything"] == 42
    wandb.finish()

    resumed = cli_main([*args, "--trainer.max_epochs", "2", "--ckpt_path", "last"])
    assert resumed.trainer.logger.version == run_id
    assert resumed.trainer.ckpt_path == str(tmp_path / "runs" / "unet" / run_id / "checkpoints" / "last.ckpt")
    assert resumed.trainer.current_epoch == 2
    wandb.finish()
    # One folder per process start, each logging to the same run (two starts in the same second make the
    # second folder's name end in -1, so the run id is read from the log file inside).
    offline_runs = list((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2
    assert all([log.name for log in run.glob("*.wandb")] == [f"run-{run_id}.wandb"] for run in offline_runs)

    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    names = {path.name for path in written}
    assert {"config.yaml", "last.ckpt", f"run-{run_id}.wandb", "debug.log"} <= names
    output = capfd.readouterr()
    for fragment in (FAKE_KEY, FAKE_KEY[8:32]):
        assert [path for path in written if fragment.encode() in path.read_bytes()] == []
        assert fragment not in output.out + output.err
