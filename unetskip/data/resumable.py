"""A training loader whose batches are a function of (seed, epoch, position), so it can resume anywhere.

The order of each epoch and the random augmentation of each sample come from the seed and the epoch
number alone, never from a global random state. The same seed therefore gives the same batches in every
run, and a run restarted mid-epoch from a checkpoint continues with exactly the batches that the
uninterrupted run would have seen (Lightning saves the loader's `state_dict` in the checkpoint).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffleSampler(Sampler[tuple[int, int]]):
    """Yields `(index, augmentation_seed)` for each of `num_samples` samples, in a new order every epoch.

    Epoch `e`'s order and seeds depend only on `(seed, e)`. Lightning calls `set_epoch` before each
    epoch; `start` (set by `ResumableDataLoader`) makes the next pass begin at that position.
    """

    def __init__(self, num_samples: int, seed: int) -> None:
        if num_samples < 1:
            raise ValueError(f"EpochShuffleSampler: num_samples must be >= 1, got {num_samples}")
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.num_samples)
        seeds = rng.integers(0, 2**32, self.num_samples)
        start, self.start = self.start, 0
        yield from zip(order[start:].tolist(), seeds[start:].tolist(), strict=True)


class SeededTransforms(Dataset):
    """`dataset[(index, seed)]` is sample `index` of `dataset` with its random transform seeded by `seed`
    (`dataset.transform` is an albumentations `Compose`).

    A plain int index (as under a sampler that Lightning substitutes, e.g. for `overfit_batches`) leaves
    the transform's own random state in charge.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(key, tuple):
            key, seed = key
            self.dataset.transform.set_random_seed(seed)
        return self.dataset[key]


class ResumableDataLoader(DataLoader):
    """A DataLoader over an `EpochShuffleSampler` that knows how many batches of the epoch it has served.

    `state_dict()` -> `{"seed", "epoch", "batches"}`; after `load_state_dict`, the next pass skips the
    batches already served (without loading them). Iteration starts lazily, at the first batch, so it
    always sees the epoch that Lightning set just before. When Lightning substitutes its own sampler
    (`overfit_batches`, several processes), the state is empty and a resumed epoch starts over.
    """

    def __init__(
        self,
        dataset: SeededTransforms,
        sampler: Sampler,
        batch_size: int,
        drop_last: bool = False,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
        )
        self.batches_served = 0
        self._resume_at = 0

    def __iter__(self) -> Iterator[Any]:
        self.batches_served, self._resume_at = self._resume_at, 0
        if isinstance(self.sampler, EpochShuffleSampler):
            self.sampler.start = self.batches_served * self.batch_size
        for batch in super().__iter__():
            # Counted before the training step runs, so a checkpoint written after this batch resumes
            # at the next one.
            self.batches_served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        if not isinstance(self.sampler, EpochShuffleSampler):
            return {}
        return {"seed": self.sampler.seed, "epoch": self.sampler.epoch, "batches": self.batches_served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state and isinstance(self.sampler, EpochShuffleSampler):
            self.sampler.seed = state["seed"]
            self.sampler.set_epoch(state["epoch"])
            self._resume_at = state["batches"]
