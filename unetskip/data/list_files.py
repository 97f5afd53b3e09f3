"""The one reading of list files (predict's `--input list.txt`, a folder's `splits/<split>.txt`, Oxford-IIIT
Pet's `annotations/<split>.txt`): UTF-8 text, one entry a line, blank lines and `#` comments skipped."""

from __future__ import annotations

from pathlib import Path


def list_entries(path: Path) -> list[tuple[int, str]]:
    """(line number from 1, stripped line) of each entry of the list file `path`.

    Raises:
        ValueError: `path` is not UTF-8 text (the message names it).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not a UTF-8 text list: {error}") from error
    entries = [(number, line.strip()) for number, line in enumerate(lines, start=1)]
    return [(number, line) for number, line in entries if line and not line.startswith("#")]
