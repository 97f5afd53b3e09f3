"""The one reading of `data.image_size` and `data.keep_aspect`, for the transforms, predict, the demo and
the export: every image is resized to `image_size` (height, width), or with `keep_aspect` so that its
shorter side is `image_size` (an int) and the longer one follows its aspect ratio."""

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


def check_keep_aspect(image_size: int | Sequence[int], keep_aspect: bool) -> None:
    """Raise ValueError naming both keys when `keep_aspect` is set with an image size that is not one int."""
    parse_image_size(image_size)
    if keep_aspect and not isinstance(image_size, int):
        raise ValueError(
            f"data.keep_aspect: true takes data.image_size as one int (the shorter side), got {image_size!r}"
        )


def resized_size(
    size: tuple[int, int], image_size: int | Sequence[int], keep_aspect: bool
) -> tuple[int, int]:
    """The (height, width) that an image of `size` (H, W) is resized to for the network."""
    if not keep_aspect:
        return parse_image_size(image_size)
    check_keep_aspect(image_size, keep_aspect)
    height, width = size
    scale = image_size / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))
