"""Check the commands of README.md and docs/*.md: every `python -m unetskip ...`, `unetskip.ablation`,
`unetskip.bench` and `make fit` command in a fenced bash block names `--config` files that exist, and
its flags parse. `fit`, `validate` and `test` commands without a `<placeholder>` are parsed by the real
CLI with `--print_config` (nothing is built or trained); the ablation, benchmark and `score` commands by
their own parsers (`evaluate` commands name a checkpoint, a `<placeholder>` in the docs). Run from the
repository root:

    python scripts/check_doc_commands.py          # prints each command checked; exit 1 on a problem
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```bash\n(.*?)^```", re.MULTILINE | re.DOTALL)
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
SHELL_VARIABLE = re.compile(r'^([A-Z_][A-Z0-9_]*)="([^"$]*)"$')
WRITTEN_FILE = re.compile(r"^cat > (\S+) <<", re.MULTILINE)


def doc_commands(path: Path) -> list[list[str]]:
    """The commands of `path`'s fenced bash blocks as argument lists (continuations joined, `$NAME` of a
    `NAME="value"` line of the block replaced by its value, comments,
    leading `VAR=value` assignments and the `srun`/`torchrun ...` launchers dropped)."""
    commands = []
    for block in FENCE.findall(path.read_text()):
        variables = {}  # NAME="value" lines of the block, substituted for $NAME in its commands
        for line in block.replace("\\\n", " ").splitlines():
            assignment = SHELL_VARIABLE.match(line)
            if assignment:
                variables[assignment[1]] = assignment[2]
                continue
            for name, value in variables.items():
                line = line.replace(f"${name}", value)
            for part in line.split("&&"):
                if "unetskip" not in part and "make fit" not in part:
                    continue
                words = shlex.split(part, comments=True)
                while words and ENV_ASSIGNMENT.match(words[0]):
                    words.pop(0)
                if "-m" in words and words[0] in ("torchrun", "srun", "python"):
                    words = words[words.index("-m") :]
                elif words[:1] == ["srun"]:
                    words = words[1:]
                if words[:2] == ["python", "-m"]:
                    words = words[1:]
                if words[:2] == ["make", "fit"] or (words[:1] == ["-m"] and words[1].startswith("unetskip")):
                    commands.append(words)
    return commands


def written_files(path: Path) -> set[str]:
    """Files that `path`'s fenced bash blocks write themselves (`cat > NAME <<EOF`), e.g. a config."""
    return {name for block in FENCE.findall(path.read_text()) for name in WRITTEN_FILE.findall(block)}


def config_files(words: list[str]) -> list[str]:
    files = [words[i + 1] for i, word in enumerate(words[:-1]) if word == "--config"]
    for word in words:
        if word.startswith("CONFIGS="):
            files += word.removeprefix("CONFIGS=").split()
    return files


def check(words: list[str], written: set[str] = frozenset()) -> str:
    """'' when the command is fine, else what is wrong (`written`: config files the docs write first, whose
    commands are not parsed)."""
    missing = [name for name in config_files(words) if name not in written and not (REPO / name).is_file()]
    if missing:
        return f"missing config files {missing}"
    if words[0] == "make" or any("<" in word for word in words) or set(config_files(words)) & written:
        return ""
    module, argv = words[1], words[2:]
    if module == "unetskip" and argv[:1] in (["bench"], ["ablation"]):
        module, argv = f"unetskip.{argv[0]}", argv[1:]  # `unetskip bench` is `python -m unetskip.bench`
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            if module == "unetskip.bench":
                from unetskip.bench.command import parse_args

                parse_args(argv)
            elif module == "unetskip.ablation":
                from unetskip.ablation.command import build_parser

                build_parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
                if "--" in argv and argv[0] == "run":
                    return check(["-m", "unetskip", "fit", *config_args(argv), *argv[argv.index("--") + 1 :]])
            elif argv[:1] == ["score"]:
                from unetskip.evaluate.score_command import build_parser as score_parser

                score_parser().parse_args(argv[1:])
            elif argv[:1] in (["fit"], ["validate"], ["test"]):
                from unetskip.cli.lightning_cli import cli_main

                cli_main([*argv, "--print_config"])
    except SystemExit as stop:
        if stop.code not in (0, None):
            return f"exit {stop.code}: {err.getvalue().strip()[-300:]}"
    return ""


def config_args(argv: list[str]) -> list[str]:
    return [word for name in config_files(argv) for word in ("--config", name)]


def main() -> int:
    paths = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    problems = 0
    for path in paths:
        written = written_files(path)
        for words in doc_commands(path):
            problem = check(words, written)
            problems += bool(problem)
            status = f"FAILED: {problem}" if problem else "ok"
            print(f"{path.relative_to(REPO)}: {shlex.join(words)}: {status}", flush=True)
    print(f"{problems} of the docs' commands have a problem")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
