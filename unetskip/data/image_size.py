"""The one reading of `data.image_size`, for the transforms, predict and the export."""

from __future__ import annotations

from collections.abc import Sequence


def parse_image_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    """`data.image_size` (an int for a square, or height and width) -> (height, width).

    Raises:
        ValueError: not one or two positive integers.
    """
    size = [image_size, image_size] if isinstance(image_size, int) else list(image_size)
    if len(size) != 2 or not all(isinstance(side, int) and not isinstance(side, bool) for side in size):
        raise ValueError(f"data.image_size must be an int or (height, width), got {image_size!r}")
    if min(size) < 1:
        raise ValueError(f"data.image_size must be >= 1, got {image_size!r}")
    return size[0], size[1]
