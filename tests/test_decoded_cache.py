"""`data.cache`: decoded images and masks held in memory; the same augmentations, no stale pixels, a bound.

Tiny synthetic datasets (48-64 px images): at `image_size` 32 the cache keeps them as decoded (2 x 32 >=
every shorter side), so batches equal those without it exactly; at 16 it shrinks them to 32 px on their
shorter side, and the augmented batches keep the same pixel statistics.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from own_data import write_own_folder
from PIL import Image

from unetskip.data import FolderDataModule, OxfordPetDataModule
from unetskip.data import segmentation_datamodule as datamodule_module
from unetskip.data.decoded_cache import resize_arrays, train_cached_size
from unetskip.data.folder import UnreadableSampleError
from unetskip.data.segmentation_datamodule import default_num_workers


@pytest.fixture(scope="module")
def own_root(tmp_path_factory):
    return write_own_folder(tmp_path_factory.mktemp("own"), count=12)


def build(kind: str, root, cache: bool, image_size: int = 32, num_workers: int = 0, **options):
    common = {
        "image_size": image_size,
        "batch_size": 4,
        "num_workers": num_workers,
        "seed": 3,
        "cache": cache,
    }
    if kind == "pet":
        return OxfordPetDataModule(root=str(root), **common, **options)
    return FolderDataModule(root=str(root), check_workers=0, **common, **options)


@pytest.fixture(params=["pet", "folder"])
def kind_root(request, pet_root, own_root):
    return request.param, pet_root if request.param == "pet" else own_root


def epoch_batches(datamodule, epoch: int) -> list[dict]:
    loader = datamodule.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return list(loader)


def assert_same_batches(first: list[dict], second: list[dict]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys() and a["name"] == b["name"]
        for key in ("image", "mask", "border"):
            if key in a:
                assert torch.equal(a[key], b[key]), key


def test_the_cache_holds_every_train_and_val_sample_in_setup(kind_root):
    kind, root = kind_root
    datamodule = build(kind, root, cache=True)
    datamodule.setup("fit")
    for split in ("train", "val"):
        dataset = datamodule.datasets[split]
        assert dataset.cache is datamodule.caches[split]
        assert sorted(dataset.cache.entries) == list(range(len(dataset)))
        arrays = dataset.cache.entries[0].arrays
        keys = {"image", "mask", "border"} if kind == "pet" else {"image", "mask"}
        assert set(arrays) == keys and all(
            a.dtype == np.uint8 and not a.flags.writeable for a in arrays.values()
        )
    # val is cached at the evaluation size itself, so evaluation sees the same pixels
    assert datamodule.datasets["val"].cache.entries[0].arrays["image"].shape == (32, 32, 3)


def test_same_seed_same_batches_with_and_without_the_cache_in_epochs_0_and_1(kind_root):
    kind, root = kind_root
    plain, cached = build(kind, root, cache=False), build(kind, root, cache=True)
    plain.setup("fit")
    cached.setup("fit")
    for epoch in (0, 1):
        assert_same_batches(epoch_batches(plain, epoch), epoch_batches(cached, epoch))
    assert_same_batches(list(plain.val_dataloader()), list(cached.val_dataloader()))


def test_cached_epochs_are_reproducible_and_differ_from_each_other(pet_root):
    first, second = build("pet", pet_root, cache=True), build("pet", pet_root, cache=True)
    first.setup("fit")
    second.setup("fit")
    epoch_0, epoch_1 = epoch_batches(first, 0), epoch_batches(first, 1)
    assert_same_batches(epoch_0, epoch_batches(second, 0))
    assert_same_batches(epoch_1, epoch_batches(second, 1))
    assert not torch.equal(epoch_0[0]["image"], epoch_1[0]["image"])


def pixel_statistics(datamodule, epochs: int) -> tuple[float, float, np.ndarray]:
    """Mean and std of the augmented images, and the share of each mask value, over `epochs` epochs."""
    images, masks = [], []
    for epoch in range(epochs):
        for batch in epoch_batches(datamodule, epoch):
            images.append(batch["image"].flatten())
            masks.append(batch["mask"].flatten())
    image, mask = torch.cat(images), torch.cat(masks)
    counts = np.bincount(mask.numpy(), minlength=256).astype(float)
    return image.mean().item(), image.std().item(), counts / counts.sum()


@pytest.mark.parametrize("kind", ["pet", "folder"])
def test_shrunk_cache_keeps_the_augmented_pixel_statistics(kind, pet_root, own_root):
    root = pet_root if kind == "pet" else own_root
    plain, cached = (
        build(kind, root, cache=False, image_size=16),
        build(kind, root, cache=True, image_size=16),
    )
    plain.setup("fit")
    cached.setup("fit")
    # the cache shrank the images to 32 px on their shorter side
    assert min(cached.datasets["train"].cache.entries[0].arrays["image"].shape[:2]) == 32
    mean, std, shares = pixel_statistics(plain, epochs=6)
    cached_mean, cached_std, cached_shares = pixel_statistics(cached, epochs=6)
    assert cached_mean == pytest.approx(mean, abs=0.03)
    assert cached_std == pytest.approx(std, rel=0.03)
    assert np.abs(cached_shares - shares).max() < 0.01  # background, foreground and the fill value


def test_train_cached_size_shrinks_only_larger_images_and_resize_keeps_mask_values():
    cached_size = train_cached_size(96)
    assert cached_size((375, 500)) == (192, 256)
    assert cached_size((150, 400)) == (150, 400)
    assert train_cached_size((64, 128))((512, 1024)) == (256, 512)
    mask = np.random.default_rng(0).choice(np.array([0, 1, 255], np.uint8), (50, 70))
    image = np.zeros((50, 70, 3), np.uint8)
    resized = resize_arrays({"image": image, "mask": mask}, (20, 28))
    assert resized["image"].shape == (20, 28, 3) and set(np.unique(resized["mask"])) <= {0, 1, 255}


def rewrite_inverted(path) -> None:
    """Rewrite an image file with other pixels (inverted), in its format, and a later modification time."""
    with Image.open(path) as image:
        inverted, file_format = 255 - np.asarray(image.convert("RGB")), image.format
    stat = path.stat()
    Image.fromarray(inverted).save(path, format=file_format, quality=95)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def test_a_changed_file_is_decoded_again_and_a_removed_one_fails(kind_root, tmp_path):
    kind, root = kind_root
    root = Path(shutil.copytree(root, tmp_path / "data"))
    datamodule = build(kind, root, cache=True)
    datamodule.setup("fit")
    val = datamodule.datasets["val"]  # deterministic: the same sample gives the same pixels
    before = val[0]["image"]
    rewrite_inverted(val.files(0)[0])
    after = val[0]["image"]
    assert not torch.allclose(before, after)
    assert 0 not in val.cache.entries  # the stale entry is dropped
    uncached = build(kind, root, cache=False)
    uncached.setup("fit")
    assert torch.equal(after, uncached.datasets["val"][0]["image"])  # the new pixels, as decoded

    train = datamodule.datasets["train"]
    assert 0 in train.cache.entries
    train.files(0)[1].unlink()  # the mask
    with pytest.raises((RuntimeError, UnreadableSampleError), match="decode"):
        train[0]


def test_a_cache_past_its_bound_says_so_once_and_decodes_the_rest(pet_root, caplog):
    one_sample = 64 * 64 * 5  # image (3 bytes a pixel), mask and border: more than any one sample
    datamodule = build("pet", pet_root, cache=True, cache_max_bytes=3 * one_sample)
    with caplog.at_level(logging.WARNING, logger="unetskip.data.segmentation_datamodule"):
        datamodule.setup("fit")
    lines = [record.getMessage() for record in caplog.records if "data.cache" in record.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert "data.cache_max_bytes" in lines[0] and "val split" in lines[0]
    train = datamodule.datasets["train"]
    assert 0 < len(train.cache.entries) < len(train) and "val" not in datamodule.caches
    assert datamodule.caches["train"].nbytes <= 3 * one_sample
    plain = build("pet", pet_root, cache=False)
    plain.setup("fit")
    assert_same_batches(epoch_batches(plain, 0), epoch_batches(datamodule, 0))


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_a_bad_cache_bound_names_the_key(pet_root, bad):
    with pytest.raises(ValueError, match="data.cache_max_bytes"):
        build("pet", pet_root, cache=True, cache_max_bytes=bad)


def test_forked_workers_read_the_cache(pet_root):
    inline, forked = build("pet", pet_root, cache=True), build("pet", pet_root, cache=True, num_workers=1)
    inline.setup("fit")
    forked.setup("fit")
    assert_same_batches(epoch_batches(inline, 0), epoch_batches(forked, 0))


@pytest.mark.parametrize(
    ("cpus", "processes", "cached", "workers"),
    [
        (2, 1, False, 1),
        (2, 1, True, 0),
        (1, 1, True, 0),
        (3, 1, True, 2),
        (16, 1, True, 15),
        (16, 1, False, 15),
        (16, 8, True, 0),
        (16, 4, True, 3),
        (16, 4, False, 3),
    ],
)
def test_default_workers_follow_cpus_processes_and_the_cache(monkeypatch, cpus, processes, cached, workers):
    monkeypatch.setattr(datamodule_module, "available_cpus", lambda: cpus)
    assert default_num_workers(processes, cached=cached) == workers
