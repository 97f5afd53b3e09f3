"""Models run over a split's dataset, image by image: at the evaluation size (test's inputs, exactly) or
at the images' original size (as `unetskip predict` computes its masks), skipping samples that cannot
be decoded."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from unetskip.data.image_files import network_input
from unetskip.data.normalization import denormalize
from unetskip.data.oxford_pet import check_sample, read_split
from unetskip.data.oxford_pet_datamodule import OxfordPetDataModule
from unetskip.predict.inferer import Inferer
from unetskip.predict.rendering import mask_from_probabilities

# What a sample that cannot be read raises: a decoder failure (OxfordPetDataset wraps it in a
# RuntimeError), an unreadable image, or a mask the data check would reject.
SAMPLE_ERRORS = (RuntimeError, ValueError, OSError)


@dataclass(frozen=True)
class PredictedImage:
    """One image of the split with its predictions: `index` in the dataset, `image` (H, W, 3) uint8,
    `target` (H, W) long, `border` (H, W) bool or None, `preds` one (H, W) long per model."""

    index: int
    image: np.ndarray
    target: torch.Tensor
    border: torch.Tensor | None
    preds: list[torch.Tensor]


class SafeSamples(Dataset):
    """`dataset`'s samples as `{"index": i, "sample": ...}`, or `{"index": i, "error": reason}` for one
    that raises one of SAMPLE_ERRORS, so that one bad file costs its sample, not the run."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            return {"index": index, "sample": self.dataset[index]}
        except SAMPLE_ERRORS as error:
            return {"index": index, "error": str(error).splitlines()[0]}


def as_list(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A DataLoader collate that keeps the samples as they are (their sizes may differ)."""
    return items


def untransformed(image: np.ndarray, mask: np.ndarray, masks: Sequence[np.ndarray] = ()) -> dict[str, Any]:
    """The transform of a full-size view: the image (H, W, 3) uint8 as decoded, masks as tensors."""
    return {"image": image, "mask": torch.from_numpy(mask), "masks": [torch.from_numpy(m) for m in masks]}


def full_size_view(dataset: Dataset) -> Dataset:
    """A copy of a split's dataset (OxfordPetDataset, FolderDataset: a `transform` attribute) whose
    samples are at their original size: the decoded image and the mask as stored."""
    view = copy.copy(dataset)
    view.transform = untransformed
    return view


def sample_path(dataset: Dataset, index: int, root: Path) -> str:
    """The image file of sample `index`, relative to the data root when under it (PetSample and the
    folder layout's Sample name their files)."""
    sample = dataset.samples[index]
    path = Path(getattr(sample, "image_path", None) or sample.image)
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def predict_samples(
    models: Sequence[nn.Module],
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    device: torch.device,
    forward_context: Callable[[], AbstractContextManager],
    full_size: tuple[int, int] | None = None,
    skipped: Callable[[int, str], None] = lambda index, reason: None,
) -> Iterator[PredictedImage]:
    """Every sample of `dataset` with each model's prediction, in dataset order; `skipped(index, reason)`
    is called for each sample that cannot be read.

    At the evaluation size (`full_size` None) the models see the dataset's own tensors, as in `test`:
    logits (B, C, h, w), argmax. With `full_size` (the training size (h, w)) `dataset` is a full-size
    view: each image is resized to `full_size` as predict's resize mode does, and the probabilities are
    resized back to (H, W) before the argmax (`mask_from_probabilities`).
    """
    loader = DataLoader(
        SafeSamples(dataset), batch_size=batch_size, num_workers=num_workers, collate_fn=as_list
    )
    inferer = Inferer()  # predict's default: whole images, no TTA
    with torch.inference_mode(), forward_context():
        for items in loader:
            for item in items:
                if "error" in item:
                    skipped(item["index"], item["error"])
            samples = [(item["index"], item["sample"]) for item in items if "sample" in item]
            if not samples:
                continue
            if full_size is None:
                images = torch.stack([sample["image"] for _, sample in samples]).to(device)  # (B, 3, h, w)
                preds = [model(images).argmax(dim=1).cpu() for model in models]  # (B, h, w) each
                shown = denormalize(images)  # (B, h, w, 3)
            else:
                inputs = [network_input(sample["image"], full_size).to(device) for _, sample in samples]
                preds = [
                    [
                        torch.from_numpy(mask_from_probabilities(p, sample["image"].shape[:2])).long()
                        for p, (_, sample) in zip(inferer(model, inputs), samples, strict=True)
                    ]
                    for model in models
                ]
                shown = [sample["image"] for _, sample in samples]
            for n, (index, sample) in enumerate(samples):
                yield PredictedImage(
                    index,
                    np.asarray(shown[n]),
                    sample["mask"],
                    sample.get("border"),
                    [model_preds[n] for model_preds in preds],
                )


def dropped_samples(datamodule: LightningDataModule, split: str, dataset: Dataset) -> list[tuple[str, str]]:
    """(path, reason) of each image of an Oxford-IIIT Pet split list that the data module left out of
    `dataset` when set up (a missing or unreadable file, a trimap of another size); [] for other data,
    whose setup stops on such files instead."""
    if not isinstance(datamodule, OxfordPetDataModule):
        return []
    names = read_split(datamodule.root, "test" if split == "test" else "trainval")
    kept = {sample.name for sample in dataset.samples}
    return [
        (f"images/{name}.jpg", check_sample(datamodule.root, name)[1])
        for name in names
        if name not in kept and check_sample(datamodule.root, name)[0] is None
    ]


def subset(dataset: Dataset, indices: Sequence[int]) -> Subset:
    """The samples `indices` of `dataset`, in that order (to render a gallery)."""
    return Subset(dataset, list(indices))
