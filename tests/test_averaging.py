"""unetskip.training.EMAWeights: which weights checkpoints hold and evaluation uses."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from unetskip.training.averaging import EMAWeights


def fit_with_average(tmp_path, decay: float) -> tuple[L.Trainer, BoringModel, dict]:
    model = BoringModel()
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=6,
        limit_val_batches=1,
        callbacks=[EMAWeights(decay=decay), ModelCheckpoint(dirpath=tmp_path)],
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model)
    checkpoint = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=False)
    return trainer, model, checkpoint


def test_checkpoint_holds_the_average_and_the_raw_weights(tmp_path):
    _, model, checkpoint = fit_with_average(tmp_path, decay=0.5)
    average, raw = checkpoint["state_dict"]["layer.weight"], checkpoint["current_model_state"]["layer.weight"]
    assert not torch.equal(average, raw)
    # after fit the model holds the average, as validation did
    assert torch.equal(model.layer.weight.detach(), average)


def test_test_after_fit_in_the_same_process_evaluates_the_average(tmp_path):
    trainer, model, checkpoint = fit_with_average(tmp_path, decay=0.5)
    with torch.no_grad():
        model.layer.weight.zero_()
    trainer.test(model, ckpt_path=trainer.checkpoint_callback.best_model_path, verbose=False)
    assert torch.equal(model.layer.weight.detach(), checkpoint["state_dict"]["layer.weight"])


def test_decay_zero_keeps_the_raw_weights(tmp_path):
    _, _, checkpoint = fit_with_average(tmp_path, decay=0.0)
    assert torch.equal(
        checkpoint["state_dict"]["layer.weight"], checkpoint["current_model_state"]["layer.weight"]
    )


@pytest.mark.parametrize("decay", [1.0, -0.1, 1.5])
def test_bad_decay_is_refused(decay):
    with pytest.raises(ValueError, match="decay must be in"):
        EMAWeights(decay=decay)
