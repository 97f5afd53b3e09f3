"""What both `evaluate` and `score` write for their evaluations: the folder's files, the galleries, the
console summary, and the same to a W&B run."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.loggers import Logger, WandbLogger

from unetskip.evaluate.gallery import GalleryRow, evaluation_tiles, gallery_html, write_gallery
from unetskip.evaluate.paired import Difference, paired_differences, paired_rows
from unetskip.evaluate.report_files import (
    class_table,
    effect_table,
    worst_lines,
    write_confusion,
    write_json,
    write_rows,
)
from unetskip.evaluate.scores import Evaluation, score_keys

# What a gallery needs of image i of an evaluation: (photo (H, W, 3) uint8, truth (H, W), predictions).
Render = Callable[[Sequence[int]], list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]]]


@dataclass
class Report:
    """One evaluation (`a`) or two of the same images (`a`, `b`) and where to write them.

    `about` goes into summary.json as it is (checkpoints, data, split, size); `skipped` lists the
    (path, reason) of every sample that could not be read; `render` draws the images of a gallery.
    """

    folder: Path
    a: Evaluation
    about: dict[str, Any]
    render: Render
    sort_by: str = "iou_macro"
    num_worst: int = 16
    b: Evaluation | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    bootstrap_samples: int = 1000
    seed: int = 0
    model_names: tuple[str, str] = ("A", "B")

    def __post_init__(self) -> None:
        keys = score_keys(self.a.class_names)
        if self.sort_by not in keys:
            raise ValueError(f"--sort_by {self.sort_by!r} is not a score; the scores are {', '.join(keys)}")

    def summary(self) -> dict[str, Any]:
        """The content of summary.json."""
        content = self.about | {
            "class_names": self.a.class_names,
            "num_images": len(self.a),
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
        }
        content |= self.a.summary()
        if self.b is not None:
            content["compare"] = self.b.summary()
            content["difference"] = {
                kind: {key: difference_dict(d) for key, d in scores.items()}
                for kind, scores in self.differences().items()
            }
            content["difference"]["bootstrap"] = {"samples": self.bootstrap_samples, "seed": self.seed}
        return content

    def differences(self) -> dict[str, dict[str, Difference]]:
        return paired_differences(self.a, self.b, self.bootstrap_samples, self.seed)

    def ranked(self, evaluation_scores: Mapping[str, Any], descending: bool = False) -> list[int]:
        """Image indices by the `sort_by` score, lowest first (highest with `descending`), NaN last."""
        values = evaluation_scores[self.sort_by].tolist()
        finite = [i for i, v in enumerate(values) if not math.isnan(v)]
        order = sorted(finite, key=lambda i: values[i], reverse=descending)
        return order + [i for i, v in enumerate(values) if math.isnan(v)]

    def write(self, loggers: Sequence[Logger] = ()) -> list[str]:
        """Writes every file; logs to the W&B loggers among `loggers`; returns the console summary."""
        summary = self.summary()
        write_json(self.folder / "summary.json", summary)
        rows = self.a.image_rows()
        write_rows(self.folder / "per_image.csv", rows)
        write_confusion(self.folder, self.a.pooled.confmat, self.a.class_names)
        scores = self.a.image_scores()
        worst = self.ranked(scores)[: self.num_worst]

        def caption(i: int, value: float) -> str:
            return f"{self.a.paths[i]}  {self.sort_by} {value:.3f}"

        sections = [
            (f"The {len(worst)} worst images by {self.sort_by}", "worst", self.rows(worst, caption, scores))
        ]
        lines = [
            f"{len(self.a)} images scored, {len(self.skipped)} skipped",
            *class_table(summary, self.a.class_names),
        ]
        lines += worst_lines([(self.a.paths[i], float(scores[self.sort_by][i])) for i in worst], self.sort_by)
        if self.b is not None:
            delta = {key: self.b.image_scores()[key] - value for key, value in scores.items()}
            write_rows(
                self.folder / "paired.csv", paired_rows(self.a, self.b, score_keys(self.a.class_names))
            )
            half = max(1, self.num_worst // 2)
            for title, name, descending in (("gains", "gains", True), ("losses", "losses", False)):
                chosen = self.ranked(delta, descending)[:half]
                heading = f"The {len(chosen)} largest {title} of B over A in {self.sort_by} (B - A)"
                sections.append((heading, name, self.rows(chosen, caption_delta(self), delta, compare=True)))
            lines += [
                "B - A, pooled, paired bootstrap 95% interval:",
                *effect_table(self.differences(), self.a.class_names),
            ]
        for _, name, gallery_rows in sections:
            write_gallery(gallery_rows, self.folder, name)
        scored = self.about.get("checkpoint") or self.about.get("predictions")
        title = f"{self.about.get('split') or ''} evaluation of {scored}"
        (self.folder / "index.html").write_text(gallery_html(sections, title))
        for logger in loggers:
            if isinstance(logger, WandbLogger):
                log_to_wandb(logger, summary, rows, [name for _, name, _ in sections], self.folder)
        if self.skipped:
            lines.append(f"skipped (could not be read): {', '.join(path for path, _ in self.skipped[:5])}")
        lines.append(f"written to {self.folder} (index.html: the galleries)")
        return lines

    def rows(
        self,
        indices: Sequence[int],
        caption: Callable[[int, float], str],
        scores: Mapping[str, Any],
        compare: bool = False,
    ) -> list[GalleryRow]:
        """The gallery rows of images `indices`: tiles and a caption with their `sort_by` value."""
        rows = []
        names = [f"{name} prediction" for name in self.model_names] if compare else ["prediction"]
        for rank, (index, (image, truth, preds)) in enumerate(
            zip(indices, self.render(indices), strict=True)
        ):
            tiles = evaluation_tiles(image, truth, preds[: len(names)], self.a.ignore_index, names)
            rows.append(
                GalleryRow(f"{rank + 1}. {caption(index, float(scores[self.sort_by][index]))}", tiles)
            )
        return rows


def caption_delta(report: Report) -> Callable[[int, float], str]:
    return lambda i, value: f"{report.a.paths[i]}  {report.sort_by} B-A {value:+.3f}"


def difference_dict(difference: Difference) -> dict[str, float]:
    return {
        "a": difference.a,
        "b": difference.b,
        "b_minus_a": difference.difference,
        "low": difference.low,
        "high": difference.high,
    }


def log_to_wandb(
    logger: WandbLogger,
    summary: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    galleries: Sequence[str],
    folder: Path,
) -> None:
    """The summary's scores into the run's summary (`evaluate/pooled/iou/pet`, ...), the per-image table
    as a W&B Table (`evaluate/per_image`), and each gallery PNG as an image (`evaluate/<gallery>`)."""
    flat = {
        f"evaluate/{kind}/{key}": value
        for kind in ("pooled", "per_image")
        for key, value in summary[kind].items()
    }
    logger.experiment.summary.update(flat | {"evaluate/num_images": summary["num_images"]})
    columns = list(rows[0])
    logger.log_table("evaluate/per_image", columns=columns, data=[[row[c] for c in columns] for row in rows])
    for name in galleries:
        logger.log_image(f"evaluate/{name}", [str(folder / f"{name}.png")])
