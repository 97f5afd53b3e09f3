"""`python -m unetskip ablation run|report|notebook|gradients`: the ablation study's command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from unetskip.ablation.gradients import gradients_at_init, write_gradients
from unetskip.ablation.grid import VARIANT_NAMES, variants_named
from unetskip.ablation.notebook import NOTEBOOK, execute_notebook
from unetskip.ablation.report import write_report
from unetskip.ablation.study import run_study

EPILOG = """examples:
  python -m unetskip ablation run --config configs/unet.yaml --config configs/ablation_cpu.yaml \\
      --seeds 3 --out runs/ablation_cpu
  python -m unetskip ablation run --config configs/unet.yaml --out runs/ablation -- --trainer.max_epochs 20
  python -m unetskip ablation run --config configs/unet.yaml --config configs/ablation_cpu.yaml \
      --blocks_per_stage 1 3 6 --variants short none --seeds 5 --threads 1 --out runs/depth
  python -m unetskip ablation report runs/ablation_cpu
  python -m unetskip ablation report runs/depth --nuisance runs/depth_threads2
  python -m unetskip ablation notebook runs/ablation_cpu    # writes runs/ablation_cpu/ablation.ipynb
  python -m unetskip ablation gradients --config configs/unet.yaml --config configs/ablation_cpu.yaml \
      --blocks_per_stage 1 2 4 6 --out runs/gradients

Flags after `--` go to every run's `fit` unchanged (any LightningCLI flag). Repeating a `run` command
trains only the runs that have not finished; more --seeds, --variants or --blocks_per_stage extend the
study. --threads is a setting of the results folder: the nuisance check is the same study at another
thread count in another folder, passed to `report --nuisance`."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unetskip ablation",
        description="Train the 2x2 grid of long (skip_connections) and short (residual) skips over "
        "seeds, then write runs.csv, summary.md and plots into the results folder.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train the grid (resumable), then write the report")
    run.add_argument("--config", action="append", required=True, help="a base config; repeat to stack")
    run.add_argument("--out", type=Path, required=True, help="the results folder")
    run.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 for every variant (default 3)")
    run.add_argument(
        "--variants", nargs="+", default=list(VARIANT_NAMES), choices=VARIANT_NAMES, help="default: all four"
    )
    run.add_argument(
        "--blocks_per_stage",
        type=int,
        nargs="+",
        help="the depth axis: model.net.blocks_per_stage of every run, e.g. 1 2 4 6 (default: no axis, "
        "the configs' value)",
    )
    run.add_argument(
        "--threads", type=int, help="torch.set_num_threads in every run (default: torch's choice)"
    )
    run.add_argument("--group", help="the W&B group of the runs (default: the results folder's name)")
    report = commands.add_parser("report", help="rewrite the report of a results folder")
    report.add_argument("results_dir", type=Path)
    report.add_argument(
        "--nuisance",
        type=Path,
        help="the results folder of the same study at another --threads: which effects hold there",
    )
    gradients = commands.add_parser(
        "gradients", help="gradient norm per stage at initialisation, per variant and depth (no training)"
    )
    gradients.add_argument("--config", action="append", required=True, help="a base config; repeat to stack")
    gradients.add_argument("--out", type=Path, required=True, help="folder for gradients.csv, .md, .png")
    gradients.add_argument(
        "--blocks_per_stage", type=int, nargs="+", default=[1, 2, 4, 6], help="depths (default: 1 2 4 6)"
    )
    gradients.add_argument(
        "--variants", nargs="+", default=list(VARIANT_NAMES), choices=VARIANT_NAMES, help="default: all four"
    )
    gradients.add_argument("--seeds", type=int, default=3, help="initialisation seeds 0 .. N-1 (default 3)")
    gradients.add_argument("--batches", type=int, default=4, help="training batches per network (default 4)")
    notebook = commands.add_parser(
        "notebook", help="execute the study's notebook on a results folder, save the executed copy there"
    )
    notebook.add_argument("results_dir", type=Path)
    notebook.add_argument("--notebook", type=Path, default=NOTEBOOK, help=f"default: {NOTEBOOK}")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default sys.argv[1:]); return the exit code (1 when a run failed)."""
    argv = sys.argv[1:] if argv is None else argv
    own, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = build_parser()
    args = parser.parse_args(own)
    if args.command == "notebook":
        try:
            print("executed notebook:", execute_notebook(args.results_dir, args.notebook))
        except FileNotFoundError as error:
            parser.error(str(error))
        return 0
    if args.command == "gradients":
        try:
            rows = gradients_at_init(
                args.config,
                extra,
                variants_named(args.variants),
                args.blocks_per_stage,
                args.seeds,
                args.batches,
            )
        except ValueError as error:
            parser.error(str(error))
        print("gradients:", ", ".join(str(path) for path in write_gradients(rows, args.out)))
        return 0
    nuisance = None
    if args.command == "report":
        results_dir, nuisance = args.results_dir, args.nuisance
        failed = {}
    else:
        results_dir = args.out
        try:
            outcome = run_study(
                results_dir,
                args.config,
                extra,
                variants_named(args.variants),
                args.seeds,
                args.group or results_dir.resolve().name,
                blocks_per_stage=args.blocks_per_stage,
                threads=args.threads,
            )
        except ValueError as error:
            parser.error(str(error))
        failed = outcome.failed
    try:
        paths = write_report(results_dir, nuisance)
    except FileNotFoundError as error:
        parser.error(str(error))
    print("report:", ", ".join(str(path) for path in paths))
    if failed:
        print(
            f"{len(failed)} run(s) failed: "
            + ", ".join(f"{name} (log: {log})" for name, log in failed.items())
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
