"""Shared fixtures: a tiny synthetic Oxford-IIIT Pet folder in the official layout; the package installed
as a user gets it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from unetskip.data.oxford_pet import TRIMAP_BACKGROUND, TRIMAP_BORDER, TRIMAP_PET

REPO = Path(__file__).resolve().parents[1]


def write_pet_sample(root: Path, name: str, height: int, width: int, seed: int) -> None:
    """One image with a bright ellipse "pet" on a dark background, and its trimap (border band 2 px)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    cy, cx = rng.uniform(0.35, 0.65) * height, rng.uniform(0.35, 0.65) * width
    ry, rx = rng.uniform(0.2, 0.35) * height, rng.uniform(0.2, 0.35) * width
    radius = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    trimap = np.full((height, width), TRIMAP_BACKGROUND, np.uint8)
    trimap[radius <= 1.15] = TRIMAP_BORDER
    trimap[radius <= 0.85] = TRIMAP_PET
    image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    image[radius <= 1.0] = rng.integers(180, 255, 3, dtype=np.uint8)
    Image.fromarray(image).save(root / "images" / f"{name}.jpg", quality=95)
    Image.fromarray(trimap).save(root / "annotations" / "trimaps" / f"{name}.png")


def make_pet_folder(root: Path, num_trainval: int = 12, num_test: int = 6) -> Path:
    """A folder in the official layout with `num_trainval` + `num_test` samples of varied sizes."""
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    lines = {"trainval": [], "test": []}
    for index in range(num_trainval + num_test):
        split = "trainval" if index < num_trainval else "test"
        name = f"Synthetic_cat_{index}"
        write_pet_sample(root, name, 48 + 4 * (index % 5), 64 - 3 * (index % 4), seed=index)
        lines[split].append(f"{name} 1 1 1")
    for split, split_lines in lines.items():
        (root / "annotations" / f"{split}.txt").write_text("\n".join(split_lines) + "\n")
    return root


# Flags that stop a fit after one training and one validation batch.
ONE_STEP = [
    "--trainer.max_epochs",
    "1",
    "--trainer.limit_train_batches",
    "1",
    "--trainer.limit_val_batches",
    "1",
]


def tiny_flags(pet_root: Path, batch_size: int = 4) -> list[str]:
    """Flags that shrink an experiment to seconds on a CPU: `pet_root`'s images at 32 px, no download, no
    loader workers, a U-Net of base width 4 and depth 2."""
    return [
        "--data.root",
        str(pet_root),
        "--data.download",
        "false",
        "--data.image_size",
        "32",
        "--data.batch_size",
        str(batch_size),
        "--data.num_workers",
        "0",
        "--model.net.base_channels",
        "4",
        "--model.net.depth",
        "2",
    ]


@pytest.fixture(scope="session")
def pet_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A read-only-by-convention synthetic dataset shared by the whole session."""
    return make_pet_folder(tmp_path_factory.mktemp("data") / "oxford-iiit-pet")


@pytest.fixture(scope="session", autouse=True)
def offline_wandb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test reaches W&B's servers or writes W&B files into the repository: no API key and no
    WANDB_MODE (so W&B loggers go offline on their own), and wandb's own folders in a temporary one."""
    home = tmp_path_factory.mktemp("wandb_home")
    with pytest.MonkeyPatch.context() as patch:
        for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL"):
            patch.delenv(name, raising=False)
        patch.setenv("NETRC", str(home / "netrc"))  # no such file: no key from `wandb login`
        for name in ("WANDB_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR"):
            patch.setenv(name, str(home / name.lower()))
        yield


@pytest.fixture(scope="session")
def installed_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process that imports unetskip as `pip install .` installs it (a wheel, no
    link to this checkout): the project's files are copied as the Dockerfile copies them, installed
    without dependencies (this venv has them) into a folder of their own, which goes first on PYTHONPATH."""
    source, target = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("installed")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for name in ("unetskip", "configs", "notebooks"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
    subprocess.run([*install, str(source)], check=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = [sys.executable, "-c", "import unetskip; print(unetskip.__file__)"]
    imported = subprocess.run(probe, env=env, cwd=target.parent, capture_output=True, text=True, check=True)
    assert Path(imported.stdout.strip()).is_relative_to(target), imported.stdout
    return env
