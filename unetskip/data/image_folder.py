"""The LightningDataModule of `unetskip predict`: any image files, in batches (see `image_files`)."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader

from unetskip.data.image_files import (
    IMAGE_SUFFIXES,
    FoundImages,
    ImageFileDataset,
    collate_image_files,
    find_images,
)
from unetskip.data.image_size import check_keep_aspect
from unetskip.data.segmentation_datamodule import default_num_workers


class ImageFolderDataModule(L.LightningDataModule):
    """The images of `source` for predict: a folder (searched recursively), one image, or a `.txt` list of
    image paths (see `find_images`); nothing under `exclude` (the output folder) is read.

    With `resize`, each image is resized to `image_size` (the training size, int or (height, width); with
    `keep_aspect` the shorter side to `image_size`, as evaluation resizes it) and
    `batch_size` images go in a batch; without, images keep their own sizes and go one per batch. Batches
    are those of `collate_image_files`: `{"image": [uint8 (3, h, w)], "index": [i], "size": [(H, W)],
    "failed": [(index, reason)]}`. `num_workers=None` gives each process the node's CPUs shared among its
    processes, less one. Under DDP Lightning gives each process every world_size-th image, each once.
    """

    def __init__(
        self,
        source: str = ".",
        image_size: int | tuple[int, int] = 256,
        keep_aspect: bool = False,
        resize: bool = True,
        batch_size: int = 16,
        num_workers: int | None = None,
        exclude: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1, got {batch_size}")
        self.source = source
        check_keep_aspect(image_size, keep_aspect)
        self.image_size = image_size
        self.keep_aspect = keep_aspect
        self.resize = resize
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.exclude = exclude
        self._found: FoundImages | None = None
        self.dataset: ImageFileDataset | None = None

    def images(self) -> FoundImages:
        """The images of `source` (searched once).

        Raises:
            FileNotFoundError: `source` does not exist or holds no image.
            ValueError: `source` is a file that is neither an image nor a `.txt` list.
        """
        if self._found is None:
            found = find_images(self.source, exclude=self.exclude)
            if not found.paths and not found.rejected:
                raise FileNotFoundError(f"--input {self.source} holds no image ({', '.join(IMAGE_SUFFIXES)})")
            self._found = found
        return self._found

    def setup(self, stage: str) -> None:
        if stage != "predict":
            raise ValueError(f"ImageFolderDataModule serves predict only, not {stage}: it has no masks")
        image_size = self.image_size if self.resize else None
        self.dataset = ImageFileDataset(self.images().paths, image_size, self.keep_aspect)

    def predict_dataloader(self) -> DataLoader:
        num_workers = self.num_workers
        if num_workers is None:
            num_workers = default_num_workers(self.trainer.num_devices if self.trainer else 1)
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size if self.resize else 1,
            shuffle=False,
            collate_fn=collate_image_files,
            num_workers=num_workers,
            pin_memory=torch.cuda.is_available(),
        )
