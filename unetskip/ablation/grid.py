"""The grid of the study: which skips each variant has, and the runs (variant x depth x seed)."""

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
    """One training run of the study: a variant trained from one seed, at `blocks_per_stage` blocks in
    every stage (None: the configs' value, for a study without the depth axis)."""

    variant: Variant
    seed: int
    blocks_per_stage: int | None = None

    @property
    def name(self) -> str:
        """The run's folder name and W&B run name, e.g. `long+short-seed0` or `long-blocks4-seed0`."""
        depth = "" if self.blocks_per_stage is None else f"-blocks{self.blocks_per_stage}"
        return f"{self.variant.name}{depth}-seed{self.seed}"


def variants_named(names: Sequence[str]) -> list[Variant]:
    """The variants called `names`, in grid order; an unknown name raises ValueError."""
    unknown = sorted(set(names) - set(VARIANT_NAMES))
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}: choose among {list(VARIANT_NAMES)}")
    return [variant for variant in VARIANTS if variant.name in names]


def check_depths(blocks_per_stage: Sequence[int]) -> None:
    """Depth values must be distinct integers >= 1 (ValueError naming the flag otherwise)."""
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in blocks_per_stage):
        raise ValueError(f"--blocks_per_stage values must be integers >= 1, got {list(blocks_per_stage)}")
    if len(set(blocks_per_stage)) != len(blocks_per_stage):
        raise ValueError(f"--blocks_per_stage values must be distinct, got {list(blocks_per_stage)}")


def grid_runs(
    variants: Sequence[Variant], num_seeds: int, blocks_per_stage: Sequence[int] | None = None
) -> list[StudyRun]:
    """Every variant at every depth with seeds 0 .. num_seeds - 1, seed-major (all variants and depths
    of seed 0 first), so a study stopped half-way has compared every cell on the same seeds.
    `blocks_per_stage=None` leaves the depth to the configs (no depth axis)."""
    if num_seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {num_seeds}")
    depths: Sequence[int | None] = [None] if blocks_per_stage is None else blocks_per_stage
    if blocks_per_stage is not None:
        check_depths(blocks_per_stage)
    return [
        StudyRun(variant, seed, depth)
        for seed in range(num_seeds)
        for depth in depths
        for variant in variants
    ]
