"""Peak memory of a region of code: CUDA max allocated on a GPU, resident set size (RSS) on a CPU."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import threading
from pathlib import Path

import psutil
import torch

MIB = 2**20
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def release_free_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so that RSS reflects live memory."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: RSS may include freed pages
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def current_rss() -> int:
    """Resident set size of this process in bytes."""
    return psutil.Process().memory_info().rss


class PeakMemory:
    """Context manager: `.peak` is the highest memory use inside it, in bytes.

    CUDA: `torch.cuda.max_memory_allocated` (tensors only, not the allocator's cache). CPU: the peak
    RSS, exact where Linux lets the peak be reset (`/proc/self/clear_refs`), else sampled every 2 ms.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        try:
            CLEAR_REFS.write_text("5")  # resets VmHWM, the kernel's peak RSS, to the current RSS
        except OSError:
            self.peak = current_rss()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, current_rss())

    def __exit__(self, *exc_info: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        elif self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            self.peak = max(self.peak, current_rss())
        else:
            self.peak = read_vm_hwm()


def read_vm_hwm() -> int:
    """The kernel's peak RSS of this process (VmHWM) in bytes."""
    for line in STATUS.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM line in {STATUS}")


def baseline_memory(device: torch.device) -> int:
    """Memory in use before a model is built: CUDA allocated bytes, or RSS after releasing free pages."""
    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        return torch.cuda.memory_allocated(device)
    release_free_memory()
    return current_rss()
