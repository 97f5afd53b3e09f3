"""`fit --ckpt_path`: find the checkpoint to resume from and make the loggers continue its run.

Lightning writes checkpoints to `<logger save_dir>/<logger name>/<run version>/checkpoints/`, and a new
process gets a new run version, so Lightning's own `ckpt_path="last"` would look in the new, empty run
folder and quietly start from scratch. Before the trainer is built, `resume_run` instead resolves `last`
to the newest `last.ckpt` of the same network among this logger's runs, and sets each logger's
`version` to the one the checkpoint recorded. WandbLogger (whose `version` is the W&B run id, opened
with `resume="allow"`) then logs to the same W&B run, offline too; CSVLogger and TensorBoardLogger to
the same run folder (Lightning's CSVLogger starts that folder's metrics.csv afresh).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.cli import instantiate_class
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from unetskip.runs.checkpoint_file import read_checkpoint
from unetskip.runs.checkpointing import METADATA_KEY, plain
from unetskip.runs.run_config import run_folder

LAST_NAME = "last.ckpt"


def logger_configs(logger: Any) -> list[Namespace]:
    """The `trainer.logger` setting as a list of `class_path`/`init_args` entries (empty for none)."""
    if logger in (None, False):
        return []
    entries = logger if isinstance(logger, list) else [logger]
    if not all(isinstance(entry, Namespace) and "class_path" in entry for entry in entries):
        raise SystemExit(
            "error: fit --ckpt_path needs trainer.logger to be false or a logger given by class_path "
            f"(e.g. lightning.pytorch.loggers.CSVLogger), got {logger!r}"
        )
    return entries


def runs_folder(entry: Namespace, default_root_dir: str) -> Path:
    """`<save_dir>/<name>`, the folder that holds one run folder per run of this logger."""
    init_args = entry.get("init_args")
    logger = instantiate_class((), {"class_path": entry.class_path, "init_args": dict(init_args or {})})
    return run_folder(logger, default_root_dir).parent


def last_checkpoints(runs: Path) -> list[Path]:
    """Every `<run>/checkpoints/last.ckpt` under `runs`, the most recently written first."""
    return sorted(runs.glob(f"*/checkpoints/{LAST_NAME}"), key=lambda path: -path.stat().st_mtime)


def same_network(ckpt_path: Path, net: Any) -> bool:
    """Whether the checkpoint's network settings (`hyper_parameters["net"]`) equal `net`."""
    checkpoint = read_checkpoint(ckpt_path, mmap=True)
    return plain((checkpoint.get("hyper_parameters") or {}).get("net")) == plain(net)


def recorded_loggers(ckpt_path: Path) -> list[dict[str, str]]:
    """The loggers (`class`, `version`) recorded in a checkpoint; for a checkpoint without the record,
    the run folder it lies in, for the first logger."""
    checkpoint = read_checkpoint(ckpt_path, mmap=True)
    metadata = checkpoint.get(METADATA_KEY)
    if metadata is not None:
        return metadata["loggers"]
    return [{"class": "", "version": ckpt_path.parent.parent.name}]


def resume_run(config: Namespace) -> None:
    """Resolve `config.ckpt_path` ("last" or a file) for `fit` and point the loggers at its run.

    With `last` and no checkpoint yet, warns and starts a new run (so a job script can always pass it).
    """
    if config.ckpt_path is None:
        return
    entries = logger_configs(config.trainer.logger)
    if not entries:
        return  # no logger: Lightning keeps last.ckpt in <default_root_dir>/checkpoints and finds it itself
    default_root_dir = config.trainer.default_root_dir or "."
    runs = runs_folder(entries[0], default_root_dir).resolve()
    if config.ckpt_path == "last":
        # Runs of other experiments that share the folder (one W&B project, say) are passed over.
        candidates = last_checkpoints(runs)
        last = next((path for path in candidates if same_network(path, config.model.net)), None)
        if last is None:
            others = f" ({len(candidates)} of other networks, newest {candidates[0]})" if candidates else ""
            rank_zero_warn(
                f"fit --ckpt_path last: no {runs}/*/checkpoints/{LAST_NAME} of this model.net{others}; "
                "starting a new run. To resume another one, pass its path as --ckpt_path."
            )
            config.ckpt_path = None
            return
        config.ckpt_path = str(last)
    ckpt_path = Path(config.ckpt_path).resolve()
    if not ckpt_path.is_file():
        return  # Lightning's "hpc" and "registry", or a missing file that Lightning reports
    if rank_zero_only.rank == 0:
        print(f"resuming from {ckpt_path}")
    if ckpt_path.parent.parent.parent != runs:
        rank_zero_warn(f"{ckpt_path} is not in a run folder of {runs}: resuming into a new run")
        return
    for entry, recorded in zip(entries, recorded_loggers(ckpt_path), strict=False):
        if recorded["class"] in ("", entry.class_path.rsplit(".", 1)[-1]):
            if entry.get("init_args") is None:
                entry.init_args = Namespace()
            entry.init_args.version = recorded["version"]
