"""Read what an offline W&B run logged, without network or account.

wandb >= 0.2x no longer ships a reader for its `run-<id>.wandb` transaction log, so this module reads it:
a 7-byte header (`:W&B`, magic 0xBEE1 little-endian, version 0), then 32 KiB blocks of LevelDB-style
chunks, each with a 7-byte header (CRC32, payload length as 2 bytes little-endian, chunk type: 1 full,
2 first, 3 middle, 4 last); a block tail shorter than 7 bytes is padding. The payload of each record is a
`wandb.proto.wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

FILE_HEADER = struct.Struct("<4sHB")  # ident, magic, version
FILE_IDENT, FILE_MAGIC = b":W&B", 0xBEE1
CHUNK_HEADER = struct.Struct("<IHB")  # crc32, length, type
BLOCK_SIZE = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: str | Path) -> Iterator[wandb_internal_pb2.Record]:
    """Every complete record of a `.wandb` file, in the order it was written."""
    data = Path(path).read_bytes()
    if len(data) < FILE_HEADER.size:
        raise ValueError(f"{path}: too short to be a .wandb file ({len(data)} bytes)")
    ident, magic, _ = FILE_HEADER.unpack_from(data)
    if ident != FILE_IDENT or magic != FILE_MAGIC:
        raise ValueError(f"{path}: not a .wandb file (header {data[: FILE_HEADER.size]!r})")
    offset, pending = FILE_HEADER.size, b""
    while offset + CHUNK_HEADER.size <= len(data):
        block_left = BLOCK_SIZE - offset % BLOCK_SIZE
        if block_left < CHUNK_HEADER.size:  # padding at the end of a block
            offset += block_left
            continue
        _, length, chunk_type = CHUNK_HEADER.unpack_from(data, offset)
        start = offset + CHUNK_HEADER.size
        chunk, offset = data[start : start + length], start + length
        if chunk_type == 0 or offset > len(data):  # zero fill, or a record still being written
            break
        if chunk_type in (FULL, FIRST):
            pending = chunk
        else:
            pending += chunk
        if chunk_type in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def _set_item(target: dict[str, Any], item: Any) -> None:
    """Store a history, summary or config item in `target`.

    An item has either a `key` or a `nested_key` path (W&B splits a logged `wandb.Image` into
    `["val/masks", "filenames"]`, ...); nested paths become nested dicts.
    """
    path = list(item.nested_key) or [item.key]
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = json.loads(item.value_json)


@dataclass
class OfflineRun:
    """The content of one offline run folder (`wandb/offline-run-<time>-<id>/`).

    `history` holds one dict per `wandb.log` call (a logged image is a dict of its fields); `summary` and
    `config` hold the final values, W&B's own `_wandb` entry left out of `config`.
    """

    folder: Path
    run_id: str = ""
    project: str = ""
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[wandb_internal_pb2.ArtifactRecord] = field(default_factory=list)
    finished: bool = False

    @classmethod
    def read(cls, folder: str | Path, wait_s: float = 10.0) -> OfflineRun:
        """Read the run in `folder`, waiting up to `wait_s` seconds for it to be `finished`.

        wandb writes the file from a separate process and `wandb.finish()` may return before the last
        records are on disk; the run is finished once its `exit` record is there.
        """
        folder = Path(folder)
        files = sorted(folder.glob("run-*.wandb"))
        if len(files) != 1:
            raise FileNotFoundError(f"{folder}: expected one run-<id>.wandb file, found {len(files)}")
        deadline = time.monotonic() + wait_s
        records = list(read_records(files[0]))
        while not any(r.HasField("exit") for r in records) and time.monotonic() < deadline:
            time.sleep(0.1)
            records = list(read_records(files[0]))
        run = cls(folder)
        for record in records:
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run.run_id, run.project = record.run.run_id, record.run.project
                run.name = record.run.display_name
                for item in record.run.config.update:
                    _set_item(run.config, item)
            elif kind == "config":
                for item in record.config.update:
                    _set_item(run.config, item)
            elif kind == "history":
                row: dict[str, Any] = {}
                for item in record.history.item:
                    _set_item(row, item)
                run.history.append(row)
            elif kind == "summary":
                for item in record.summary.update:
                    _set_item(run.summary, item)
            elif kind == "artifact":
                run.artifacts.append(record.artifact)
            elif kind == "exit":
                run.finished = True
        run.config.pop("_wandb", None)
        return run

    def metric_keys(self) -> set[str]:
        """Every key logged in the history, W&B's own (`_step`, `_runtime`, ...) left out."""
        return {key for row in self.history for key in row if not key.startswith("_")}

    def values(self, key: str) -> list[Any]:
        """The values logged for `key`, in order."""
        return [row[key] for row in self.history if key in row]


def offline_run_folders(wandb_dir: str | Path) -> list[Path]:
    """The offline run folders under `wandb_dir` (the `save_dir` or `dir` given to W&B), oldest first."""
    return sorted(Path(wandb_dir).glob("wandb/offline-run-*"))
