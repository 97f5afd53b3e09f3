"""The options of `unetskip predict` (segment a folder of images with a checkpoint, one mask per image).

The predict subcommand declares its parts like fit declares its loggers (see `add_predict_arguments`):
its options configure an `ImageFolderDataModule` (`--input`, `--mode`), the model's `Inferer` (`--mode`,
`--tile_size`, `--tile_overlap`, `--tta`) and a `MaskWriter` callback (`--output`, `--overlay`,
`--probabilities`, `--overwrite`); the checkpoint gives the model, its classes and the training size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from jsonargparse import ActionYesNo
from jsonargparse.typing import PositiveInt, restricted_number_type
from lightning.pytorch.cli import LightningArgumentParser

from unetskip.data.image_folder import ImageFolderDataModule
from unetskip.data.image_size import parse_image_size
from unetskip.predict.inferer import Inferer
from unetskip.predict.writer import MaskWriter

PredictMode = Literal["resize", "native", "tiled"]
TileOverlap = restricted_number_type("TileOverlap", float, [(">=", 0.0), ("<", 1.0)])


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
    training_side = max(parse_image_size(image_size))
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
