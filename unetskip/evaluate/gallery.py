"""Galleries of images with their masks: one row per image (photo, truth, prediction(s), a map of the
errors or of where two models differ), saved as one PNG and as an HTML page that needs no server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from unetskip.deploy.demo_views import disagreement
from unetskip.predict.rendering import overlay, save_image

TILE_HEIGHT = 128
LABEL_HEIGHT = 14
CAPTION_HEIGHT = 16
ERROR_COLOUR = (255, 0, 0)
IGNORED_COLOUR = (90, 90, 160)
BACKGROUND_SHARE = 0.6  # how much of the grey photo shows beneath the error map


@dataclass(frozen=True)
class GalleryRow:
    """One image of a gallery: its caption and its tiles, (H, W, 3) uint8 each with a label."""

    caption: str
    tiles: Sequence[tuple[str, np.ndarray]]


def truth_view(image: np.ndarray, truth: np.ndarray, ignore_index: int | None) -> np.ndarray:
    """(H, W, 3) photo and (H, W) true classes -> the overlay, ignored pixels in IGNORED_COLOUR."""
    ignored = truth == ignore_index if ignore_index is not None else np.zeros(truth.shape, bool)
    view = overlay(image, np.where(ignored, 0, truth))
    view[ignored] = IGNORED_COLOUR
    return view


def error_map(image: np.ndarray, truth: np.ndarray, pred: np.ndarray, ignore_index: int | None) -> np.ndarray:
    """(H, W, 3) photo, (H, W) truth and prediction -> (H, W, 3): the photo in dimmed grey, wrong pixels in
    ERROR_COLOUR, ignored ones in IGNORED_COLOUR."""
    grey = image.mean(axis=2, keepdims=True) * BACKGROUND_SHARE  # (H, W, 1)
    view = np.repeat(grey, 3, axis=2).round().astype(np.uint8)
    ignored = truth == ignore_index if ignore_index is not None else np.zeros(truth.shape, bool)
    view[(pred != truth) & ~ignored] = ERROR_COLOUR
    view[ignored] = IGNORED_COLOUR
    return view


def evaluation_tiles(
    image: np.ndarray,
    truth: np.ndarray,
    preds: Sequence[np.ndarray],
    ignore_index: int | None,
    model_names: Sequence[str] = ("prediction",),
) -> list[tuple[str, np.ndarray]]:
    """The tiles of one image: photo, truth, each prediction, then the errors (one prediction) or where
    the first two predictions differ (two)."""
    tiles = [("image", image), ("truth", truth_view(image, truth, ignore_index))]
    tiles += [(name, overlay(image, pred)) for name, pred in zip(model_names, preds, strict=True)]
    if len(preds) == 1:
        tiles.append(("errors", error_map(image, truth, preds[0], ignore_index)))
    else:
        tiles.append(("where they differ", disagreement(image, preds[0], preds[1])))
    return tiles


def labelled(tile: np.ndarray, label: str) -> Image.Image:
    """A tile scaled to TILE_HEIGHT with its label in a white strip above."""
    height, width = tile.shape[:2]
    scaled = Image.fromarray(tile).resize((max(1, round(width * TILE_HEIGHT / height)), TILE_HEIGHT))
    canvas = Image.new("RGB", (scaled.width, TILE_HEIGHT + LABEL_HEIGHT), "white")
    canvas.paste(scaled, (0, LABEL_HEIGHT))
    ImageDraw.Draw(canvas).text((2, 1), label, fill="black")
    return canvas


def row_image(row: GalleryRow) -> np.ndarray:
    """A row's caption above its labelled tiles, side by side: (h, w, 3) uint8."""
    tiles = [labelled(tile, label) for label, tile in row.tiles]
    width = sum(tile.width for tile in tiles) + 2 * (len(tiles) - 1)
    canvas = Image.new("RGB", (width, CAPTION_HEIGHT + TILE_HEIGHT + LABEL_HEIGHT), "white")
    ImageDraw.Draw(canvas).text((2, 2), row.caption, fill="black")
    left = 0
    for tile in tiles:
        canvas.paste(tile, (left, CAPTION_HEIGHT))
        left += tile.width + 2
    return np.asarray(canvas)


def stacked(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Row images (h, w_i, 3) one under the other on white, 4 px apart."""
    width = max(row.shape[1] for row in rows)
    canvas = np.full((sum(row.shape[0] + 4 for row in rows), width, 3), 255, np.uint8)
    top = 0
    for row in rows:
        canvas[top : top + row.shape[0], : row.shape[1]] = row
        top += row.shape[0] + 4
    return canvas


def write_gallery(rows: Sequence[GalleryRow], folder: Path, name: str) -> Path:
    """Writes `folder/<name>.png` (every row, stacked) and `folder/gallery/<name>_<i>.png` (each row);
    returns the stacked PNG's path."""
    images = [row_image(row) for row in rows]
    for index, image in enumerate(images):
        save_image(image, folder / "gallery" / f"{name}_{index:02d}.png", "PNG")
    path = folder / f"{name}.png"
    save_image(stacked(images), path, "PNG")
    return path


def gallery_html(sections: Sequence[tuple[str, str, Sequence[GalleryRow]]], title: str) -> str:
    """An HTML page of (heading, gallery name, rows) sections, each row's PNG under `gallery/`."""
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{escape(title)}</title>",
        f"<h1>{escape(title)}</h1>",
    ]
    for heading, name, rows in sections:
        parts.append(f"<h2>{escape(heading)}</h2>")
        for index, row in enumerate(rows):
            parts.append(
                f"<figure><img src='gallery/{name}_{index:02d}.png' alt='{escape(row.caption)}'>"
                f"<figcaption>{escape(row.caption)}</figcaption></figure>"
            )
    return "\n".join(parts) + "\n"
