"""Every command of README.md and docs/*.md names config files that exist and parses
(scripts/check_doc_commands.py), and the checker catches a command that does not."""

from __future__ import annotations

import runpy

from conftest import REPO

CHECKER = runpy.run_path(str(REPO / "scripts" / "check_doc_commands.py"))


def test_the_docs_commands_parse(capsys):
    assert CHECKER["main"]() == 0, capsys.readouterr().out
    checked = capsys.readouterr().out.splitlines()
    assert len(checked) > 20 and any("README.md: make fit" in line for line in checked)


def test_a_broken_command_is_reported():
    check = CHECKER["check"]
    assert "missing config files" in check(["-m", "unetskip", "fit", "--config", "configs/nowhere.yaml"])
    bad_flag = ["-m", "unetskip", "fit", "--config", "configs/unet.yaml", "--trainer.max_epochz", "3"]
    assert "max_epochz" in check(bad_flag)
    assert check(["-m", "unetskip.bench", "--quik"]).startswith("exit 2")
