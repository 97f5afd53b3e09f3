"""Checkpoints that survive crashes and say when they do not fit: atomic writes, `last.ckpt`, versions.

- `AtomicCheckpointIO` writes every checkpoint to a temporary file in the target folder and renames it
  over the old one, so a crash or a full disk mid-write leaves the previous checkpoint intact.
- `LastCheckpoint` keeps `last.ckpt` after every epoch and, when asked, every N optimizer steps.
- `checkpoint_metadata` records the unetskip version, the checkpoint format and the loggers' run
  versions; `check_compatible` compares a checkpoint with a model and names what differs.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from weakref import proxy

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger

from unetskip import __version__
from unetskip.runs.run_config import run_folder

# Bump when a checkpoint written by this code would mean something else to the next version
# (renamed weights, other normalisation, other class order). Checkpoints without the record are format 1.
CHECKPOINT_FORMAT = 1
METADATA_KEY = "unetskip"
# Hyperparameters that decide the shapes of the weights.
ARCHITECTURE_HPARAMS = ("net", "class_names")
# How many names of missing, unexpected or reshaped weights an error lists.
MAX_LISTED = 5


class IncompatibleCheckpointError(ValueError):
    """A checkpoint that this model cannot load: another architecture or checkpoint format."""


def current_umask() -> int:
    """The process's file-creation mask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` to a temporary file beside the target, fsync, then rename over the target.

    Lightning's own writer stages local files in the system temp folder and then moves them: across
    file systems that move is a copy into the target, which a full disk truncates. Remote paths
    (`s3://...`) keep Lightning's writer.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"AtomicCheckpointIO: storage_options are for remote paths: {storage_options}")
        path = Path(path)
        # Serialised in memory first (as Lightning does), so that a failing disk raises a plain OSError
        # rather than torch's zip-writer errors.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(handle, 0o666 & ~current_umask())  # as open() would create it, not mkstemp's 0600
            with os.fdopen(handle, "wb") as file:
                file.write(buffer.getbuffer())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp_name, path)
        except BaseException as error:
            Path(temp_name).unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise OSError(
                    error.errno,
                    f"could not write checkpoint {path} ({error.strerror}); the previous {path.name}, if "
                    "any, is unchanged",
                ) from error
            raise


class LastCheckpoint(ModelCheckpoint):
    """Keeps `last.ckpt` in the run's checkpoint folder: after every epoch (after its validation), and
    every `every_n_train_steps` optimizer steps when that is > 0 (to resume mid-epoch after a crash).

    It is what `fit --ckpt_path last` resumes from. Best-model checkpoints are a separate
    `ModelCheckpoint` with a monitor.

    Lightning 2.6's `ModelCheckpoint(save_top_k=0, save_last=True)` does not write `last.ckpt` at epoch
    ends (it refreshes it there only in a step where it wrote a top-k checkpoint, and with `save_top_k=0`
    it writes none) and would write the `every_n_train_steps` one of an epoch's last batch before that
    epoch's validation, so this callback writes `last.ckpt` itself with the public
    `Trainer.save_checkpoint`. ModelCheckpoint still gives it the folder (`dirpath`, resolved in `setup`),
    its state in checkpoints, `last_model_path`, the lookup of `ckpt_path="last"` and the loggers'
    `after_save_checkpoint` (W&B's `log_model`).
    """

    def __init__(self, every_n_train_steps: int = 0) -> None:
        if every_n_train_steps < 0:
            raise ValueError(f"last_checkpoint.every_n_train_steps must be >= 0, got {every_n_train_steps}")
        super().__init__(save_top_k=0, save_last=True, enable_version_counter=False)
        self.every_n_train_steps = every_n_train_steps
        self.saved_step = 0  # the global step last.ckpt holds (none is written before the first step)

    def write_last(self, trainer: L.Trainer) -> None:
        """Write `last.ckpt` unless it holds this step already (or this is a `fast_dev_run`)."""
        if trainer.fast_dev_run or trainer.global_step == self.saved_step:
            return
        # Set before saving: the path is part of this callback's state in the checkpoint.
        self.last_model_path = self.format_checkpoint_name({}, self.CHECKPOINT_NAME_LAST)
        trainer.save_checkpoint(self.last_model_path, weights_only=self.save_weights_only)
        self.saved_step = trainer.global_step
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # The epoch's last batch is saved by `on_train_epoch_end`, after the epoch's validation.
        last_batch = batch_idx + 1 >= trainer.num_training_batches
        every = self.every_n_train_steps
        if every > 0 and trainer.global_step % every == 0 and not last_batch:
            self.write_last(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning runs the epoch's validation before this hook: the checkpoint holds a finished epoch.
        self.write_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Nothing: a validation inside an epoch is no reason to write `last.ckpt`."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # An epoch stopped early (max_steps, a callback's should_stop) ends without on_train_epoch_end.
        self.write_last(trainer)


def checkpoint_metadata(loggers: Sequence[Logger]) -> dict[str, Any]:
    """What a checkpoint records about the code and the runs that wrote it (plain types only)."""
    return {
        "version": __version__,
        "format": CHECKPOINT_FORMAT,
        # A run's version as its folder is named: `version_3` for CSV's 3, the W&B run id as is.
        "loggers": [{"class": type(lg).__name__, "version": run_folder(lg, ".").name} for lg in loggers],
    }


def plain(value: Any) -> Any:
    """Nested dicts and lists of a jsonargparse Namespace or a dict, for comparing hyperparameters."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        flat = {}
        for key, item in value.items():
            flat |= _flatten(item, f"{prefix}.{key}")
        return flat
    return {prefix: value}


def hparam_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """`key: checkpoint X, model Y` for each architecture hyperparameter that differs."""
    differences = []
    for name in ARCHITECTURE_HPARAMS:
        if name not in saved or name not in current:
            continue
        old, new = _flatten(plain(saved[name]), name), _flatten(plain(current[name]), name)
        for key in sorted(old.keys() | new.keys()):
            before, after = old.get(key, "<absent>"), new.get(key, "<absent>")
            if before != after:
                differences.append(f"{key}: checkpoint {before}, model {after}")
    return differences


def _listed(names: Sequence[str]) -> str:
    more = f", ... ({len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
    return ", ".join(names[:MAX_LISTED]) + more


def state_dict_differences(
    saved: Mapping[str, torch.Tensor], current: Mapping[str, torch.Tensor]
) -> list[str]:
    """Weights missing from the checkpoint, unexpected in it, or of another shape."""
    missing = sorted(current.keys() - saved.keys())
    unexpected = sorted(saved.keys() - current.keys())
    reshaped = [
        f"{key} {tuple(saved[key].shape)} vs {tuple(current[key].shape)}"
        for key in sorted(saved.keys() & current.keys())
        if tuple(saved[key].shape) != tuple(current[key].shape)
    ]
    differences = []
    if missing:
        differences.append(f"{len(missing)} weights missing from the checkpoint: {_listed(missing)}")
    if unexpected:
        differences.append(f"{len(unexpected)} weights the model does not have: {_listed(unexpected)}")
    if reshaped:
        shapes = _listed(reshaped)
        differences.append(f"{len(reshaped)} weights of another shape (checkpoint vs model): {shapes}")
    return differences


def check_compatible(
    checkpoint: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], hparams: Mapping[str, Any]
) -> None:
    """Raise `IncompatibleCheckpointError` naming what differs if `checkpoint` cannot load into the model
    whose `state_dict` and `hparams` are given: another checkpoint format, or other weights."""
    metadata = checkpoint.get(METADATA_KEY) or {"version": "0.1.0 or earlier", "format": 1}
    if metadata["format"] != CHECKPOINT_FORMAT:
        raise IncompatibleCheckpointError(
            f"the checkpoint was written by unetskip {metadata['version']} in checkpoint format "
            f"{metadata['format']}; this is unetskip {__version__}, which reads format {CHECKPOINT_FORMAT}: "
            f"use unetskip {metadata['version']} with this checkpoint"
        )
    weights = state_dict_differences(checkpoint.get("state_dict", {}), state_dict)
    if weights:
        settings = hparam_differences(checkpoint.get("hyper_parameters") or {}, hparams)
        raise IncompatibleCheckpointError(
            "the checkpoint holds another architecture than this model:\n  "
            + "\n  ".join(settings + weights)
            + "\nvalidate, test and predict rebuild the model from --ckpt_path alone (drop the flags that "
            "change the network); fit --ckpt_path needs the config the checkpoint was trained with"
        )
