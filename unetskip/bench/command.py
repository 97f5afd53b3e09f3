"""The benchmark's command line: parse options, measure, print the report, optionally write JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from unetskip.bench import report
from unetskip.bench.loader import measure_loader
from unetskip.bench.overhead import measure_overhead
from unetskip.bench.real_fit import measure_real_fits
from unetskip.bench.settings import PRECISIONS, Settings
from unetskip.bench.subjects import load_subject
from unetskip.bench.throughput import measure_models
from unetskip.training.acceleration import channels_last_helps, default_precision

DEFAULT_CONFIGS = ("configs/unet.yaml", "configs/no_skip.yaml", "configs/smp_unet.yaml")
# (normal, --quick): --quick is for a smoke test in seconds, not for numbers.
PRESETS = {
    "image_size": (256, 64),
    "batch_size": (16, 2),
    "warmup": (3, 1),
    "steps": (5, 2),
    "repeats": (5, 2),
    "loader_batches": (20, 2),
    "decode_samples": (50, 4),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="unetskip bench",
        description="Speed, memory and size of the configs' networks, with ratios against a baseline "
        "measured in the same run; Lightning's overhead; the data loader's throughput.",
    )
    parser.add_argument(
        "--configs",
        nargs="+",
        default=list(DEFAULT_CONFIGS),
        help="experiment configs whose model.net to measure; the first one is the default model",
    )
    parser.add_argument("--baseline", default="smp_unet", help="config name (file stem) of the baseline")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument(
        "--precision",
        choices=(*PRECISIONS, "auto"),
        default="auto",
        help="auto: bf16-mixed on a CUDA GPU that supports it, else 32-true (as the training configs)",
    )
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NHWC weights and inputs (default: on a CPU or a tensor-core GPU, as the training configs)",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile each network (nn.Module.compile)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default 16 (2 with --quick)")
    parser.add_argument("--image-size", type=int, default=None, help="square side in px; default 256 (64)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first; default 3 (1)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed repeat; default 5 (2)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats, median; default 5 (2)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument(
        "--data-root", default=None, help="Oxford-IIIT Pet folder for the loader (default: first config's)"
    )
    parser.add_argument("--workers", type=int, default=None, help="loader workers (default: DataModule's)")
    parser.add_argument(
        "--loader-batches", type=int, default=None, help="timed loader batches; default 20 (2)"
    )
    parser.add_argument("--decode-samples", type=int, default=None, help="samples decoded in-process; 50 (4)")
    parser.add_argument("--skip-overhead", action="store_true", help="do not measure Lightning's overhead")
    parser.add_argument("--skip-loader", action="store_true", help="do not measure the data loader")
    parser.add_argument(
        "--fit-workers",
        type=int,
        nargs="+",
        default=None,
        help="loader workers of the real fits, one fit each (default: the DataModule's, with and without "
        "data.cache)",
    )
    parser.add_argument(
        "--skip-real-fit", action="store_true", help="no Trainer.fit on the real data, with and without cache"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and counts: a smoke test in seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write every number to this file")
    args = parser.parse_args(argv)
    for name, (normal, quick) in PRESETS.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else normal)
    return args


def build_settings(args: argparse.Namespace) -> Settings:
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {args.device} but CUDA is not available")
    precision = args.precision
    if precision == "auto":
        precision = default_precision(None, "cuda" if device.type == "cuda" else "cpu")
    channels_last = channels_last_helps(device) if args.channels_last is None else args.channels_last
    return Settings(
        device=device,
        precision=precision,
        channels_last=channels_last,
        compile=args.compile,
        batch_size=args.batch_size,
        image_size=args.image_size,
        warmup=args.warmup,
        steps=args.steps,
        repeats=args.repeats,
    )


def main(argv: Sequence[str] | None = None) -> dict:
    """Run the benchmark, print the report, and return every number (as written by --json)."""
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        settings = build_settings(args)
        subjects = [load_subject(path) for path in args.configs]
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"error: {error}") from error
    names = [s.name for s in subjects]
    if args.baseline not in names:
        raise SystemExit(f"error: --baseline {args.baseline!r} is not among the configs' names {names}")

    lines = report.header(settings)
    print("\n".join(lines), flush=True)
    models = measure_models(subjects, settings)
    table = report.model_table(models, args.baseline) + [""]
    overhead = loader = None
    real_fits: list = []
    if not args.skip_overhead:
        overhead = measure_overhead(subjects[0], settings)
        table += report.overhead_lines(overhead)
    data_root = args.data_root or subjects[0].data_root
    if not args.skip_loader:
        if Path(data_root).is_dir():
            loader = measure_loader(
                subjects[0], data_root, settings, args.workers, args.loader_batches, args.decode_samples
            )
            table += report.loader_lines(loader, models[0])
        else:
            table.append(f"Data: skipped, no dataset at {data_root!r} (pass --data-root)")
    if not args.skip_real_fit:
        if Path(data_root).is_dir():
            workers = args.fit_workers or [args.workers]
            real_fits = measure_real_fits(subjects[0], data_root, settings, workers)
            table += ["", *report.real_fit_lines(real_fits, models[0], settings)]
        else:
            table.append(f"Real fit: skipped, no dataset at {data_root!r} (pass --data-root)")
    print("\n" + "\n".join(table), flush=True)

    results = {
        "header": lines,
        "settings": {
            **dataclasses.asdict(settings),
            "device": str(settings.device),
            "device_name": report.device_name(settings.device),
            "torch_threads": torch.get_num_threads(),
            "baseline": args.baseline,
        },
        "models": [dataclasses.asdict(m) for m in models],
        "lightning_overhead": None
        if overhead is None
        else {**dataclasses.asdict(overhead), "overhead": overhead.overhead},
        "loader": None if loader is None else dataclasses.asdict(loader),
        "real_fit": [dataclasses.asdict(fit) for fit in real_fits],
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return results
