"""`unetskip predict`: segment a folder of images with a checkpoint, writing one mask per image.

The predict subcommand declares its parts like fit declares its loggers (see `add_predict_arguments`):
its options configure an `ImageFolderDataModule` (`--input`, `--mode`), the model's `Inferer` (`--mode`,
`--tile_size`, `--tile_overlap`, `--tta`) and a `MaskWriter` callback (`--output`, `--overlay`,
`--probabilities`, `--overwrite`); the checkpoint gives the model, its classes and the training size.

For an input image `<input>/<relative path>/<name>.<ext>` the outputs are, under `--output`:

- `<relative path>/<name>.png`: uint8 class indices (0 background, 1 pet, 2 border in trimap mode) at the
  image's own height and width (after EXIF orientation);
- with `--overlay`, `<name>.overlay.jpg`: the image with the classes painted over it;
- with `--probabilities`, `<name>.prob_<class>.png`: each class's probability as 0-255 grey;
- `manifest.csv`: one row per input with its outcome, and `config.yaml`: the full configuration used.

Two inputs that would get the same output names (`cat.jpg` and `cat.png`, or names that differ only in
letter case) do not overwrite each other: the later one (in sorted order) is named `cat.png.png`, then
`cat.png-1.png` and so on (see `output_stems`); the manifest gives every input's mask.

Under DDP (`--trainer.devices N --trainer.strategy ddp`, or torchrun) Lightning gives each process its own
share of the images, every image exactly once; each process writes its images' outputs and its manifest
rows (`manifest.rank<r>.csv`), and rank 0 merges those into `manifest.csv`, in input order, at the end.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from jsonargparse import ActionYesNo
from jsonargparse.typing import PositiveInt, restricted_number_type
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.cli import LightningArgumentParser
from PIL import Image
from tqdm import tqdm

from unetskip.data.image_files import FoundImages, load_image
from unetskip.data.image_folder import ImageFolderDataModule
from unetskip.inference import Inferer

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("input", "status", "mask", "height", "width", "reason")
# Overlay colours of classes 1, 2, ... (class 0, the background, is left as it is).
OVERLAY_COLOURS = ((255, 140, 0), (30, 144, 255), (50, 205, 50), (220, 20, 60))
OVERLAY_OPACITY = 0.5
# How many skipped inputs the closing summary names (all of them are in the manifest).
SUMMARY_PROBLEMS = 20

PredictMode = Literal["resize", "native", "tiled"]
TileOverlap = restricted_number_type("TileOverlap", float, [(">=", 0.0), ("<", 1.0)])


def output_suffixes(class_names: Sequence[str]) -> list[str]:
    """Everything written for one input is `<stem>` plus one of these."""
    return [".png", ".overlay.jpg", *(f".prob_{name}.png" for name in class_names)]


def candidate_stems(relative: Path) -> Iterator[str]:
    """Output names for the input `relative`, in order of preference: `cat`, `cat.jpg`, `cat.jpg-1`, ..."""
    yield relative.stem
    yield relative.name
    for index in itertools.count(1):
        yield f"{relative.name}-{index}"


def output_stems(relatives: Sequence[Path], suffixes: Sequence[str]) -> list[Path]:
    """For each input's relative path, the relative output path its outputs get a suffix of.

    The first of `candidate_stems` for which no name `<stem><suffix>` is already taken by an earlier input
    or by a folder (letter case ignored, as on case-insensitive file systems).
    """
    taken = set()  # (parent folder, name), casefolded
    for relative in relatives:
        for folder in relative.parents:
            if folder != Path("."):
                taken.add((folder.parent.as_posix().casefold(), folder.name.casefold()))
    stems = []
    for relative in relatives:
        parent = relative.parent.as_posix().casefold()
        for candidate in candidate_stems(relative):
            names = {(parent, f"{candidate}{suffix}".casefold()) for suffix in suffixes}
            if not names & taken:
                break
        taken |= names
        stems.append(relative.parent / candidate)
    return stems


def save_image(array: np.ndarray, path: Path, image_format: str) -> None:
    """Write `array` ((H, W) or (H, W, 3) uint8) to `path` through a temporary name, so an interrupted run
    never leaves a truncated file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    Image.fromarray(array).save(
        partial, format=image_format, **({"quality": 90} if image_format == "JPEG" else {})
    )
    os.replace(partial, path)


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 image and (H, W) class indices -> (H, W, 3) uint8, classes > 0 tinted."""
    blended = image.astype(np.float32)
    for index in range(1, int(mask.max()) + 1):
        colour = np.array(OVERLAY_COLOURS[(index - 1) % len(OVERLAY_COLOURS)], dtype=np.float32)
        selected = mask == index
        blended[selected] = (1 - OVERLAY_OPACITY) * blended[selected] + OVERLAY_OPACITY * colour
    return blended.round().astype(np.uint8)


def resize_probabilities(probabilities: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Class probabilities (C, h, w) -> (C, H, W) at `size` (H, W), bilinearly (unchanged at that size)."""
    if tuple(probabilities.shape[1:]) == tuple(size):
        return probabilities
    return F.interpolate(probabilities[None], size=tuple(size), mode="bilinear", align_corners=False)[0]


def mask_from_probabilities(probabilities: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """One image's class probabilities (C, h, w) -> its mask, (H, W) uint8 class indices at `size` (H, W),
    the image's original size: the probabilities are resized bilinearly before the argmax."""
    return resize_probabilities(probabilities, size).argmax(dim=0).to(torch.uint8).cpu().numpy()


def predict_images(datamodule: L.LightningDataModule | None) -> FoundImages:
    """The images that `datamodule` (an `ImageFolderDataModule`) serves to predict."""
    if not isinstance(datamodule, ImageFolderDataModule):
        raise ValueError(
            "MaskWriter writes the masks of an ImageFolderDataModule's images, not of "
            f"{type(datamodule).__name__}"
        )
    return datamodule.images()


class MaskWriter(BasePredictionWriter):
    """Writes each image's outputs under `output_dir` at its original size as its batch arrives, and a
    manifest row for every input, so memory does not grow with the number of images.

    `plan` (called by `setup` from the trainer's `ImageFolderDataModule` and the model's classes, or
    earlier by the CLI to fail before any work) names every input's outputs: `found.paths[i]` is written
    to `output_dir / stems[i]` plus a suffix (see `output_suffixes`). `output_dir` must be new or empty
    unless `overwrite` (see `check_output_folder`).
    """

    def __init__(
        self,
        output_dir: str = "predictions",
        overlay: bool = False,
        probabilities: bool = False,
        overwrite: bool = False,
    ) -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.overlay = overlay
        self.probabilities = probabilities
        self.overwrite = overwrite
        self.found: FoundImages | None = None
        self.stems: list[Path] = []
        self.class_names: list[str] = []
        self.written = 0
        self.skipped = 0
        self.problems: list[tuple[Path, str]] = []
        self.seconds = 0.0

    def plan(self, found: FoundImages, class_names: Sequence[str]) -> None:
        """Name the outputs of `found`'s images for a model of `class_names`.

        Raises:
            ValueError: the output folder must not be used (see `check_output_folder`).
        """
        suffixes = output_suffixes(class_names)
        stems = output_stems([found.relative(path) for path in found.paths], suffixes)
        check_output_folder(self.output_dir, found, stems, suffixes, self.overwrite)
        self.found, self.stems, self.class_names = found, stems, list(class_names)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.found is None:
            self.plan(predict_images(trainer.datamodule), pl_module.class_names)

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        # Under DDP each process writes its own images' rows, led by their index, into a part file;
        # rank 0 merges the parts into the manifest at the end (see merge_manifests).
        self._world_size = trainer.world_size
        manifest = self.output_dir / (
            MANIFEST_NAME if self._world_size == 1 else manifest_part_name(trainer.global_rank)
        )
        self._manifest_file = manifest.open("w", newline="")
        self._manifest = csv.writer(self._manifest_file)
        self._manifest.writerow(self._row(-1, list(MANIFEST_COLUMNS)))
        rejected = self.found.rejected if trainer.is_global_zero else []
        own_images = len(range(trainer.global_rank, len(self.found.paths), self._world_size))
        # Images done and img/s, on rank 0's terminal only (disable=None: when it is a terminal).
        self._bar = tqdm(
            total=len(rejected) + own_images,
            unit="img",
            desc="predict",
            disable=None if trainer.is_global_zero else True,
        )
        self._manifest.writerows(self._row(-1, self._skip(path, reason)) for path, reason in rejected)
        self._bar.update(len(rejected))
        self._started = time.perf_counter()

    def _row(self, index: int, row: list[Any]) -> list[Any]:
        """A manifest row; in a DDP part file led by the input's index (-1: the header, rejected inputs)."""
        return row if self._world_size == 1 else [index, *row]

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: list[torch.Tensor],
        batch_indices: Sequence[int] | None,
        batch: dict[str, Any],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        rows = {index: self._skip(self.found.paths[index], reason) for index, reason in batch["failed"]}
        for index, size, probabilities in zip(batch["index"], batch["size"], prediction, strict=True):
            rows[index] = self._write(index, tuple(size), probabilities)
        self._manifest.writerows(self._row(index, rows[index]) for index in sorted(rows))
        self._manifest_file.flush()
        self._bar.set_postfix(written=self.written, skipped=self.skipped, refresh=False)
        self._bar.update(len(rows))

    def _write(self, index: int, size: tuple[int, int], probabilities: torch.Tensor) -> list[Any]:
        """Writes input `index`'s outputs from its probabilities (C, h, w) mapped to `size` (H, W).

        Returns its manifest row."""
        path, stem = self.found.paths[index], self.output_dir / self.stems[index]
        mask = mask_from_probabilities(probabilities, size)  # (H, W)
        save_image(mask, stem.with_name(stem.name + ".png"), "PNG")
        if self.overlay:
            save_image(overlay(load_image(path), mask), stem.with_name(stem.name + ".overlay.jpg"), "JPEG")
        if self.probabilities:
            grey = (resize_probabilities(probabilities, size) * 255).round().to(torch.uint8).cpu().numpy()
            for name, channel in zip(self.class_names, grey, strict=True):
                save_image(channel, stem.with_name(f"{stem.name}.prob_{name}.png"), "PNG")
        self.written += 1
        return [path, "written", self.stems[index].as_posix() + ".png", *size, ""]

    def _skip(self, path: Path, reason: str) -> list[Any]:
        """Counts a skipped input; returns its manifest row."""
        self.skipped += 1
        if len(self.problems) < SUMMARY_PROBLEMS:
            self.problems.append((path, reason))
        return [path, "skipped", "", "", "", reason]

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self._started
        self._manifest_file.close()
        self._bar.close()
        if self._world_size == 1:
            return
        # The sum over processes; the reduction also waits until every part file is closed.
        counts = torch.tensor([self.written, self.skipped], device=trainer.strategy.root_device)
        self.written, self.skipped = (int(n) for n in trainer.strategy.reduce(counts, reduce_op="sum"))
        if trainer.is_global_zero:
            parts = [self.output_dir / manifest_part_name(rank) for rank in range(self._world_size)]
            self.problems = merge_manifests(parts, self.output_dir / MANIFEST_NAME)
        trainer.strategy.barrier()

    def summary(self) -> str:
        """What was written and skipped, how fast, and where the manifest is."""
        rate = self.written / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"predict: {self.written} masks written to {self.output_dir}, {self.skipped} inputs skipped, "
            f"in {self.seconds:.1f} s ({rate:.2f} img/s); manifest: {self.output_dir / MANIFEST_NAME}"
        ]
        lines += [f"  skipped {path}: {reason}" for path, reason in self.problems]
        if self.skipped > len(self.problems):
            lines.append(f"  ... and {self.skipped - len(self.problems)} more (see the manifest)")
        return "\n".join(lines)


def manifest_part_name(rank: int) -> str:
    """The manifest rows of DDP process `rank`, until rank 0 merges them."""
    return f"{Path(MANIFEST_NAME).stem}.rank{rank}.csv"


def merge_manifests(parts: Sequence[Path], manifest: Path) -> list[tuple[Path, str]]:
    """Merges DDP part files into `manifest` in input order and deletes them.

    Each part's rows are led by the input's index (-1 for rejected inputs) in increasing order, as
    Lightning's unrepeated sampler hands each process every world_size-th image. Returns the first
    SUMMARY_PROBLEMS skipped inputs as (path, reason).
    """
    files = [part.open(newline="") for part in parts]
    readers = [csv.reader(file) for file in files]
    for reader in readers:
        next(reader)  # the header
    problems = []
    with manifest.open("w", newline="") as merged:
        writer = csv.writer(merged)
        writer.writerow(MANIFEST_COLUMNS)
        for _, *row in heapq.merge(*readers, key=lambda row: int(row[0])):
            writer.writerow(row)
            if row[1] == "skipped" and len(problems) < SUMMARY_PROBLEMS:
                problems.append((Path(row[0]), row[-1]))
    for file, part in zip(files, parts, strict=True):
        file.close()
        part.unlink()
    return problems


def resizes(mode: PredictMode) -> bool:
    """Whether `--mode` resizes images to the training size (`data.init_args.resize`)."""
    return mode == "resize"


def inferer_config(
    mode: PredictMode,
    tile_size: int | None,
    tile_overlap: float,
    tta: bool,
    image_size: int | Sequence[int],
    batch_size: int,
) -> dict[str, Any]:
    """`model.inferer` of a predict run: tiles of `tile_size` (default: the training size `image_size`)
    in tiled mode, `batch_size` tiles per forward pass, flip TTA with `tta`."""
    training_side = image_size if isinstance(image_size, int) else max(int(side) for side in image_size)
    return {
        "class_path": f"{Inferer.__module__}.{Inferer.__name__}",
        "init_args": {
            # Plain int and float: the restricted types of the options do not dump to YAML.
            "tile_size": int(tile_size or training_side) if mode == "tiled" else None,
            "tile_overlap": float(tile_overlap),
            "tile_batch_size": batch_size,
            "flip_tta": tta,
        },
    }


def add_predict_arguments(parser: LightningArgumentParser) -> None:
    """The options of `unetskip predict` (the LightningArgumentParser of the predict subcommand), linked
    to what they configure: `data` (an ImageFolderDataModule), `model.inferer` and `mask_writer`."""
    parser.add_lightning_class_args(MaskWriter, "mask_writer")
    parser.add_argument(
        "--input",
        type=str,
        required=True,
        help="A folder (searched recursively), an image, or a .txt file listing image paths.",
    )
    parser.add_argument(
        "--output",
        type=str,
        required=True,
        help="Folder for the masks, manifest.csv and config.yaml: new or empty, unless --overwrite.",
    )
    parser.add_argument(
        "--mode",
        type=PredictMode,
        default="resize",
        help="resize: each image resized to the training size, probabilities resized back; native: whole "
        "images at their own size; tiled: native size in overlapping tiles (memory bounded by tile size).",
    )
    parser.add_argument(
        "--tile_size",
        type=PositiveInt | None,
        default=None,
        help="Tile side in tiled mode (default: the training image size).",
    )
    parser.add_argument(
        "--tile_overlap",
        type=TileOverlap,
        default=0.25,
        help="Overlap of neighbouring tiles, a fraction in [0, 1).",
    )
    parser.add_argument(
        "--tta",
        action=ActionYesNo,
        default=False,
        help="Average with the horizontally flipped image's probabilities.",
    )
    parser.add_argument("--overlay", action=ActionYesNo, default=False, help="Also write <name>.overlay.jpg.")
    parser.add_argument(
        "--probabilities",
        action=ActionYesNo,
        default=False,
        help="Also write <name>.prob_<class>.png (probability x 255).",
    )
    parser.add_argument(
        "--overwrite",
        action=ActionYesNo,
        default=False,
        help="Write into a non-empty --output, replacing files of the same names (others are kept).",
    )
    parser.add_argument(
        "--strict", action=ActionYesNo, default=False, help="Exit with status 1 when an input was skipped."
    )
    parser.link_arguments("input", "data.init_args.source")
    parser.link_arguments("output", "data.init_args.exclude")  # an output folder inside the input
    parser.link_arguments("mode", "data.init_args.resize", compute_fn=resizes)
    parser.link_arguments(
        (
            "mode",
            "tile_size",
            "tile_overlap",
            "tta",
            "data.init_args.image_size",
            "data.init_args.batch_size",
        ),
        "model.inferer",
        compute_fn=inferer_config,
    )
    parser.link_arguments("output", "mask_writer.output_dir")
    for key in ("overlay", "probabilities", "overwrite"):
        parser.link_arguments(key, f"mask_writer.{key}")
    parser.link_arguments("output", "trainer.default_root_dir")
    parser.set_defaults(
        {
            "data": {"class_path": f"{ImageFolderDataModule.__module__}.{ImageFolderDataModule.__name__}"},
            "trainer.logger": False,
            "trainer.enable_progress_bar": False,  # MaskWriter shows images and img/s instead
            "trainer.enable_model_summary": False,
            "trainer.devices": 1,
        }
    )


def check_output_folder(
    output_dir: Path, found: FoundImages, stems: Sequence[Path], suffixes: Sequence[str], overwrite: bool
) -> None:
    """Refuse the input folder itself, a non-empty folder without `overwrite`, and any output that would
    replace an input."""
    if output_dir.is_file():
        raise ValueError(f"--output {output_dir} is a file, not a folder")
    if output_dir.resolve() == found.base.resolve():
        raise ValueError(f"--output {output_dir} is the input folder: masks go to a folder of their own")
    if not overwrite and output_dir.is_dir() and any(output_dir.iterdir()):
        raise ValueError(
            f"--output {output_dir} is not empty: choose a new folder, or pass --overwrite to replace the "
            "files of the same names (other files there are kept)"
        )
    inputs = {path.resolve() for path in found.paths}
    for stem in stems:
        for suffix in suffixes:
            target = (output_dir / stem).with_name(stem.name + suffix).resolve()
            if target in inputs:
                raise ValueError(
                    f"--output {output_dir} would overwrite the input {target}: choose another folder"
                )
