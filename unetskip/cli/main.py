"""`unetskip <command>`: every command of the project under one name, with a one-line description each.

The commands are named here by module path and imported only when run (as pip names its commands), so
`unetskip --help` answers at once and a command's heavy imports (Lightning, ONNX, Gradio) load only for
that command. fit, validate, test and predict are LightningCLI's subcommands; the others parse their own
flags (`unetskip <command> --help`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from unetskip import __version__

PROG = "unetskip"


@dataclass(frozen=True)
class Command:
    """A command: `module`'s `function`, called with the arguments after the command's name (None for the
    LightningCLI subcommands, which read sys.argv themselves); an int it returns is the exit status."""

    module: str
    function: str
    summary: str


LIGHTNING = Command("unetskip.cli.lightning_cli", "cli_main", "")
COMMANDS = {
    "fit": Command(LIGHTNING.module, LIGHTNING.function, "train a model from config files and flags"),
    "validate": Command(LIGHTNING.module, LIGHTNING.function, "score a checkpoint on the validation split"),
    "test": Command(LIGHTNING.module, LIGHTNING.function, "score a checkpoint on the test split"),
    "predict": Command(
        LIGHTNING.module, LIGHTNING.function, "segment images with a checkpoint: a mask PNG per image"
    ),
    "check-data": Command(
        "unetskip.cli.check_data",
        "check_data_main",
        "check a folder of your images and masks before training",
    ),
    "evaluate": Command(
        "unetskip.evaluate.command",
        "evaluate_main",
        "a checkpoint image by image: summary, per-image table, confusion, worst images",
    ),
    "score": Command(
        "unetskip.evaluate.score_command",
        "score_main",
        "score masks any tool wrote against true masks, as evaluate does",
    ),
    "export": Command(
        "unetskip.deploy.export", "main", "a checkpoint's network as ONNX, checked with onnxruntime"
    ),
    "demo": Command(
        "unetskip.deploy.demo", "main", "a web page to try one or two checkpoints on your photos"
    ),
    "bench": Command(
        "unetskip.bench.command", "main", "speed, memory and size of the networks against the smp baseline"
    ),
    "ablation": Command(
        "unetskip.ablation.command", "main", "the skip-connection study: train the grid, report, notebook"
    ),
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def usage() -> str:
    """The text of `unetskip --help`."""
    width = max(map(len, COMMANDS))
    lines = [
        f"usage: {PROG} <command> [options]",
        "",
        "A from-scratch residual U-Net in PyTorch Lightning that measures what skip connections buy.",
        "",
        "commands:",
        *(f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()),
        "",
        f"`{PROG} <command> --help` shows a command's options.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command named by `argv[0]` (default: sys.argv[1:]) on the rest; exits with its status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return
    if args[0] == "--version":
        print(f"{PROG} {__version__}")
        return
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        sys.exit(f"error: unknown command {name!r}; the commands are {', '.join(COMMANDS)} ({PROG} --help)")
    command = COMMANDS[name]
    function = getattr(importlib.import_module(command.module), command.function)
    if name in LIGHTNING_COMMANDS:
        from unetskip.data.check import DataCheckError  # loaded with the command's module already
        from unetskip.data.folder import UnreadableSampleError

        try:
            function(None if argv is None else args)  # LightningCLI reads sys.argv itself; `args` from Python
        except DataCheckError as error:  # the data check's report says everything: no traceback
            sys.exit(f"error: {error}")
        except UnreadableSampleError as error:  # one line naming the file, also from a loader worker
            sys.exit(f"error: {error.line}")
        return
    status = function(rest)
    if isinstance(status, int) and status:
        sys.exit(status)
