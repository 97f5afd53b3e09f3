"""`unetskip <command>`: one command lists everything, each command's --help works under its own name, and
an unknown command is one line."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from unetskip.cli.main import COMMANDS, main, usage

EXPECTED = (
    "fit",
    "validate",
    "test",
    "predict",
    "check-data",
    "evaluate",
    "score",
    "export",
    "demo",
    "bench",
    "ablation",
)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "unetskip", *args], capture_output=True, text=True, timeout=180
    )


def test_help_lists_every_command_with_a_description():
    result = run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: unetskip <command>")
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(EXPECTED)
    assert all(len(command.summary.split()) >= 4 for command in COMMANDS.values())


def test_help_without_arguments_is_the_same_text(capsys):
    main([])
    assert capsys.readouterr().out.strip() == usage()


def test_every_command_resolves_to_a_function():
    for command in COMMANDS.values():
        assert callable(getattr(importlib.import_module(command.module), command.function))


@pytest.mark.parametrize("command", EXPECTED)
def test_each_command_help_names_it(command):
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    usage_line = result.stdout.splitlines()[0]
    assert usage_line.startswith("usage: unetskip ")
    assert command in usage_line.split()


def test_unknown_command_is_one_line():
    result = run("trian")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: unknown command 'trian'; the commands are {', '.join(EXPECTED)} (unetskip --help)"
    ]
    assert "Traceback" not in result.stderr


def test_help_does_not_import_lightning():
    probe = (
        "import sys; from unetskip.cli.main import main; main(['--help']); print('lightning' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_old_module_forms_stay_aliases():
    for module in ("unetskip.bench", "unetskip.ablation"):
        result = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0
        assert result.stdout.startswith(f"usage: unetskip {module.split('.')[1]}")
