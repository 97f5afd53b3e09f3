"""Every image and mask is decoded before training: a truncated PNG or JPEG, a truncated mask and a text file
named .png are errors of check-data (exit 1) and of fit's setup, each naming its file; the report is the
same from worker processes as from one. A file that breaks after the check stops training with one line
naming it, from the main process and from a loader worker alike."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
from own_data import write_own_folder
from PIL import Image
from test_own_data_cli import folder_flags

from unetskip.cli.check_data import check_data_main
from unetskip.cli.main import main
from unetskip.data.check import DataCheckError
from unetskip.data.folder import FolderDataModule

# (file, how it is broken): images and masks of write_own_folder(count=12)
BROKEN = {
    "images/photo_00.jpg": "truncated JPEG",
    "images/photo_04.png": "truncated PNG",
    "images/batch2/photo_09.png": "text named .png",
    "masks/photo_06.png": "truncated PNG mask",
}


def truncate(path: Path) -> None:
    """Keep the first half of `path`: its header (size, mode) still reads, its pixels do not."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def broken_root(tmp_path) -> Path:
    root = write_own_folder(tmp_path / "own", count=12)
    for relative, how in BROKEN.items():
        if how == "text named .png":
            (root / relative).write_text("not an image\n")
        else:
            truncate(root / relative)
    return root


def test_truncated_files_pass_a_header_read(broken_root):
    """The premise: Pillow opens the truncated files (size and mode from the header) and fails to decode."""
    for relative in ("images/photo_00.jpg", "images/photo_04.png"):
        with Image.open(broken_root / relative) as image:
            assert image.size[0] > 0
            with pytest.raises(OSError, match="truncated|broken data stream"):
                image.load()


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "ERROR unreadable file" in line]


def test_check_data_names_every_file_that_does_not_decode(broken_root, capsys):
    assert check_data_main(folder_flags(broken_root)) == 1
    text = capsys.readouterr().out
    unreadable = error_lines(text)
    for relative in BROKEN:
        assert sum(f"unreadable file: {relative}: " in line for line in unreadable) == 1, (relative, text)
    assert len(unreadable) == len(BROKEN)
    errors = text.count("ERROR ")  # the unreadable files, and a split left without a usable pair
    assert errors >= len(BROKEN) and text.rstrip().endswith(f"{errors} errors: fix them before training")


def test_fit_stops_in_setup_with_the_report(broken_root):
    module = FolderDataModule(root=str(broken_root), num_workers=0, val_fraction=0.25)
    with pytest.raises(DataCheckError) as error:
        module.setup("fit")
    assert {line.split(": ")[1] for line in error_lines(str(error.value))} == set(BROKEN)
    assert module.datasets == {}  # nothing to train on


def test_fit_through_the_command_line_stops_before_training_with_the_report(broken_root, tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as stopped:
        main(
            [
                "fit",
                *folder_flags(broken_root),
                "--data.test_fraction",
                "0",
                "--trainer.logger",
                "false",
                "--trainer.default_root_dir",
                str(runs),
            ]
        )
    message = str(stopped.value.code)
    assert message.startswith("error: data check of ") and "Traceback" not in message
    assert {line.split(": ")[1] for line in error_lines(message)} == set(BROKEN)
    assert not list(runs.rglob("*.ckpt"))


def test_parallel_and_serial_checks_give_the_same_report(broken_root):
    reports = [
        FolderDataModule(root=str(broken_root), test_fraction=0.25, check_workers=workers).check().format()
        for workers in (0, 2, 3)
    ]
    assert len(error_lines(reports[0])) == len(BROKEN) and "class pixels" in reports[0]
    assert reports[1] == reports[0] and reports[2] == reports[0]


class TruncateTrainingImages(L.Callback):
    """Test fault: after the data module's setup (and its check), every image under `root` is truncated,
    as a file damaged on disk during a run would be."""

    def __init__(self, root: str) -> None:
        self.root = root

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for path in sorted((Path(self.root) / "images").rglob("*.*")):
            truncate(path)


@pytest.mark.parametrize("num_workers", [0, 1], ids=["main process", "loader worker"])
def test_a_file_broken_after_the_check_stops_fit_with_one_line_naming_it(tmp_path, num_workers):
    root = write_own_folder(tmp_path / "own", count=8)
    fault = f'{{"class_path": "{__name__}.TruncateTrainingImages", "init_args": {{"root": "{root}"}}}}'
    args = [*folder_flags(root), "--data.num_workers", str(num_workers), "--trainer.logger", "false"]
    args += ["--trainer.default_root_dir", str(tmp_path / "runs"), f"--trainer.callbacks+={fault}"]
    with pytest.raises(SystemExit) as stopped:
        main(["fit", *args])
    message = str(stopped.value.code)
    assert "\n" not in message, message
    prefix = f"error: {root}/images/"
    assert message.startswith(prefix) and " cannot be decoded during training (" in message, message
    named = Path(message.removeprefix("error: ").split(" cannot be decoded")[0])
    assert named.is_file() and named.suffix in (".jpg", ".png")
    assert "restore or remove it and run unetskip check-data" in message
