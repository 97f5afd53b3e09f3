"""The model and module learn: overfitting a handful of synthetic images, and the module's contract."""

from __future__ import annotations

import pytest
import torch

from unetskip.data import OxfordPetDataModule
from unetskip.models import UNet
from unetskip.training.metrics import SegmentationScores
from unetskip.training.module import SegmentationModule


def small_batch(pet_root, size=32, count=4):
    dm = OxfordPetDataModule(root=str(pet_root), image_size=size, num_workers=0)
    dm.setup("fit")
    samples = [dm.datasets["val"][i % len(dm.datasets["val"])] for i in range(count)]
    return torch.stack([s["image"] for s in samples]), torch.stack([s["mask"] for s in samples])


@pytest.mark.parametrize("skip_connections", [True, False])
def test_overfits_a_handful_of_images(pet_root, skip_connections):
    torch.manual_seed(0)
    images, masks = small_batch(pet_root)
    module = SegmentationModule(UNet(base_channels=8, depth=3, skip_connections=skip_connections))
    optimizer = torch.optim.Adam(module.parameters(), lr=3e-3)
    for _ in range(120):
        loss = module.criterion(module(images), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module.eval()
    scores = SegmentationScores(["background", "pet"])
    with torch.no_grad():
        scores.update(module(images), masks)
    assert scores.compute()["dice_macro"] > 0.95


def test_module_rejects_a_network_with_the_wrong_class_count():
    module = SegmentationModule(UNet(num_classes=3, base_channels=4, depth=1))
    with pytest.raises(ValueError, match="3 channels but the data has 2 classes"):
        module(torch.randn(1, 3, 8, 8))


def test_predict_step_returns_probabilities():
    module = SegmentationModule(UNet(base_channels=4, depth=2)).eval()
    images = [
        torch.randint(0, 256, size, dtype=torch.uint8) for size in [(3, 13, 17), (3, 13, 17), (3, 5, 9)]
    ]
    probs = module.predict_step({"image": images}, 0)
    assert [p.shape for p in probs] == [(2, 13, 17), (2, 13, 17), (2, 5, 9)]
    for p in probs:
        torch.testing.assert_close(p.sum(dim=0), torch.ones(p.shape[1:]))


def test_module_built_in_python_does_not_pickle_the_network():
    module = SegmentationModule(UNet(base_channels=4, depth=1), loss="dice")
    assert "net" not in module.hparams and module.hparams["loss"] == "dice"
