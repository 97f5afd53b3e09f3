"""The mask writer of `unetskip predict`: one mask per image, the manifest, output names that never collide.

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
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from tqdm import tqdm

from unetskip.data.image_files import FoundImages, load_image
from unetskip.data.image_folder import ImageFolderDataModule
from unetskip.predict.rendering import mask_from_probabilities, overlay, resize_probabilities, save_image

MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("input", "status", "mask", "height", "width", "reason")
# How many skipped inputs the closing summary names (all of them are in the manifest).
SUMMARY_PROBLEMS = 20


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
