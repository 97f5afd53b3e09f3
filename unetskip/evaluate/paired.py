"""Two models on the same images: per-image differences and a paired bootstrap interval of the
difference (B - A) of every summary score.

The bootstrap resamples images (with replacement, the same images for both models: the pairing), and
recomputes each score on every resample: pooled scores from the resample's summed confusion matrices,
per-image means as the mean over the resample's images. The interval is the 2.5th to 97.5th percentile
of the resampled differences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from unetskip.evaluate.scores import Evaluation, confusion_scores

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Difference:
    """B - A of one score, with the bootstrap interval [low, high] (NaN when the score is undefined)."""

    a: float
    b: float
    low: float
    high: float

    @property
    def difference(self) -> float:
        return self.b - self.a

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0  # False for NaN

    def text(self) -> str:
        """`+0.012 [+0.004, +0.020]`."""
        return f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def resample_weights(num_images: int, samples: int, seed: int) -> torch.Tensor:
    """(samples, N) float64: how often each image is drawn in each bootstrap resample (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    drawn = torch.randint(num_images, (samples, num_images), generator=generator)  # (R, N)
    weights = torch.zeros(samples, num_images, dtype=torch.float64)
    return weights.scatter_add_(1, drawn, torch.ones_like(drawn, dtype=torch.float64))


def weighted_nanmean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """values (N,) with NaN, weights (R, N) -> (R,): each resample's mean over its non-NaN images."""
    valid = ~values.isnan()
    total = (weights * torch.where(valid, values, 0.0)).sum(1)
    count = (weights * valid).sum(1)
    return torch.where(count > 0, total / count.clamp(min=1e-12), torch.nan)


def quantiles(values: torch.Tensor) -> tuple[float, float]:
    """The central CONFIDENCE interval of (R,) values, NaN resamples left out."""
    values = values[~values.isnan()]
    if values.numel() == 0:
        return float("nan"), float("nan")
    tail = (1 - CONFIDENCE) / 2
    low, high = torch.quantile(values, torch.tensor([tail, 1 - tail], dtype=values.dtype))
    return float(low), float(high)


def paired_differences(
    a: Evaluation, b: Evaluation, samples: int = 1000, seed: int = 0
) -> dict[str, dict[str, Difference]]:
    """`pooled` and `per_image` -> score key -> B - A with its paired bootstrap interval.

    Raises:
        ValueError: the two evaluations are not of the same images.
    """
    if a.paths != b.paths:
        raise ValueError("paired_differences: the two evaluations hold different images")
    names: Sequence[str] = a.class_names
    weights = resample_weights(len(a), samples, seed)  # (R, N)
    result: dict[str, dict[str, Difference]] = {"pooled": {}, "per_image": {}}
    stacks = [evaluation.confusion_stack().double() for evaluation in (a, b)]  # (N, C, C) each
    point = [confusion_scores(stack.sum(0), names) for stack in stacks]
    resampled = [confusion_scores(torch.einsum("rn,nij->rij", weights, stack), names) for stack in stacks]
    for key in point[0]:
        low, high = quantiles(resampled[1][key] - resampled[0][key])
        result["pooled"][key] = Difference(float(point[0][key]), float(point[1][key]), low, high)
    image_scores = [a.image_scores(), b.image_scores()]
    for key in image_scores[0]:
        values = [scores[key] for scores in image_scores]  # (N,) each
        means = [weighted_nanmean(v, weights) for v in values]
        low, high = quantiles(means[1] - means[0])
        result["per_image"][key] = Difference(
            float(values[0].nanmean()), float(values[1].nanmean()), low, high
        )
    return result


def paired_rows(a: Evaluation, b: Evaluation, keys: Sequence[str]) -> list[dict[str, object]]:
    """One dict per image: its path and, for each score key, A, B and B - A."""
    scores = [a.image_scores(), b.image_scores()]
    rows = []
    for n, path in enumerate(a.paths):
        row: dict[str, object] = {"path": path}
        for key in keys:
            first, second = float(scores[0][key][n]), float(scores[1][key][n])
            row |= {f"{key} A": first, f"{key} B": second, f"{key} B-A": second - first}
        rows.append(row)
    return rows
