"""The one reader of checkpoint files: tensors and plain containers only (`weights_only=True`, so loading
runs no code), class paths of before the subpackage move renamed, and one error for a missing, truncated
or foreign file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from unetskip.runs.moved_paths import renamed

HPARAM_KEYS = ("hyper_parameters", "datamodule_hyper_parameters")


class CheckpointReadError(ValueError):
    """A file that is not a readable checkpoint written by `unetskip fit`; the message names it."""


def read_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """The checkpoint at `path` on the CPU, its hyperparameters with today's class paths; with `mmap`,
    tensors stay on disk until used (cheap when only the hyperparameters are read).

    Raises:
        CheckpointReadError: `path` is not a file, cannot be unpickled with `weights_only=True` (truncated,
            not written by torch.save, holding objects other than tensors and plain values), or holds
            neither a `state_dict` nor hyperparameters (not a Lightning checkpoint).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointReadError(f"checkpoint {path} cannot be read: it is not a file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:  # noqa: BLE001 (any unpickling error means the same to the user)
        raise CheckpointReadError(
            f"checkpoint {path} cannot be read: {error.__class__.__name__}: {error}".splitlines()[0]
        ) from error
    if not isinstance(checkpoint, dict) or not {"state_dict", *HPARAM_KEYS} & checkpoint.keys():
        raise CheckpointReadError(
            f"checkpoint {path} cannot be read: it holds no state_dict (not a checkpoint of unetskip fit)"
        )
    for key in HPARAM_KEYS:
        if key in checkpoint:
            checkpoint[key] = renamed(checkpoint[key])
    return checkpoint
