"""The benchmark's printed report: a header naming the machine and settings, and markdown tables."""

from __future__ import annotations

import platform
from pathlib import Path

import lightning
import torch

from unetskip.bench.loader import LoaderResult
from unetskip.bench.overhead import OverheadResult
from unetskip.bench.real_fit import RealFitResult
from unetskip.bench.settings import Settings
from unetskip.bench.throughput import ModelResult
from unetskip.training.acceleration import cpu_bf16_flags

MODEL_COLUMNS = (
    "model",
    "params (M)",
    "GMACs/img",
    "train img/s",
    "train vs {base}",
    "infer img/s",
    "infer vs {base}",
    "peak MiB",
    "mem vs {base}",
    "warm-up s",
    "layout",
)

REAL_FIT_COLUMNS = ("data", "workers", "fit img/s", "fit vs network alone", "setup s", "cache MiB")
NETWORK_ALONE = "network alone (fixed batch)"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def header(settings: Settings) -> list[str]:
    memory = (
        "CUDA max allocated during a training step"
        if settings.device.type == "cuda"
        else "CPU peak RSS during a training step minus the RSS before the model was built"
    )
    return [
        f"torch {torch.__version__}, lightning {lightning.__version__}, python {platform.python_version()}",
        f"device: {settings.device} ({device_name(settings.device)}), "
        f"torch threads {torch.get_num_threads()}"
        + (
            f", CPU bf16 instructions: {', '.join(cpu_bf16_flags()) or 'none found'}"
            if settings.device.type == "cpu"
            else ""
        ),
        f"batch {settings.batch_size}, image {settings.image_size}x{settings.image_size}, "
        f"precision {settings.precision}, channels_last {settings.channels_last}, "
        f"torch.compile {settings.compile}",
        f"timing: {settings.warmup} warm-up steps, then the median of {settings.repeats} repeats of "
        f"{settings.steps} steps; train = forward + loss + backward + optimizer step on a fixed random "
        "batch, infer = forward in eval mode",
        f"memory: {memory}; MACs: one forward pass of one image",
    ]


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base > 0 else "n/a"


def model_table(results: list[ModelResult], baseline: str) -> list[str]:
    base = next(r for r in results if r.name == baseline)
    columns = [c.format(base=baseline) for c in MODEL_COLUMNS]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in results:
        cells = [
            r.name,
            f"{r.params_m:.2f}",
            f"{r.gmacs:.2f}",
            f"{r.train_img_s:.1f}",
            ratio(r.train_img_s, base.train_img_s),
            f"{r.infer_img_s:.1f}",
            ratio(r.infer_img_s, base.infer_img_s),
            f"{r.peak_mib:.0f}",
            ratio(r.peak_mib, base.peak_mib),
            f"{r.warmup_s:.1f}",
            r.layout,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def overhead_lines(result: OverheadResult) -> list[str]:
    return [
        f"Lightning overhead ({result.name}, same module and batches): plain loop "
        f"{result.plain_img_s:.1f} img/s, Trainer.fit {result.lightning_img_s:.1f} img/s, overhead "
        f"{100 * result.overhead:+.1f}%"
    ]


def loader_lines(result: LoaderResult, model: ModelResult) -> list[str]:
    margin = result.img_s / model.train_img_s
    bound = "the model" if margin >= 1 else "the data loader"
    return [
        f"Data: train loader alone {result.img_s:.1f} img/s ({result.num_workers} workers, pin_memory "
        f"{result.pin_memory}) vs {model.name} training {model.train_img_s:.1f} img/s: loader/model "
        f"{margin:.2f}; training is bounded by {bound}",
        f"Per sample in one process: decode (JPEG + trimap PNG) {result.decode_ms:.1f} ms of "
        f"{result.sample_ms:.1f} ms ({100 * result.decode_ms / result.sample_ms:.0f}%)",
    ]


def real_fit_lines(results: list[RealFitResult], model: ModelResult, settings: Settings) -> list[str]:
    """The real-fit table: each data setting's Trainer.fit img/s beside the network alone's."""
    lines = [
        f"Real fit ({model.name}: Trainer.fit on the DataModule's train loader and its workers, "
        f"{settings.warmup} warm-up + {settings.steps} timed steps, no validation) vs the network alone:",
        "| " + " | ".join(REAL_FIT_COLUMNS) + " |",
        "|" + "---|" * len(REAL_FIT_COLUMNS),
    ]
    for r in results:
        cells = [
            "data.cache" if r.cache else "decoded every step",
            str(r.num_workers),
            f"{r.img_s:.1f}",
            ratio(r.img_s, model.train_img_s),
            f"{r.setup_s:.1f}",
            f"{r.cache_mib:.0f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    alone = [NETWORK_ALONE, "-", f"{model.train_img_s:.1f}", "1.00", "-", "-"]
    return [*lines, "| " + " | ".join(alone) + " |"]
