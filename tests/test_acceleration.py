"""Run-time speed-ups: the precision choice, channels_last and torch.compile, through the real CLI."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import yaml
from test_cli import tiny_args

from unetskip.cli.lightning_cli import cli_main
from unetskip.models import UNet
from unetskip.training import acceleration
from unetskip.training.acceleration import (
    ChannelsLast,
    CompileNet,
    channels_last_helps,
    cpu_bf16_flags,
    cpu_channels_last_hazard,
    default_precision,
)
from unetskip.training.module import SegmentationModule


@pytest.mark.parametrize(
    ("precision", "accelerator", "cuda", "bf16", "expected", "inference"),
    [
        (None, "auto", False, False, "32-true", "32-true"),  # a CPU machine
        (None, "auto", True, True, "bf16-mixed", "bf16-mixed"),  # an Ampere-or-later GPU
        (None, "gpu", True, True, "bf16-mixed", "bf16-mixed"),
        (None, "cuda", True, False, "32-true", "16-mixed"),  # a GPU without bf16 (e.g. V100)
        (None, "cpu", True, True, "32-true", "32-true"),  # the CPU asked for on a GPU machine
        (None, "cpu", True, False, "32-true", "32-true"),
        ("16-mixed", "auto", True, True, "16-mixed", "16-mixed"),  # an explicit choice always wins
        ("bf16-mixed", "cpu", False, False, "bf16-mixed", "bf16-mixed"),
    ],
)
def test_default_precision(monkeypatch, precision, accelerator, cuda, bf16, expected, inference):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert default_precision(precision, accelerator) == expected
    assert default_precision(precision, accelerator, fp16_fallback=True) == inference  # predict


X86_FLAGS = "fpu vme sse2 avx2 avx512f avx512_bf16 avx512_vnni"
CPUINFOS = [
    (f"processor\t: 0\nflags\t\t: {X86_FLAGS}\n\nprocessor\t: 1\nflags\t\t: {X86_FLAGS}\n", ("avx512_bf16",)),
    ("flags\t\t: fpu avx512_bf16 amx_bf16 amx_tile\n", ("avx512_bf16", "amx_bf16")),
    ("flags\t\t: fpu sse2 avx2 avx512f\n", ()),  # AVX-512 without its bf16 extension
    ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", ("bf16",)),  # ARMv8.6 (e.g. Graviton3)
    ("processor\t: 0\nFeatures\t: fp asimd\nmodel name\t: bf16 lookalike\n", ()),
]


@pytest.mark.parametrize(("cpuinfo", "flags"), CPUINFOS)
def test_cpu_bf16_flags_read_linux_cpuinfo(tmp_path, cpuinfo, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    assert cpu_bf16_flags(path) == flags


def test_cpu_bf16_flags_without_cpuinfo_are_none(tmp_path):
    assert cpu_bf16_flags(tmp_path / "absent") == ()


def test_cpu_bf16_flags_agree_with_torch_on_this_machine():
    """torch's own check is private (torch.cpu._is_avx512_bf16_supported): compared here, never used."""
    torch_check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    if torch_check is None or not acceleration.CPUINFO.is_file():
        pytest.skip("no torch check or no /proc/cpuinfo to compare")
    assert ("avx512_bf16" in cpu_bf16_flags()) == torch_check()


@pytest.mark.parametrize(
    ("accelerator", "flags", "cpu_bf16", "expected"),
    [
        ("auto", ("avx512_bf16",), False, "32-true"),  # the default today: CPUs stay 32-true
        ("cpu", ("amx_bf16",), False, "32-true"),
        ("auto", ("avx512_bf16",), True, "bf16-mixed"),  # once CPU_BF16_BY_DEFAULT is True
        ("cpu", ("bf16",), True, "bf16-mixed"),
        ("cpu", (), True, "32-true"),  # no bf16 instructions
    ],
)
def test_cpu_bf16_default_is_off_until_measured(monkeypatch, accelerator, flags, cpu_bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(acceleration, "cpu_bf16_flags", lambda: flags)
    assert acceleration.CPU_BF16_BY_DEFAULT is False
    assert default_precision(None, accelerator, cpu_bf16=cpu_bf16) == expected
    if not cpu_bf16:
        assert default_precision(None, accelerator) == expected


@pytest.mark.parametrize(
    ("device", "capability", "expected"),
    [
        ("cpu", None, True),
        ("cuda", (8, 0), True),
        ("cuda", (7, 0), True),
        ("cuda", (6, 1), False),
        ("meta", None, False),
    ],
)
def test_channels_last_helps(monkeypatch, device, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *args: capability)
    assert channels_last_helps(torch.device(device)) is expected


def conv_weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p for p in module.parameters() if p.ndim == 4 and min(p.shape[-2:]) > 1]


ONE_SHORT_EPOCH = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2"]
ONE_SHORT_EPOCH += ["--trainer.limit_val_batches", "1"]


def test_cpu_run_is_32_true_and_channels_last(pet_root, tmp_path):
    args = [*tiny_args(pet_root, tmp_path), "--model.net.base_channels", "16", *ONE_SHORT_EPOCH]
    cli = cli_main(["fit", *args])
    assert cli.trainer.precision == "32-true"
    saved = yaml.safe_load(next(tmp_path.rglob("config.yaml")).read_text())
    assert saved["trainer"]["precision"] == "32-true"  # the resolved choice is what the run records
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights(cli.model.net))
    assert torch.isfinite(cli.trainer.callback_metrics["val/dice_macro"])


@pytest.mark.parametrize(
    ("net_args", "hazard"),
    [
        ({"base_channels": 8}, "encoder.1.0.shortcut.0 (1x1, stride (2, 2), 8 input channels)"),
        ({"base_channels": 16}, ""),  # the default: every strided 1x1 convolution has >= 16 inputs
        ({"base_channels": 4, "residual": False}, ""),  # no projection shortcuts at all
    ],
)
def test_cpu_channels_last_hazard_names_the_layer(net_args, hazard):
    assert cpu_channels_last_hazard(UNet(depth=2, **net_args)) == hazard


def test_channels_last_on_cpu_only_where_onednn_gets_it_right():
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False)
    safe = SegmentationModule(UNet(base_channels=16, depth=2))
    ChannelsLast(on_cpu=False).setup(trainer, safe, "fit")
    assert all(w.is_contiguous() for w in conv_weights(safe))
    ChannelsLast().setup(trainer, safe, "fit")
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in conv_weights(safe))

    unsafe = SegmentationModule(UNet(base_channels=4, depth=2))
    with pytest.warns(UserWarning, match=r"keeping NCHW on the CPU because of net\.encoder\.1\.0\.shortcut"):
        ChannelsLast().setup(trainer, unsafe, "fit")
    assert all(w.is_contiguous() for w in conv_weights(unsafe))


def test_compile_callback_trains_and_checkpoints_unchanged_keys(pet_root, tmp_path):
    cli = cli_main(
        [
            "fit",
            *tiny_args(pet_root, tmp_path),
            "--trainer.callbacks+=unetskip.training.CompileNet",
            "--trainer.callbacks.backend=eager",  # dynamo without code generation: quick on a CPU
            *ONE_SHORT_EPOCH,
        ]
    )
    assert cli.model.net._compiled_call_impl is not None  # nn.Module.compile took effect
    assert torch.isfinite(cli.trainer.callback_metrics["val/dice_macro"])
    ckpt = next((tmp_path / "runs").rglob("last.ckpt"))
    keys = torch.load(ckpt, weights_only=True)["state_dict"].keys()
    assert "net.head.weight" in keys and not any("_orig_mod" in key for key in keys)


def test_compile_callback_needs_a_net():
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False)
    with pytest.raises(ValueError, match="has no"):
        CompileNet().setup(trainer, L.LightningModule(), "fit")
