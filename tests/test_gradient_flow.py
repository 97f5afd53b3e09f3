"""Per-stage gradient norms: which module is which scale, the norm itself, and bad settings."""

from __future__ import annotations

import lightning as L
import pytest
import segmentation_models_pytorch as smp
import torch

from unetskip.models import UNet
from unetskip.training.gradient_flow import StageGradientNorms, gradient_norm, stage_modules
from unetskip.training.module import SegmentationModule


def test_stage_index_is_the_scale_of_the_stage_output():
    net = UNet(base_channels=4, depth=3)
    stages = stage_modules(net)
    assert sorted(stages) == [f"decoder_{i}" for i in range(3)] + [f"encoder_{i}" for i in range(4)]
    shapes = {}
    for name, module in stages.items():
        module.register_forward_hook(lambda m, args, out, name=name: shapes.__setitem__(name, out.shape))
    net(torch.randn(1, 3, 32, 32))
    for name, shape in shapes.items():
        scale = int(name.rsplit("_", 1)[1])
        assert shape[1:] == (4 * 2**scale, 32 // 2**scale, 32 // 2**scale), name


def test_gradient_norm_is_the_l2_norm_over_all_parameters_of_the_stage():
    stage = UNet(base_channels=4, depth=2).encoder[1]
    assert gradient_norm(stage).item() == 0.0  # no gradient yet
    stage(torch.randn(2, 4, 8, 8)).square().sum().backward()
    expected = torch.cat([p.grad.flatten() for p in stage.parameters()]).norm()
    torch.testing.assert_close(gradient_norm(stage), expected)


def trainer(log_every_n_steps: int) -> L.Trainer:
    return L.Trainer(
        logger=False,
        log_every_n_steps=log_every_n_steps,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_a_network_without_stage_lists_warns_and_logs_nothing():
    module = SegmentationModule(smp.Unet("resnet18", encoder_weights=None, classes=2))
    callback = StageGradientNorms()
    with pytest.warns(UserWarning, match="Unet has no `encoder` and `decoder` ModuleLists"):
        callback.setup(trainer(5), module, "fit")
    assert callback.stages == {}


@pytest.mark.parametrize(("every_n_steps", "expected"), [(None, 5), (10, 10), (0, 0)])
def test_interval_follows_log_every_n_steps_unless_given(every_n_steps, expected):
    callback = StageGradientNorms(every_n_steps)
    callback.setup(trainer(5), SegmentationModule(UNet(base_channels=4, depth=1)), "fit")
    assert callback.interval == expected
    assert len(callback.stages) == (3 if expected else 0)


@pytest.mark.parametrize("every_n_steps", [-1, 2.5, "10"])
def test_bad_interval_is_refused(every_n_steps):
    with pytest.raises(ValueError, match="every_n_steps must be an int >= 0 or None"):
        StageGradientNorms(every_n_steps)


def test_interval_that_lightning_would_not_write_is_refused():
    with pytest.raises(ValueError, match="every_n_steps=3 must be a multiple of trainer.log_every_n_steps=5"):
        StageGradientNorms(3).setup(trainer(5), SegmentationModule(UNet(base_channels=4, depth=1)), "fit")
