"""The folder DataModule adds no difference of its own: Oxford-IIIT Pet converted to the folder layout by
scripts/pets_to_folder.py trains, with the same seed and split, to the same scores as OxfordPetDataModule."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import lightning as L
import pytest

from unetskip.data import OxfordPetDataModule
from unetskip.data.folder import FolderDataModule
from unetskip.models import UNet
from unetskip.training.module import SegmentationModule

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pets_to_folder.py"


def load_script():
    spec = importlib.util.spec_from_file_location("pets_to_folder", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fit_scores(datamodule: L.LightningDataModule) -> dict[str, float]:
    """Validation and test scores after two seeded epochs of a tiny U-Net."""
    L.seed_everything(7)
    model = SegmentationModule(UNet(num_classes=2, base_channels=4, depth=2), datamodule.class_names)
    trainer = L.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        deterministic=True,
    )
    trainer.fit(model, datamodule=datamodule)
    scores = {key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")}
    scores |= trainer.test(model, datamodule=datamodule, verbose=False)[0]
    return scores


def test_converted_oxford_folder_trains_to_the_same_scores(pet_root, tmp_path):
    out = tmp_path / "pets_folder"
    kept = load_script().convert(pet_root, out, "binary", val_fraction=0.25, split_seed=5)
    oxford = OxfordPetDataModule(
        root=str(pet_root),
        image_size=32,
        batch_size=4,
        num_workers=0,
        val_fraction=0.25,
        split_seed=5,
        seed=3,
    )
    folder = FolderDataModule(
        root=str(out), class_names=["background", "pet"], image_size=32, batch_size=4, num_workers=0, seed=3
    )
    oxford.setup("fit")
    folder.setup("fit")
    for split in ("train", "val"):
        assert [s.name for s in oxford.datasets[split].samples] == kept[split]
        assert [s.stem for s in folder.datasets[split].samples] == kept[split]
    expected, got = fit_scores(oxford), fit_scores(folder)
    assert "val/pet_iou_border_band" in expected and "val/pet_iou_border_band" not in got  # Oxford-only
    shared = sorted(set(expected) & set(got))
    assert {"val/dice_macro", "val/loss", "val/iou/pet", "test/dice_macro", "test/pet_iou_per_image"} <= set(
        shared
    )
    assert {key: got[key] for key in shared} == pytest.approx(
        {key: expected[key] for key in shared}, abs=1e-6
    )


def test_conversion_refuses_a_non_empty_output(pet_root, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        load_script().convert(pet_root, tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"
