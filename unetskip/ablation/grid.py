"""The grid of the study: which skips each variant has, and the runs (variant x seed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    """One cell of the grid: `skip_connections` (long skips) and `residual` (short skips) of the UNet."""

    name: str
    skip_connections: bool
    residual: bool


VARIANTS: tuple[Variant, ...] = (
    Variant("long+short", skip_connections=True, residual=True),
    Variant("long", skip_connections=True, residual=False),
    Variant("short", skip_connections=False, residual=True),
    Variant("none", skip_connections=False, residual=False),
)
VARIANT_NAMES: tuple[str, ...] = tuple(variant.name for variant in VARIANTS)

# The effect of one switch, the other held fixed: (what is measured, variant with it, variant without).
EFFECTS: tuple[tuple[str, str, str], ...] = (
    ("long skips, residual blocks", "long+short", "short"),
    ("long skips, plain blocks", "long", "none"),
    ("short skips, with long skips", "long+short", "long"),
    ("short skips, no long skips", "short", "none"),
)


@dataclass(frozen=True)
class StudyRun:
    """One training run of the study: a variant trained from one seed."""

    variant: Variant
    seed: int

    @property
    def name(self) -> str:
        """The run's folder name and W&B run name, e.g. `long+short-seed0`."""
        return f"{self.variant.name}-seed{self.seed}"


def variants_named(names: Sequence[str]) -> list[Variant]:
    """The variants called `names`, in grid order; an unknown name raises ValueError."""
    unknown = sorted(set(names) - set(VARIANT_NAMES))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}: choose among {list(VARIANT_NAMES)}")
    return [variant for variant in VARIANTS if variant.name in names]


def grid_runs(variants: Sequence[Variant], num_seeds: int) -> list[StudyRun]:
    """Every variant with seeds 0 .. num_seeds - 1, seed-major (all variants of seed 0 first), so a
    study stopped half-way has compared every variant on the same seeds."""
    if num_seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {num_seeds}")
    return [StudyRun(variant, seed) for seed in range(num_seeds) for variant in variants]
