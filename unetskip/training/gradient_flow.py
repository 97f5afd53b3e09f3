"""Gradient flow per U-Net stage: how much gradient reaches each encoder and decoder stage."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import nn


def stage_modules(net: nn.Module) -> dict[str, nn.Module]:
    """`{"encoder_0": ..., "decoder_0": ...}`, indexed by scale (0 = full resolution).

    `net` must hold `encoder` and `decoder` as `nn.ModuleList`s, the encoder from full resolution down
    and the decoder in the order it runs (deepest first, so its last stage works at scale 0), as
    `unetskip.models.UNet` does. Any other network (e.g. segmentation_models_pytorch's, whose encoders
    have no common list of stages) gives an empty dict.
    """
    encoder, decoder = getattr(net, "encoder", None), getattr(net, "decoder", None)
    if not isinstance(encoder, nn.ModuleList) or not isinstance(decoder, nn.ModuleList):
        return {}
    stages = {f"encoder_{i}": stage for i, stage in enumerate(encoder)}
    stages |= {f"decoder_{len(decoder) - 1 - j}": stage for j, stage in enumerate(decoder)}
    return stages


def gradient_norm(module: nn.Module) -> torch.Tensor:
    """The L2 norm of the gradients of all of `module`'s parameters (0 when none has a gradient)."""
    norms = [p.grad.detach().norm() for p in module.parameters() if p.grad is not None]
    if not norms:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(norms))


class StageGradientNorms(L.Callback):
    """Logs `grad_norm/encoder_<i>` and `grad_norm/decoder_<i>` every `every_n_steps` optimizer steps.

    Each value is the L2 norm of the gradients of all parameters of that stage, taken just before the
    optimizer step (after AMP unscaling); `i` is the stage's scale, 0 being full resolution. The values go
    through `LightningModule.log`, so every logger (W&B, CSV, ...) gets them. Lightning writes step values
    every `trainer.log_every_n_steps` steps only, so `every_n_steps` must be a multiple of it; `None` means
    equal to it, and `0` turns the callback off. The network is `pl_module.net`; one without per-stage
    lists (see `stage_modules`) logs nothing and warns once.
    """

    def __init__(self, every_n_steps: int | None = None) -> None:
        if every_n_steps is not None and (not isinstance(every_n_steps, int) or every_n_steps < 0):
            raise ValueError(
                f"StageGradientNorms: every_n_steps must be an int >= 0 or None, got {every_n_steps!r}"
            )
        self.every_n_steps = every_n_steps
        self.interval = 0  # every_n_steps resolved at setup; 0: off
        self.stages: dict[str, nn.Module] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        every = trainer.log_every_n_steps if self.every_n_steps is None else self.every_n_steps
        if every == 0 or stage != "fit":
            return
        if trainer.log_every_n_steps == 0 or every % trainer.log_every_n_steps != 0:
            raise ValueError(
                f"StageGradientNorms: every_n_steps={every} must be a multiple of "
                f"trainer.log_every_n_steps={trainer.log_every_n_steps} (Lightning writes step values only "
                "then): change one of them, or set every_n_steps to 0 to turn gradient norms off"
            )
        net = getattr(pl_module, "net", pl_module)
        self.stages = stage_modules(net)
        self.interval = every
        if not self.stages:
            rank_zero_warn(
                f"StageGradientNorms: {type(net).__name__} has no `encoder` and `decoder` ModuleLists, "
                "so no gradient norms are logged"
            )

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        # Same step count as Lightning's log_every_n_steps: the step being taken is global_step + 1.
        if not self.stages or (trainer.global_step + 1) % self.interval != 0:
            return
        for name, module in self.stages.items():
            pl_module.log(f"grad_norm/{name}", gradient_norm(module), on_step=True, on_epoch=False)
