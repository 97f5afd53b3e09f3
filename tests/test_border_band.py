"""The border-band scores: the band itself, hand-computed IoU and accuracy, and the data that feeds them."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from unetskip.data import OxfordPetDataModule
from unetskip.models import UNet
from unetskip.training.metrics import SegmentationScores, border_band
from unetskip.training.module import SegmentationModule


def test_band_grows_the_border_by_width_pixels():
    border = torch.zeros(1, 7, 7, dtype=torch.bool)
    border[0, 3, 3] = True
    assert torch.equal(border_band(border, 0), border)
    band = border_band(border, 2)
    assert band.shape == (1, 7, 7) and band.sum() == 25  # the 5x5 square around (3, 3)
    assert band[0, 1:6, 1:6].all()
    # At the image edge the band is clipped, not wrapped.
    corner = torch.zeros(1, 4, 4, dtype=torch.bool)
    corner[0, 0, 0] = True
    assert border_band(corner, 1).sum() == 4


def test_band_scores_match_hand_computation():
    # One 1x6 image; the border is pixel 2, width 1 -> band = pixels 1, 2, 3.
    target = torch.tensor([[[0, 0, 1, 1, 1, 255]]])
    preds = torch.tensor([[[1, 1, 0, 1, 0, 1]]])
    border = torch.tensor([[[False, False, True, False, False, False]]])
    scores = SegmentationScores(["background", "pet"], ignore_index=255, border_band_width=1)
    scores.update(preds, target, border)
    result = scores.compute()
    # Band pixels: 1 (target 0, pred 1), 2 (1, 0), 3 (1, 1): pet intersection 1, union 3, correct 1.
    assert result["pet_iou_border_band"].item() == pytest.approx(1 / 3)
    assert result["accuracy_border_band"].item() == pytest.approx(1 / 3)
    # The band pools over the epoch: a second image, all correct, border at the ignored pixel's side.
    scores.update(
        torch.tensor([[[0, 0, 0, 1, 1, 1]]]),
        torch.tensor([[[0, 0, 0, 1, 1, 255]]]),
        torch.tensor([[[False, False, False, False, False, True]]]),
    )
    result = scores.compute()
    # Adds pixel 4 only (pixel 5 is ignored): pet intersection 2, union 4, correct 2 of 4.
    assert result["pet_iou_border_band"].item() == pytest.approx(2 / 4)
    assert result["accuracy_border_band"].item() == pytest.approx(2 / 4)


def test_band_scores_are_absent_without_a_border_and_bad_input_is_rejected():
    scores = SegmentationScores(["background", "pet"])
    scores.update(torch.zeros(1, 3, 3, dtype=torch.long), torch.zeros(1, 3, 3, dtype=torch.long))
    assert "pet_iou_border_band" not in scores.compute()
    with pytest.raises(ValueError, match="border"):
        scores.update(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3), torch.zeros(1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="border_band_width"):
        SegmentationScores(["background", "pet"], border_band_width=-1)


@pytest.mark.parametrize("mode", ["binary", "binary_ignore_border", "trimap"])
def test_batches_carry_the_trimap_border_in_every_mask_mode(pet_root, mode):
    dm = OxfordPetDataModule(root=str(pet_root), image_size=32, mask_mode=mode, num_workers=0, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    border = batch["border"]
    assert border.shape == batch["mask"].shape and border.dtype == torch.bool
    assert border.any() and not border.all()
    if mode == "binary":  # the border is merged into the pet: the batch's border is the only trace
        assert (batch["mask"][border] == 1).all() and (batch["mask"][~border] == 1).any()
    else:  # the border has its own value in the mask, exactly where the batch's border is
        assert torch.equal(border, batch["mask"] == (255 if mode == "binary_ignore_border" else 2))


def test_module_logs_band_scores_from_the_batch(pet_root, tmp_path):
    dm = OxfordPetDataModule(root=str(pet_root), image_size=32, num_workers=0, batch_size=4)
    module = SegmentationModule(UNet(base_channels=4, depth=2), border_band_width=2)
    trainer = L.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    metrics = trainer.validate(module, dm, verbose=False)[0]
    assert 0.0 <= metrics["val/pet_iou_border_band"] <= 1.0
    assert 0.0 <= metrics["val/accuracy_border_band"] <= 1.0
    assert module.val_scores.border_band_width == 2
