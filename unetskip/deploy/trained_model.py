"""A checkpoint alone as a model ready to use: network and weights, class names, training size, run name.

`unetskip fit` saves the model's and the data module's hyperparameters in every checkpoint; they rebuild
the network and say at which size it was trained, without a config file (as predict does).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from unetskip.data.image_files import network_input
from unetskip.data.image_size import parse_image_size, resized_size
from unetskip.data.oxford_pet_datamodule import OxfordPetDataModule
from unetskip.predict.inferer import Inferer
from unetskip.predict.options import PredictMode, inferer_config
from unetskip.runs.checkpoint_file import read_checkpoint
from unetskip.runs.run_config import variant_name
from unetskip.training.module import SegmentationModule

# The data module's defaults, for checkpoints that do not record a setting.
DATA_DEFAULTS = {name: p.default for name, p in inspect.signature(OxfordPetDataModule).parameters.items()}


@dataclass(frozen=True)
class TrainedModel:
    """A checkpoint's model in eval mode on the CPU, with what it was trained on.

    `training_size` is (height, width) of the training images (what predict's resize mode resizes to;
    with `keep_aspect`, the shorter side goes to that size and the longer one follows the image);
    `run_name` is the variant name its run was logged under, e.g. `unet-skip-residual-seed42`;
    `batch_size` its data's batch size (predict's tiles per forward pass).
    """

    module: SegmentationModule
    training_size: tuple[int, int]
    run_name: str
    batch_size: int
    keep_aspect: bool = False

    @property
    def class_names(self) -> list[str]:
        return self.module.class_names

    def inferer(
        self, mode: PredictMode, tile_size: int | None = None, tile_overlap: float = 0.25, tta: bool = False
    ) -> Inferer:
        """The inferer `unetskip predict --mode MODE --tile_size ... --tile_overlap ... --tta` uses."""
        config = inferer_config(mode, tile_size, tile_overlap, tta, self.training_size, self.batch_size)
        return Inferer(**config["init_args"])

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The (h, w) that predict's resize mode gives an image of `height` x `width`."""
        image_size = self.training_size[0] if self.keep_aspect else self.training_size
        return resized_size((height, width), image_size, self.keep_aspect)

    def probabilities(self, image: np.ndarray, inferer: Inferer, resize: bool) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> class probabilities (C, h, w), as `unetskip predict` computes them:
        (h, w) is the size predict's resize mode gives the image with `resize`, else (H, W)."""
        size = self.network_size(*image.shape[:2]) if resize else None
        tensor = network_input(image, size)  # (3, h, w)
        with torch.inference_mode():
            (probabilities,) = inferer(self.module, [tensor])
        return probabilities


def load_trained_model(ckpt_path: str | Path) -> TrainedModel:
    """The model of a checkpoint written by `unetskip fit`.

    Raises:
        FileNotFoundError: `ckpt_path` is not a file.
        ValueError: it is not a checkpoint that rebuilds its model alone (not a checkpoint, a network
            built in Python, weights of another architecture); the message names the file.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} is not a file")
    contents = read_checkpoint(path)
    try:
        module = SegmentationModule.from_checkpoint(contents)
    except Exception as error:  # noqa: BLE001 (missing keys, shapes, other classes: all mean the same here)
        raise ValueError(f"checkpoint {path} cannot rebuild a unetskip model: {error}") from error
    data = contents.get("datamodule_hyper_parameters") or {}
    training_size = parse_image_size(data.get("image_size", DATA_DEFAULTS["image_size"]))
    run_name = variant_name(contents["hyper_parameters"]["net"], data.get("seed"))
    batch_size = int(data.get("batch_size", DATA_DEFAULTS["batch_size"]))
    keep_aspect = bool(data.get("keep_aspect", False))
    return TrainedModel(module.eval(), training_size, run_name, batch_size, keep_aspect)
