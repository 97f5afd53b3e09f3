"""`unetskip score PRED_DIR --truth DIR`: masks that any tool wrote, scored as `evaluate` scores a
checkpoint (the same summary.json, per_image.csv, confusion matrix and worst images).

    # Oxford-IIIT Pet: the trimaps of a split (pet = pet + border, the binary mask mode)
    python -m unetskip score masks_test --truth ../shared/data/oxford-iiit-pet
    # your own masks: class names and ignore value from flags, or from a config's data.init_args
    python -m unetskip score predicted/ --truth data/own/masks --images data/own/images \
        --class_names background foreground

Predictions (`<stem>.png`, class indices) pair with true masks by relative path and stem; a missing,
extra or wrong-sized mask stops the scoring with the file named (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import get_args

import yaml

from unetskip.data.oxford_pet import MASK_MODES, class_names_for
from unetskip.evaluate.mask_pairs import MaskReader, TruthFormat, is_oxford, pair_masks
from unetskip.evaluate.report import Report
from unetskip.evaluate.report_files import prepare_output
from unetskip.evaluate.scores import Evaluation


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unetskip score", description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", type=Path, metavar="PRED_DIR", help="The predicted masks' folder.")
    parser.add_argument("--truth", type=Path, required=True, help="True masks, or an Oxford-IIIT Pet folder.")
    parser.add_argument(
        "--truth_format",
        choices=get_args(TruthFormat),
        default="auto",
        help="auto: oxford_trimap when --truth holds annotations/trimaps, else masks.",
    )
    parser.add_argument(
        "--split", default="test", help="Oxford-IIIT Pet: annotations/<split>.txt (default test)."
    )
    parser.add_argument(
        "--mask_mode", choices=MASK_MODES, help="Oxford-IIIT Pet: how trimaps become classes."
    )
    parser.add_argument("--class_names", nargs="+", help="The classes in class-index order.")
    parser.add_argument("--ignore_index", type=int, help="The true-mask value that counts nowhere (255).")
    parser.add_argument("--config", type=Path, help="A config (a run's config.yaml): its data.init_args.")
    parser.add_argument("--images", type=Path, help="The photos, paired by stem, for the galleries.")
    parser.add_argument(
        "--output", type=Path, help="The folder to write (default: PRED_DIR-score beside it)."
    )
    parser.add_argument("--overwrite", action="store_true", help="Reuse an existing --output.")
    parser.add_argument("--sort_by", default="iou_macro", help="The score that ranks images (iou/pet, ...).")
    parser.add_argument("--num_worst", type=int, default=16, help="Images in worst.png.")
    return parser


def data_settings(config: Path | None) -> dict:
    """`data.init_args` of a config file ({} without one)."""
    if config is None:
        return {}
    try:
        content = yaml.safe_load(config.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"--config {config} cannot be read: {error}") from error
    return dict((content.get("data") or {}).get("init_args") or {})


def score_main(argv: Sequence[str] | None = None) -> int:
    """Run `unetskip score` on `argv`; return the exit status (0, or 2 on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        lines = score(args)
    except (FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def score(args: argparse.Namespace) -> list[str]:
    """Scores and writes; returns the console summary."""
    settings = data_settings(args.config)
    trimaps = args.truth_format == "oxford_trimap" or (args.truth_format == "auto" and is_oxford(args.truth))
    mask_mode = args.mask_mode or settings.get("mask_mode", "binary")
    class_names = (
        args.class_names
        or settings.get("class_names")
        or (class_names_for(mask_mode) if trimaps else ["background", "foreground"])
    )
    ignore_index = args.ignore_index if args.ignore_index is not None else settings.get("ignore_index", 255)
    folder = args.output or args.predictions.resolve().with_name(args.predictions.resolve().name + "-score")
    if folder.exists() and not args.overwrite:
        raise FileExistsError(f"the output folder {folder} exists: pass --overwrite or choose --output")
    pairs = pair_masks(args.predictions, args.truth, args.truth_format, args.split, args.images)
    reader = MaskReader(class_names, ignore_index, trimaps, mask_mode)
    evaluation = Evaluation(class_names, ignore_index)
    for pair in pairs:
        evaluation.add(pair.path, *reader.read(pair))

    def render(indices: Sequence[int]) -> list:
        views = []
        for index in indices:
            pred, truth, _ = reader.read(pairs[index])
            views.append((reader.photo(pairs[index], tuple(truth.shape)), truth.numpy(), [pred.numpy()]))
        return views

    about = {
        "predictions": str(args.predictions),
        "truth": str(args.truth),
        "truth_format": "oxford_trimap" if trimaps else "masks",
        "split": args.split if trimaps else None,
        "mask_mode": mask_mode if trimaps else None,
        "size": "original",
    }
    report = Report(folder, evaluation, about, render, args.sort_by, args.num_worst)
    prepare_output(folder, args.overwrite)
    return report.write()
