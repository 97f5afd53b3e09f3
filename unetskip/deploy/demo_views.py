"""What the demo page shows of one image's probabilities: masks at a threshold, coloured masks, where two
models disagree, the legend. Plain NumPy and torch; the page itself is `unetskip.deploy.demo_page`."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np
import torch

from unetskip.predict.rendering import OVERLAY_COLOURS, mask_from_probabilities

# The colour of the pixels where two models' masks differ, and how much of the grey photo shows beneath.
DISAGREEMENT_COLOUR = (255, 0, 255)
DISAGREEMENT_BACKGROUND = 0.6
# The threshold at which a binary model's mask is predict's argmax mask.
PREDICT_THRESHOLD = 0.5


def class_colour(index: int) -> tuple[int, int, int]:
    """The colour class `index` is painted in by predict's overlay (class 0, the background: black)."""
    return (0, 0, 0) if index == 0 else OVERLAY_COLOURS[(index - 1) % len(OVERLAY_COLOURS)]


def threshold_mask(probabilities: torch.Tensor, size: tuple[int, int], threshold: float) -> np.ndarray:
    """Probabilities (C, h, w) -> (H, W) uint8 class indices at `size` (H, W), as predict writes them.

    For two classes, class 1 where its share of the probability, p1 / (p0 + p1), exceeds `threshold`:
    the probabilities are weighted by (threshold, 1 - threshold) before predict's resize and argmax.
    At 0.5 both are halved, which changes no comparison, so the mask is exactly predict's. With more
    classes the threshold is not used (predict's argmax).
    """
    if probabilities.shape[0] == 2:
        weights = torch.tensor([threshold, 1.0 - threshold], dtype=probabilities.dtype)
        probabilities = probabilities * weights.to(probabilities.device)[:, None, None]
    return mask_from_probabilities(probabilities, size)


def coloured_mask(mask: np.ndarray) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) uint8, each class in `class_colour`."""
    palette = np.array([class_colour(index) for index in range(int(mask.max()) + 1)], dtype=np.uint8)
    return palette[mask]


def disagreement(image: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 photo and two (H, W) masks -> (H, W, 3) uint8: the photo in dimmed grey, the pixels
    where the masks differ in DISAGREEMENT_COLOUR."""
    grey = image.mean(axis=2, keepdims=True) * DISAGREEMENT_BACKGROUND  # (H, W, 1)
    view = np.repeat(grey, 3, axis=2).round().astype(np.uint8)
    view[first != second] = DISAGREEMENT_COLOUR
    return view


def legend_html(class_names: Sequence[str], comparing: bool = False) -> str:
    """One coloured square and name per class (and the disagreement colour when `comparing`), as HTML."""
    colours = [class_colour(index) for index in range(len(class_names))]
    names = [escape(name) for name in class_names]
    names[0] += " (not tinted in the overlay)"
    if comparing:
        colours.append(DISAGREEMENT_COLOUR)
        names.append("where the two masks differ")
    square = (
        '<span style="display:inline-block;width:0.9em;height:0.9em;margin:0 0.3em 0 1em;'
        'vertical-align:middle;border:1px solid #888;background:rgb{}"></span>{}'
    )
    return (
        "<div>"
        + "".join(square.format(colour, name) for colour, name in zip(colours, names, strict=True))
        + "</div>"
    )
