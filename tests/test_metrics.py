"""Epoch-level scores against hand-computed values, and the losses."""

from __future__ import annotations

import math

import pytest
import torch

from unetskip.training.losses import SegmentationLoss, lovasz_softmax_loss, soft_dice_loss
from unetskip.training.metrics import SegmentationScores

# Two 2x3 images, 3 classes, 255 = ignore.
TARGET_A = torch.tensor([[0, 0, 1], [1, 1, 255]])
PRED_A = torch.tensor([[0, 1, 1], [1, 0, 2]])  # the last pixel is ignored whatever it predicts
TARGET_B = torch.tensor([[0, 0, 0], [0, 0, 0]])  # no foreground at all
PRED_B = torch.tensor([[0, 0, 0], [0, 0, 0]])


def test_scores_match_hand_computation_with_absent_class():
    scores = SegmentationScores(["background", "pet", "border"], ignore_index=255)
    # Two batches: the epoch accumulates, so batch B (all background) changes the background counts.
    scores.update(PRED_A[None], TARGET_A[None])
    scores.update(PRED_B[None], TARGET_B[None])
    result = scores.compute()
    # Background: tp = 1 + 6 = 7, fp = 1 (pixel (1,1)), fn = 1 (pixel (0,1)).
    assert result["iou/background"].item() == pytest.approx(7 / 9)
    assert result["dice/background"].item() == pytest.approx(14 / 16)
    # Pet: tp = 2, fp = 1 (pixel (0,1)), fn = 1 (pixel (1,1)).
    assert result["iou/pet"].item() == pytest.approx(2 / 4)
    assert result["dice/pet"].item() == pytest.approx(4 / 6)
    # Border: absent from targets and (non-ignored) predictions -> NaN, out of the macro mean.
    assert math.isnan(result["iou/border"].item())
    assert result["iou_macro"].item() == pytest.approx((7 / 9 + 2 / 4) / 2)
    assert result["dice_macro"].item() == pytest.approx((14 / 16 + 4 / 6) / 2)
    # Foreground pooled over both images: intersection 2, union 4.
    assert result["pet_iou_pooled"].item() == pytest.approx(2 / 4)
    # Per image: image A 2/4, image B has no foreground anywhere -> 1.
    assert result["pet_iou_per_image"].item() == pytest.approx((0.5 + 1.0) / 2)


def test_scores_do_not_depend_on_batching():
    torch.manual_seed(0)
    preds = torch.randint(0, 2, (6, 8, 8))
    target = torch.randint(0, 2, (6, 8, 8))
    whole = SegmentationScores(["background", "pet"])
    whole.update(preds, target)
    split = SegmentationScores(["background", "pet"])
    for i in range(0, 6, 4):
        split.update(preds[i : i + 4], target[i : i + 4])
    for key, value in whole.compute().items():
        assert split.compute()[key].item() == pytest.approx(value.item()), key


def test_scores_accept_logits_and_reset():
    scores = SegmentationScores(["background", "pet"])
    logits = torch.zeros(1, 2, 2, 2)
    logits[:, 1] = 1.0  # predict pet everywhere
    scores.update(logits, torch.ones(1, 2, 2, dtype=torch.long))
    assert scores.compute()["iou/pet"].item() == 1.0
    scores.reset()
    scores.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.ones(1, 2, 2, dtype=torch.long))
    assert scores.compute()["iou/pet"].item() == 0.0


def test_scores_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="differ"):
        SegmentationScores(["a", "b"]).update(torch.zeros(1, 2, 2), torch.zeros(1, 3, 3))


@pytest.mark.parametrize("name", ["ce", "dice", "ce+dice", "lovasz", "ce+lovasz"])
def test_losses_ignore_pixels_and_give_gradients(name):
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0, 0] = 255
    loss_fn = SegmentationLoss(name, ignore_index=255)
    loss = loss_fn(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert logits.grad[0, :, 0, 0].abs().sum() == 0  # the ignored pixel gets no gradient
    # Changing the logits of an ignored pixel does not change the loss.
    changed = logits.detach().clone()
    changed[0, :, 0, 0] = torch.tensor([100.0, -100.0, 0.0])
    assert loss_fn(changed, target).item() == pytest.approx(loss.item())


def test_dice_loss_is_zero_for_a_perfect_prediction():
    target = torch.tensor([[[0, 1], [1, 0]]])
    logits = torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-4)


def test_lovasz_loss_is_one_minus_iou_for_hard_predictions():
    target = torch.tensor([[[0, 0, 1, 1], [0, 0, 1, 255]]])
    predicted = torch.tensor([[[0, 1, 1, 1], [0, 0, 0, 0]]])  # the ignored pixel's prediction counts nowhere
    logits = torch.nn.functional.one_hot(predicted, 2).permute(0, 3, 1, 2).float() * 50
    # background: intersection 3 of union 5; pet: intersection 2 of union 4.
    expected = ((1 - 3 / 5) + (1 - 2 / 4)) / 2
    assert lovasz_softmax_loss(logits, target, ignore_index=255).item() == pytest.approx(expected, abs=1e-5)


def test_lovasz_loss_matches_the_reference_implementation():
    from segmentation_models_pytorch.losses import LovaszLoss

    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :2] = 255
    target[target == 2] = 0  # class 2 absent: only the classes present are averaged
    reference = LovaszLoss("multiclass", ignore_index=255)(logits, target)
    assert lovasz_softmax_loss(logits, target, ignore_index=255).item() == pytest.approx(reference.item())


def test_lovasz_loss_of_only_ignored_pixels_is_zero_with_zero_gradients():
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    loss = lovasz_softmax_loss(logits, torch.full((1, 2, 2), 255), ignore_index=255)
    loss.backward()
    assert loss.item() == 0 and logits.grad.abs().sum() == 0


def test_unknown_loss_raises():
    with pytest.raises(ValueError, match="loss must be one of"):
        SegmentationLoss("focal")
