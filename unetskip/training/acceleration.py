"""Speed-ups chosen at run time: bf16 mixed precision on GPUs that support it (a CPU stays at 32-true,
though `cpu_bf16_flags` tells whether it has bf16 instructions), channels_last where convolutions gain
from it, and `torch.compile` as a callback.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn

# Channels-last convolutions use the tensor cores of Volta (compute capability 7.0) and later.
CHANNELS_LAST_MIN_CAPABILITY = (7, 0)
# oneDNN's NHWC backward of a 1x1 convolution with stride > 1 and fewer input channels than its channel
# block (16 with AVX-512, 8 with AVX2) writes out of bounds: a crash or wrong weight gradients
# (uxlfoundation/oneDNN#6035; seen here as a segfault for 4, 8 and 12 channels at 80-160 px).
CPU_NHWC_MIN_STRIDED_1X1_CHANNELS = 16
# Trainer accelerators that may resolve to a CUDA GPU.
CUDA_ACCELERATORS = ("auto", "gpu", "cuda")
# Linux describes the CPU here: x86 lists its instruction sets on "flags" lines, ARM on "Features" lines.
CPUINFO = Path("/proc/cpuinfo")
# Instruction sets that compute bf16 products (oneDNN uses them for bf16 convolutions): x86 AVX512-BF16
# and AMX-BF16, ARMv8.6 BF16. torch has only private checks of its own (torch.cpu._is_avx512_bf16_supported).
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")
# Whether `trainer.precision: null` picks bf16-mixed on a CPU with bf16 instructions. False until the CPU
# recipe's test IoU with bf16-mixed is measured over 3 seeds against 32-true (docs/speed.md).
CPU_BF16_BY_DEFAULT = False


def cpu_bf16_flags(cpuinfo: Path = CPUINFO) -> tuple[str, ...]:
    """The bf16 instruction sets (`CPU_BF16_FLAGS`) that the CPU lists in Linux's `cpuinfo`, in that order;
    () without them or without the file (not Linux: unknown, taken as none)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return ()
    found: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            found.update(value.split())
    return tuple(flag for flag in CPU_BF16_FLAGS if flag in found)


def default_precision(
    precision: str | int | None,
    accelerator: object,
    fp16_fallback: bool = False,
    cpu_bf16: bool = CPU_BF16_BY_DEFAULT,
) -> str | int:
    """`precision` itself when set; for None, `bf16-mixed` when the run will use a CUDA GPU that
    supports bf16; on a CUDA GPU without bf16, `16-mixed` if `fp16_fallback` (inference: no gradients
    to under- or overflow) else `32-true`; `32-true` everywhere else, but with `cpu_bf16` (default
    `CPU_BF16_BY_DEFAULT`: off) `bf16-mixed` on a CPU with bf16 instructions (`cpu_bf16_flags`).

    `accelerator` is the Trainer's accelerator setting ("auto", "gpu", "cuda", "cpu", or an object).
    """
    if precision is not None:
        return precision
    if not (accelerator in CUDA_ACCELERATORS and torch.cuda.is_available()):
        on_cpu = accelerator in ("auto", "cpu")
        return "bf16-mixed" if cpu_bf16 and on_cpu and cpu_bf16_flags() else "32-true"
    if torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "16-mixed" if fp16_fallback else "32-true"


def channels_last_helps(device: torch.device) -> bool:
    """True where NHWC convolutions are faster: a CUDA GPU with tensor cores (compute capability >= 7.0),
    and a CPU (oneDNN; measured with `python -m unetskip bench`, see docs/speed.md)."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= CHANNELS_LAST_MIN_CAPABILITY
    return device.type == "cpu"


def cpu_channels_last_hazard(model: nn.Module) -> str:
    """The first layer of `model` that NHWC on a CPU would break (see above), or "" when there is none."""
    for name, module in model.named_modules():
        if (
            isinstance(module, nn.Conv2d)
            and module.kernel_size == (1, 1)
            and max(module.stride) > 1
            and module.in_channels < CPU_NHWC_MIN_STRIDED_1X1_CHANNELS
        ):
            return f"{name} (1x1, stride {module.stride}, {module.in_channels} input channels)"
    return ""


class ChannelsLast(L.Callback):
    """Stores the model's 4-D weights channels-last (NHWC) where that makes convolutions faster.

    Convolutions then run in NHWC and their outputs stay NHWC, so inputs need no conversion. `on_cpu=False`
    keeps a CPU run contiguous (NCHW), as does a model with a layer that oneDNN's NHWC kernels get wrong
    (with a warning naming it); a device that does not gain from NHWC is never converted.
    """

    def __init__(self, on_cpu: bool = True) -> None:
        self.on_cpu = on_cpu

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        device = trainer.strategy.root_device
        if not channels_last_helps(device) or (device.type == "cpu" and not self.on_cpu):
            return
        hazard = cpu_channels_last_hazard(pl_module) if device.type == "cpu" else ""
        if hazard:
            rank_zero_warn(
                f"ChannelsLast: keeping NCHW on the CPU because of {hazard}: oneDNN's NHWC kernel for it "
                f"fails with fewer than {CPU_NHWC_MIN_STRIDED_1X1_CHANNELS} input channels (oneDNN#6035)"
            )
            return
        pl_module.to(memory_format=torch.channels_last)


class CompileNet(L.Callback):
    """Compiles the module's `net` in place with `torch.compile` (`nn.Module.compile`).

    The state-dict keys do not change, so checkpoints load with or without it. The first training and
    the first evaluation step each pay the compile time (see docs/speed.md).
    `mode`, `backend` and `dynamic` are `torch.compile`'s arguments.
    """

    def __init__(
        self, mode: str | None = None, backend: str = "inductor", dynamic: bool | None = None
    ) -> None:
        self.mode = mode
        self.backend = backend
        self.dynamic = dynamic

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        net = getattr(pl_module, "net", None)
        if not isinstance(net, torch.nn.Module):
            raise ValueError(
                f"CompileNet compiles the LightningModule's `net`, but {type(pl_module).__name__} has none"
            )
        net.compile(mode=self.mode, backend=self.backend, dynamic=self.dynamic)
