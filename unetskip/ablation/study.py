"""Run the grid: each run in its own process, finished runs skipped, failed runs reported.

A results folder holds `study.json` (the base configs, extra flags and thread count it was made with),
and one folder per run under `runs/<variant>-seed<k>/` (`runs/<variant>-blocks<n>-seed<k>/` with the depth
axis) with the worker's `train.log` and, once finished, `result.json`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from unetskip.ablation.grid import StudyRun, Variant, grid_runs
from unetskip.ablation.worker import RESULT_FILE

SETTINGS_FILE = "study.json"
LOG_FILE = "train.log"
# Flags the study sets itself for every run; passing them through would break the grid.
GRID_FLAGS = (
    "--model.net.skip_connections",
    "--model.net.init_args.skip_connections",
    "--model.net.residual",
    "--model.net.init_args.residual",
    "--seed_everything",
)
# Flags the depth axis sets for every run.
DEPTH_FLAGS = ("--model.net.blocks_per_stage", "--model.net.init_args.blocks_per_stage")


@dataclass
class StudyOutcome:
    """What one invocation of the study did, by run name."""

    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # finished by an earlier invocation
    failed: dict[str, Path] = field(default_factory=dict)  # run name -> its log


def run_folder(results_dir: Path, run: StudyRun) -> Path:
    return results_dir / "runs" / run.name


def is_finished(run_dir: Path) -> bool:
    return (run_dir / RESULT_FILE).is_file()


def run_args(configs: Sequence[str], extra_args: Sequence[str], run: StudyRun) -> list[str]:
    """The `fit` arguments of one run: base configs, pass-through flags, then the grid's own flags."""
    args = [arg for config in configs for arg in ("--config", config)]
    depth = [] if run.blocks_per_stage is None else [DEPTH_FLAGS[0], str(run.blocks_per_stage)]
    return [
        *args,
        *extra_args,
        "--model.net.skip_connections",
        str(run.variant.skip_connections).lower(),
        "--model.net.residual",
        str(run.variant.residual).lower(),
        "--seed_everything",
        str(run.seed),
        *depth,
    ]


def check_settings(
    results_dir: Path,
    configs: Sequence[str],
    extra_args: Sequence[str],
    threads: int | None = None,
    depth_axis: bool = False,
) -> None:
    """Record the study's settings, or check that an existing results folder was made with the same.

    `threads` (torch's intra-op thread count in every run, None: torch's default) is a setting of the
    folder: it changes the floating-point order, so runs made with different counts are not mixed.
    """
    if not configs:
        raise ValueError("the study needs at least one --config (e.g. configs/unet.yaml)")
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    grid_flags = GRID_FLAGS + DEPTH_FLAGS if depth_axis else GRID_FLAGS
    for flag in extra_args:
        if flag.split("=", 1)[0] in grid_flags:
            raise ValueError(f"{flag} is set by the study for every run; leave it out of the extra flags")
    settings = {"configs": list(configs), "extra_args": list(extra_args), "threads": threads}
    path = results_dir / SETTINGS_FILE
    if path.is_file():
        recorded = {"threads": None, **json.loads(path.read_text())}  # folders made before --threads
        if recorded != settings:
            raise ValueError(
                f"{results_dir} holds a study made with other settings ({path}: {recorded}); rerun with "
                f"those, or choose another --out for {settings}"
            )
        return
    results_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")


def format_score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def log_tail(path: Path, lines: int = 5) -> str:
    """The last `lines` lines of a log, indented, for a failure report."""
    text = path.read_text(errors="replace").rstrip().splitlines() if path.is_file() else ["(no log)"]
    return "\n".join("    " + line for line in text[-lines:])


def run_study(
    results_dir: Path,
    configs: Sequence[str],
    extra_args: Sequence[str],
    variants: Sequence[Variant],
    num_seeds: int,
    group: str,
    echo: Callable[[str], None] = print,
    blocks_per_stage: Sequence[int] | None = None,
    threads: int | None = None,
) -> StudyOutcome:
    """Train every run of the grid that has not finished yet, one process each, in grid order.

    `blocks_per_stage` is the depth axis (None: none, the configs' depth); `threads` sets torch's
    thread count in every run. A run folder left without `result.json` (a failed or interrupted run)
    is cleared and run again. A failed run is reported through `echo` with the end of its log, and the
    study goes on.
    """
    check_settings(results_dir, configs, extra_args, threads, depth_axis=blocks_per_stage is not None)
    runs = grid_runs(variants, num_seeds, blocks_per_stage)
    outcome = StudyOutcome()
    for index, run in enumerate(runs, start=1):
        run_dir = run_folder(results_dir, run)
        prefix = f"[{index}/{len(runs)}] {run.name}"
        if is_finished(run_dir):
            outcome.skipped.append(run.name)
            echo(f"{prefix}: finished earlier, skipped")
            continue
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        echo(f"{prefix}: training (log: {run_dir / LOG_FILE})")
        command = [
            sys.executable,
            "-m",
            "unetskip.ablation.worker",
            str(run_dir),
            "--variant",
            run.variant.name,
            "--group",
            group,
            *([] if threads is None else ["--threads", str(threads)]),
            "--",
            *run_args(configs, extra_args, run),
        ]
        with (run_dir / LOG_FILE).open("w") as log:
            returncode = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False).returncode
        if returncode == 0 and is_finished(run_dir):
            result = json.loads((run_dir / RESULT_FILE).read_text())
            outcome.finished.append(run.name)
            dice = result["test"].get("test/dice_macro")
            echo(f"{prefix}: done in {result['wall_time_s']:.0f} s, test Dice {format_score(dice)}")
        else:
            outcome.failed[run.name] = run_dir / LOG_FILE
            echo(
                f"{prefix}: FAILED (exit code {returncode}), end of its log:\n{log_tail(run_dir / LOG_FILE)}"
            )
    return outcome
