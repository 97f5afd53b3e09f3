"""The ablation study on tiny synthetic data: the grid (with the depth axis), the runs, the resumable
command, the report with its seed-paired effects, the gradient flow at initialisation, the notebook."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch
from conftest import tiny_flags
from jsonargparse import Namespace
from wandb_offline import OfflineRun

from unetskip.ablation.command import main
from unetskip.ablation.depth import conv_layers
from unetskip.ablation.effects import PairedEffect
from unetskip.ablation.examples import comparison_figure, pair_to_compare, runs_to_compare
from unetskip.ablation.gradients import gradients_at_init, write_gradients
from unetskip.ablation.grid import VARIANT_NAMES, VARIANTS, grid_runs, variants_named
from unetskip.ablation.notebook import NOTEBOOK
from unetskip.ablation.plots import depth_figure, grad_norm_figure, train_loss_figure, val_dice_figure
from unetskip.ablation.report import load_study, write_report
from unetskip.ablation.study import check_settings, run_args, run_folder
from unetskip.ablation.worker import study_loggers, train_and_test
from unetskip.models import UNet

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
BASE = [str(CONFIGS / "unet.yaml")]


def tiny_study_flags(pet_root: Path) -> list[str]:
    """Pass-through flags that shrink every run to a second or two on a CPU."""
    return [
        *tiny_flags(pet_root),
        "--trainer.max_epochs",
        "2",
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
    ]


def test_grid_covers_both_switches_seed_major():
    runs = grid_runs(variants_named(VARIANT_NAMES), 2)
    assert len(runs) == 8 and [run.seed for run in runs] == [0] * 4 + [1] * 4
    switches = {(run.variant.skip_connections, run.variant.residual) for run in runs}
    assert switches == {(True, True), (True, False), (False, True), (False, False)}
    assert runs[0].name == "long+short-seed0"
    with pytest.raises(ValueError, match="unknown variant"):
        variants_named(["long", "medium"])
    with pytest.raises(ValueError, match="--seeds"):
        grid_runs(runs[0:1], 0)


def test_depth_axis_names_runs_by_depth_seed_major():
    runs = grid_runs(variants_named(["short", "none"]), 2, [1, 6])
    assert [run.name for run in runs[:4]] == [
        "short-blocks1-seed0",
        "none-blocks1-seed0",
        "short-blocks6-seed0",
        "none-blocks6-seed0",
    ]
    assert [run.seed for run in runs] == [0] * 4 + [1] * 4
    args = run_args(["a.yaml"], [], runs[2])
    assert args[-2:] == ["--model.net.blocks_per_stage", "6"]
    for bad in ([0], [2, 2], [True]):
        with pytest.raises(ValueError, match="--blocks_per_stage"):
            grid_runs(runs[:1], 1, bad)


@pytest.mark.parametrize(("blocks", "expected"), [(1, 1 + 2 * 3 + 2 * 3 + 1), (3, 1 + 6 * 3 + 7 * 2 + 1)])
def test_conv_layers_are_counted_without_shortcut_projections(blocks, expected):
    # base 4, depth 2: stem, 3 encoder stages and 2 decoder stages (upsampling + blocks) of 2 convs per
    # block, and the head; a residual net counts the same as a plain one.
    for residual in (True, False):
        net = UNet(base_channels=4, depth=2, blocks_per_stage=blocks, residual=residual)
        assert conv_layers(net) == expected


def test_threads_are_a_setting_of_the_folder_and_old_folders_still_resume(tmp_path):
    check_settings(tmp_path, BASE, [], threads=2)
    assert json.loads((tmp_path / "study.json").read_text())["threads"] == 2
    with pytest.raises(ValueError, match="made with other settings"):
        check_settings(tmp_path, BASE, [], threads=1)
    old = tmp_path / "old"
    old.mkdir()
    (old / "study.json").write_text(json.dumps({"configs": BASE, "extra_args": []}))
    check_settings(old, BASE, [])  # made before --threads: the same study
    with pytest.raises(ValueError, match="set by the study"):
        check_settings(tmp_path / "new", BASE, ["--model.net.blocks_per_stage", "2"], depth_axis=True)
    with pytest.raises(ValueError, match="--threads must be >= 1"):
        check_settings(tmp_path / "new", BASE, [], threads=0)


def test_run_args_put_the_grid_flags_last():
    run = grid_runs(variants_named(["short"]), 2)[1]
    args = run_args(["a.yaml", "b.yaml"], ["--trainer.max_epochs", "3"], run)
    assert args[:6] == ["--config", "a.yaml", "--config", "b.yaml", "--trainer.max_epochs", "3"]
    assert args[6:] == [
        "--model.net.skip_connections",
        "false",
        "--model.net.residual",
        "true",
        "--seed_everything",
        "1",
    ]


def namespace_logger(class_name: str, **init_args: object) -> Namespace:
    module = "lightning.pytorch.loggers"
    return Namespace(class_path=f"{module}.{class_name}", init_args=Namespace(save_dir="runs", **init_args))


@pytest.mark.parametrize(
    ("logger", "expected"),
    [
        (None, ["CSVLogger"]),
        (False, ["CSVLogger"]),
        (True, ["CSVLogger"]),
        (namespace_logger("CSVLogger", name="unet"), ["CSVLogger"]),
        (namespace_logger("WandbLogger", name="unet", group=None), ["CSVLogger", "WandbLogger"]),
        (
            [namespace_logger("CSVLogger"), namespace_logger("TensorBoardLogger", name="tb")],
            ["CSVLogger", "TensorBoardLogger"],
        ),
    ],
)
def test_study_loggers_write_into_the_run_folder(logger, expected, tmp_path):
    loggers = study_loggers(logger, tmp_path, "my-study", "long-seed1")
    assert [entry.class_path.rsplit(".", 1)[-1] for entry in loggers] == expected
    assert loggers[0].init_args.save_dir == str(tmp_path) and loggers[0].init_args.version == ""
    assert all(entry.init_args.save_dir == str(tmp_path) for entry in loggers)
    for entry in loggers[1:]:
        if entry.class_path.endswith("WandbLogger"):
            assert (entry.init_args.group, entry.init_args.name) == ("my-study", "long-seed1")


@pytest.fixture(scope="module")
def tiny_study(pet_root, tmp_path_factory):
    """A finished depth study, trained in this process: long+short and short at 1 and 2 blocks per stage,
    seeds 0 and 1, two epochs."""
    results_dir = tmp_path_factory.mktemp("study")
    flags = tiny_study_flags(pet_root)
    check_settings(results_dir, BASE, flags, depth_axis=True)
    for run in grid_runs(variants_named(["long+short", "short"]), 2, [1, 2]):
        train_and_test(run_folder(results_dir, run), run.variant.name, "tiny", run_args(BASE, flags, run))
    return results_dir


def test_each_run_records_its_variant_depth_scores_and_checkpoint(tiny_study):
    run_dir = tiny_study / "runs" / "short-blocks2-seed1"
    result = json.loads((run_dir / "result.json").read_text())
    assert (result["variant"], result["seed"], result["epochs"]) == ("short", 1, 2)
    assert (result["skip_connections"], result["residual"]) == (False, True)
    assert (result["blocks_per_stage"], result["threads"]) == (2, torch.get_num_threads())
    assert result["conv_layers"] == conv_layers(UNet(base_channels=4, depth=2, blocks_per_stage=2))
    assert (run_dir / result["checkpoint"]).is_file() and result["checkpoint"].startswith("checkpoints/")
    for key in ("dice_macro", "iou_macro", "pet_iou_pooled", "pet_iou_per_image", "pet_iou_border_band"):
        assert 0.0 <= result["test"][f"test/{key}"] <= 1.0, key
    # The study's CSVLogger wrote straight into the run folder, and so did the config saver.
    assert (run_dir / "metrics.csv").is_file() and (run_dir / "config.yaml").is_file()
    with_skips = json.loads((tiny_study / "runs" / "long+short-blocks2-seed1" / "result.json").read_text())
    assert with_skips["params"] > result["params"]  # the decoder without long skips has fewer weights


def test_a_wandb_run_joins_the_study_group_and_the_csv_records_still_come(pet_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    wandb_logger = {
        "class_path": "unetskip.runs.AutoOfflineWandbLogger",
        "init_args": {"project": "p"},
    }
    run = grid_runs(variants_named(["none"]), 1)[0]
    flags = [
        *tiny_study_flags(pet_root),
        "--trainer.max_epochs",
        "1",
        "--trainer.logger",
        json.dumps(wandb_logger),
    ]
    run_dir = tmp_path / run.name
    train_and_test(run_dir, run.variant.name, "group-7f3a", run_args(BASE, flags, run))
    assert (run_dir / "result.json").is_file() and (run_dir / "metrics.csv").is_file()
    (wandb_file,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    assert OfflineRun.read(wandb_file.parent).finished  # waits until W&B has written the whole run
    # The run record (a protobuf) holds the group and the display name as plain strings.
    assert b"group-7f3a" in wandb_file.read_bytes() and b"none-seed0" in wandb_file.read_bytes()


def test_report_files_and_table(tiny_study):
    paths = write_report(tiny_study)
    assert [path.name for path in paths] == [
        "runs.csv",
        "summary.md",
        "val_dice.png",
        "grad_norm.png",
        "depth.png",
        "train_loss.png",
    ]
    assert all(path.stat().st_size > 0 for path in paths)
    with (tiny_study / "runs.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert [(row["variant"], row["blocks_per_stage"], row["seed"]) for row in rows] == [
        (variant, blocks, seed) for variant in ("long+short", "short") for blocks in "12" for seed in "01"
    ]
    for row in rows:
        assert row["epochs"] == "2" and int(row["best_epoch"]) in (0, 1)
        assert float(row["img_per_sec"]) > 0 and float(row["wall_time_s"]) > 0
        assert 0 <= float(row["test_pet_iou_border_band"]) <= 1
        assert float(row["final_train_loss"]) > 0  # the training loss of the last epoch
    layers = {
        blocks: conv_layers(UNet(base_channels=4, depth=2, blocks_per_stage=blocks)) for blocks in (1, 2)
    }
    summary = (tiny_study / "summary.md").read_text()
    assert f"| long+short | yes | yes | 1 | {layers[1]} | 2 |" in summary
    assert f"| short | no | yes | 2 | {layers[2]} | 2 |" in summary
    assert "| long skips, residual blocks | long+short − short | 2 | 2 |" in summary  # paired, per depth


def test_prediction_examples_compare_two_runs_on_the_same_images(tiny_study):
    assert pair_to_compare(tiny_study) == ("long+short", "short")
    runs = runs_to_compare(tiny_study, ("long+short", "short"))  # the largest depth, the lowest seed
    assert runs == {name: tiny_study / "runs" / f"{name}-blocks2-seed0" for name in ("long+short", "short")}
    figure = comparison_figure(runs, num_images=3)
    assert len(figure.axes) == 3 * 4
    assert figure.axes[2].get_title().startswith("long+short: IoU")
    with pytest.raises(FileNotFoundError, match="none"):
        runs_to_compare(tiny_study, ("long+short", "none"))


def test_study_command_skips_finished_runs_reports_a_failed_one_and_goes_on(
    tiny_study, pet_root, tmp_path, capsys
):
    out = tmp_path / "study"
    # zero_init_residual needs residual blocks: the plain variant "long" fails when it builds its model.
    flags = [*tiny_study_flags(pet_root), "--model.net.zero_init_residual", "true"]
    check_settings(out, BASE, flags)
    for name in ("long+short", "short"):  # finished earlier (copied from another study)
        shutil.copytree(tiny_study / "runs" / f"{name}-blocks1-seed0", out / "runs" / f"{name}-seed0")
    finished = out / "runs" / "short-seed0" / "result.json"
    before = finished.stat().st_mtime_ns
    (out / "runs" / "long-seed0").mkdir()  # left behind by an interrupted run: cleared, run again
    (out / "runs" / "long-seed0" / "metrics.csv").write_text("stale")

    command = [
        "run",
        "--config",
        *BASE,
        "--out",
        str(out),
        "--seeds",
        "1",
        "--variants",
        "short",
        "long",
        "long+short",
    ]
    assert main([*command, "--", *flags]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[1/3] long+short-seed0: finished earlier, skipped"
    assert lines[2] == "[2/3] long-seed0: FAILED (exit code 1), end of its log:"
    assert any("zero_init_residual=True needs residual=True" in line for line in lines)
    assert "[3/3] short-seed0: finished earlier, skipped" in lines
    assert lines[-1].startswith("1 run(s) failed: long-seed0 (log: ")
    assert finished.stat().st_mtime_ns == before
    assert not (out / "runs" / "long-seed0" / "metrics.csv").exists()
    assert "- `long-seed0`: see" in (out / "summary.md").read_text()
    with (out / "runs.csv").open() as file:
        assert [row["variant"] for row in csv.DictReader(file)] == ["long+short", "short"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model.net.residual", "false"], "set by the study"),
        (["--seed_everything=3"], "set by the study"),
        (["--trainer.max_epochs", "7"], "made with other settings"),
    ],
)
def test_study_command_rejects_flags_that_break_the_grid_or_the_folder(extra, message, tmp_path, capsys):
    out = tmp_path / "study"
    check_settings(out, BASE, ["--trainer.max_epochs", "2"])
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--config", *BASE, "--out", str(out), "--", *extra])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_report_of_a_folder_that_is_not_a_study_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path)])
    assert "not a study's results folder" in capsys.readouterr().err


def write_run(
    results_dir: Path,
    variant: str,
    seed: int,
    test_dice: float,
    val_dice: list[float],
    grad_norm_keys: tuple[str, ...] = (),
    blocks_per_stage: int | None = None,
    train_loss: float | None = None,
) -> None:
    """A finished run folder written by hand: result.json and a CSVLogger-style metrics.csv; with
    `blocks_per_stage` a run of a depth study, with `train_loss` its (constant) training loss."""
    (chosen,) = variants_named([variant])
    run = grid_runs([chosen], seed + 1, None if blocks_per_stage is None else [blocks_per_stage])[-1]
    run_dir = results_dir / "runs" / run.name
    run_dir.mkdir(parents=True)
    scores = ("dice_macro", "iou_macro", "pet_iou_pooled", "pet_iou_per_image", "pet_iou_border_band")
    result = {
        "variant": variant,
        "skip_connections": chosen.skip_connections,
        "residual": chosen.residual,
        "seed": seed,
        "epochs": len(val_dice),
        "params": 1000 if chosen.skip_connections else 800,
        "wall_time_s": 60.0 + seed,
        "checkpoint": "checkpoints/best.ckpt",
        "test": {f"test/{score}": test_dice - 0.1 * index for index, score in enumerate(scores)},
    }
    if blocks_per_stage is not None:
        result |= {"blocks_per_stage": blocks_per_stage, "conv_layers": 18 * blocks_per_stage + 6}
    (run_dir / "result.json").write_text(json.dumps(result))
    rows = []
    for epoch, dice in enumerate(val_dice):
        step = 10 * epoch + 9
        rows.append(
            {"epoch": epoch, "step": step, "val/dice_macro": dice, "val/pet_iou_border_band": dice / 2}
        )
        rows.append({"epoch": epoch, "step": step, "train/img_per_sec": 10.0 * (epoch + 1)})
        if train_loss is not None:
            rows.append(
                {"epoch": epoch, "step": step, "train/loss_epoch": train_loss * (len(val_dice) - epoch)}
            )
        rows += [{"epoch": epoch, "step": step, key: 1.0 / (epoch + 1)} for key in grad_norm_keys]
    columns = sorted({key for row in rows for key in row})
    with (run_dir / "metrics.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def handmade_study(tmp_path):
    check_settings(tmp_path, BASE, ["--trainer.max_epochs", "3"])
    grad_norm_keys = ("grad_norm/encoder_0", "grad_norm/decoder_1_step", "grad_norm/encoder_1")
    write_run(tmp_path, "long+short", 0, 0.7, [0.5, 0.8, 0.7], grad_norm_keys)
    write_run(tmp_path, "long+short", 1, 0.9, [0.6, 0.65, 0.9], grad_norm_keys)
    write_run(tmp_path, "short", 0, 0.6, [0.4, 0.5, 0.55])
    write_run(tmp_path, "short", 1, 0.6, [0.3, 0.6, 0.5])
    (tmp_path / "runs" / "none-seed0").mkdir()  # started, never finished
    return tmp_path


def test_runs_csv_takes_val_scores_at_the_best_epoch(handmade_study):
    write_report(handmade_study)
    with (handmade_study / "runs.csv").open() as file:
        rows = {(row["variant"], row["seed"]): row for row in csv.DictReader(file)}
    assert set(rows) == {("long+short", "0"), ("long+short", "1"), ("short", "0"), ("short", "1")}
    first = rows["long+short", "0"]
    assert first["best_epoch"] == "1" and float(first["val_dice_macro"]) == pytest.approx(0.8)
    assert float(first["val_pet_iou_border_band"]) == pytest.approx(0.4)
    assert float(first["test_dice_macro"]) == pytest.approx(0.7)
    assert float(first["test_pet_iou_border_band"]) == pytest.approx(0.7 - 0.4)
    assert float(first["img_per_sec"]) == pytest.approx(20.0)  # median of 10, 20, 30
    assert rows["long+short", "1"]["best_epoch"] == "2"


def test_summary_gives_mean_std_per_variant_and_effects(handmade_study):
    write_report(handmade_study)
    summary = (handmade_study / "summary.md").read_text()
    long_short = next(line for line in summary.splitlines() if line.startswith("| long+short |"))
    # Test Dice 0.7 and 0.9: mean 0.8, sample std 0.1414; best val Dice 0.8 and 0.9.
    assert "| 0.800 ± 0.141 |" in long_short and "| 0.850 ± 0.071 |" in long_short
    assert "| 1,000 |" in long_short and "| 60 ± 1 |" in long_short
    effect = next(line for line in summary.splitlines() if "long+short − short" in line)
    # Dice: 0.8 - 0.6 with stds 0.141 and 0; border band: (0.4 mean) - (0.2) likewise.
    assert effect.count("+0.200") == 2 and effect.count("| 0.141 |") == 2
    assert "- `none-seed0`" in summary  # the unfinished run is listed
    assert "No gradient norms" not in summary


def test_plots_show_seed_bands_and_every_logged_stage(handmade_study):
    records, unfinished = load_study(handmade_study)
    assert [path.name for path in unfinished] == ["none-seed0"]
    dice_axis = val_dice_figure(records).axes[0]
    assert [line.get_label() for line in dice_axis.get_lines()] == ["long+short (2 seeds)", "short (2 seeds)"]
    mean = dice_axis.get_lines()[0].get_ydata()
    assert list(mean) == pytest.approx([0.55, 0.725, 0.8])
    first, panel = grad_norm_figure(records).axes  # only long+short logged gradient norms
    assert [line.get_label() for line in first.get_lines()] == ["long+short"]
    assert [line.get_label() for line in panel.get_lines()] == ["encoder_0", "encoder_1", "decoder_1"]


def test_a_trained_study_plots_the_gradient_norms_it_logged(tiny_study):
    records, _ = load_study(tiny_study)
    first, panel = grad_norm_figure(records).axes[:2]
    assert [line.get_label() for line in first.get_lines()] == [
        f"{variant}, {blocks} blocks" for variant in ("long+short", "short") for blocks in (1, 2)
    ]
    assert {"encoder_0", "decoder_0"} <= {line.get_label() for line in panel.get_lines()}


def test_plots_say_so_when_no_gradient_norms_were_logged(tmp_path):
    check_settings(tmp_path, BASE, ["--trainer.max_epochs", "2"])
    write_run(tmp_path, "none", 0, 0.6, [0.5, 0.6])
    records, _ = load_study(tmp_path)
    (axis,) = grad_norm_figure(records).axes
    assert "No gradient norms were logged" in axis.texts[0].get_text()
    assert "No gradient norms" in (write_report(tmp_path)[1]).read_text()


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


def test_notebook_command_runs_it_top_to_bottom_on_a_study(tiny_study, tiny_gradients, capsys):
    assert main(["notebook", str(tiny_study)]) == 0
    assert f"executed notebook: {tiny_study / 'ablation.ipynb'}" in capsys.readouterr().out
    executed = nbformat.read(tiny_study / "ablation.ipynb", as_version=4)
    outputs = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    shown = [output.get("data", {}) for output in outputs]
    # The tables, then val Dice, depth, train loss, gradients at init, gradient norms in training and the
    # side-by-side predictions as images.
    assert any("| long+short | yes | yes | 1 |" in data.get("text/markdown", "") for data in shown)
    assert any("| none | 4 |" in data.get("text/markdown", "") for data in shown)  # gradients at init
    assert sum("image/png" in data for data in shown) == 6


def test_notebook_finds_data_given_relative_to_where_the_command_runs(
    tiny_study, tiny_gradients, pet_root, tmp_path, monkeypatch
):
    """As after `ablation run ... -- --data.root ../shared/...` (a relative path) from the repo."""
    study = shutil.copytree(tiny_study, tmp_path / "study")
    for ckpt in study.rglob("*.ckpt"):
        checkpoint = torch.load(ckpt, weights_only=True)
        checkpoint["datamodule_hyper_parameters"]["root"] = os.path.relpath(pet_root, tmp_path)
        torch.save(checkpoint, ckpt)
    monkeypatch.chdir(tmp_path)
    assert main(["notebook", str(study)]) == 0
    executed = nbformat.read(study / "ablation.ipynb", as_version=4)
    outputs = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 6


def test_an_installed_package_runs_the_notebook_command_from_any_folder(
    tiny_study, tiny_gradients, installed_env, tmp_path
):
    """The notebook ships in the wheel: the command needs no checkout."""
    study = shutil.copytree(tiny_study, tmp_path / "study")
    command = [sys.executable, "-m", "unetskip.ablation", "notebook", str(study)]
    done = subprocess.run(command, env=installed_env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"executed notebook: {study / 'ablation.ipynb'}" in done.stdout
    executed = nbformat.read(study / "ablation.ipynb", as_version=4)
    outputs = [output for cell in executed.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    # val Dice, depth, train loss, gradients at init (tiny_gradients wrote them into the study), gradient
    # norms in training, predictions
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 6


def test_notebook_command_on_a_folder_that_is_not_a_study_says_so(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["notebook", str(tmp_path)])
    assert "not a study's results folder" in capsys.readouterr().err


@pytest.fixture
def depth_study(tmp_path):
    """A handmade depth study: short and none at 1 and 6 blocks per stage, seeds 0-2. At 1 block short
    beats none by 0.01, 0.02, 0.03 test Dice; at 6 blocks by 0.15, 0.14, 0.16, with a training loss
    lower by 0.2 on every seed."""
    check_settings(tmp_path, BASE, ["--trainer.max_epochs", "3"], depth_axis=True)
    dice = {
        ("short", 1): (0.70, 0.72, 0.74),
        ("none", 1): (0.69, 0.70, 0.71),
        ("short", 6): (0.75, 0.76, 0.77),
        ("none", 6): (0.60, 0.62, 0.61),
    }
    for (variant, blocks), scores in dice.items():
        loss = 0.5 if (variant, blocks) == ("none", 6) else 0.3
        for seed, score in enumerate(scores):
            write_run(tmp_path, variant, seed, score, [0.5, score], blocks_per_stage=blocks, train_loss=loss)
    return tmp_path


def test_effects_are_paired_by_seed_with_a_t_interval(depth_study):
    paths = write_report(depth_study)
    assert [path.name for path in paths[4:]] == ["depth.png", "train_loss.png"]
    summary = (depth_study / "summary.md").read_text()
    lines = {line.split(" | ")[2]: line for line in summary.splitlines() if "short − none | " in line}
    # Differences 0.01, 0.02, 0.03: mean 0.02, std 0.01, t(0.975, 2) = 4.303, half width 0.0248.
    assert "| 3 | +0.020 [-0.005, +0.045] |" in lines["1"]
    assert (
        "| 3 | +0.150 [+0.125, +0.175] * | +0.150 [+0.125, +0.175] * | -0.200 [-0.200, -0.200] * |"
        in lines["6"]
    )
    assert "+0.000 [+0.000, +0.000] |" in lines["1"]  # equal training losses: no effect, not "excludes 0"
    resolved = summary.split("Intervals that exclude zero:")[1].split("\n\n")[0]
    assert resolved.count("\n- ") == 3 and "at 6 blocks/stage, test Dice: +0.150" in resolved
    effect = PairedEffect("x", "a", "b", None, "test_dice_macro", (0.1,))
    assert (
        effect.interval() == "+0.100 (1 seed)" and not effect.excludes_zero and math.isnan(effect.half_width)
    )


def test_depth_plots_have_a_line_per_variant_against_conv_layers(depth_study):
    records, _ = load_study(depth_study)
    dice_axis, _, loss_axis = depth_figure(records).axes
    (short, none) = dice_axis.get_lines()
    assert list(short.get_xdata()) == [24, 114] and list(short.get_ydata()) == pytest.approx([0.72, 0.76])
    assert list(none.get_ydata()) == pytest.approx([0.70, 0.61])
    assert list(loss_axis.get_lines()[1].get_ydata()) == pytest.approx([0.3, 0.5])  # last epoch: loss x 1
    shallow, deep = train_loss_figure(records).axes
    assert deep.get_title() == "6 blocks/stage (114 conv layers)"
    assert list(deep.get_lines()[1].get_ydata()) == pytest.approx([1.0, 0.5])  # none: loss x 2, x 1


def test_nuisance_check_says_which_effects_hold_at_another_thread_count(
    depth_study, tmp_path_factory, capsys
):
    other = tmp_path_factory.mktemp("threads2")
    check_settings(other, BASE, ["--trainer.max_epochs", "3"], threads=2, depth_axis=True)
    for variant, scores, loss in (("short", (0.75, 0.76, 0.77), 0.3), ("none", (0.74, 0.62, 0.76), 0.5)):
        for seed, score in enumerate(scores):
            write_run(other, variant, seed, score, [0.5, score], blocks_per_stage=6, train_loss=loss)
    assert main(["report", str(depth_study), "--nuisance", str(other)]) == 0
    summary = (depth_study / "summary.md").read_text()
    nuisance = summary.split("## Nuisance check")[1]
    assert "6 runs repeated: test Dice moved by 0.000 (median) and 0.150 (largest)" in nuisance
    rows = [line for line in nuisance.splitlines() if "at 6 blocks/stage" in line]
    assert len(rows) == 3
    assert rows[0].endswith("| +0.150 (3 seeds) | +0.053 [-0.133, +0.240] | does not hold: noise |")
    assert rows[2].endswith("| holds |") and "final train loss" in rows[2]
    # With one seed repeated there is no interval: only a sign that flips reads as noise.
    for variant in ("short", "none"):
        for seed in (1, 2):
            shutil.rmtree(other / "runs" / f"{variant}-blocks6-seed{seed}")
    write_report(depth_study, other)
    rows = [
        line for line in (depth_study / "summary.md").read_text().splitlines() if "at 6 blocks/stage" in line
    ]
    assert rows[-3].endswith("| same sign; one seed there, no interval |")


@pytest.fixture(scope="module")
def tiny_gradients(tiny_study, pet_root):
    """Gradient flow at initialisation of the four variants at 1 and 4 blocks per stage, two seeds, on the
    synthetic images; written into the tiny study's `gradients/` folder, where the notebook finds it."""
    rows = gradients_at_init(BASE, tiny_flags(pet_root), VARIANTS, [1, 4], num_seeds=2, num_batches=2)
    write_gradients(rows, tiny_study / "gradients")
    return rows


def test_gradients_at_init_have_a_row_per_variant_depth_and_seed(tiny_gradients, tiny_study, pet_root):
    rows = tiny_gradients
    assert [(row["variant"], row["blocks_per_stage"], row["seed"]) for row in rows] == [
        (variant, blocks, seed) for blocks in (1, 4) for variant in VARIANT_NAMES for seed in (0, 1)
    ]
    assert all(str(pet_root) in row["input"] for row in rows)
    stages = [key for key in rows[0] if key.startswith("grad_norm/")]
    assert len(stages) == 3 + 2  # depth 2: encoder_0..2, decoder_0..1
    for row in rows:
        assert all(math.isfinite(row[key]) and row[key] > 0 for key in [*stages, "loss", "first_last_ratio"])
        assert row["first_last_ratio"] == pytest.approx(
            row["grad_norm/encoder_0"] / row["grad_norm/decoder_0"]
        )
    with (tiny_study / "gradients" / "gradients.csv").open() as file:
        assert len(list(csv.DictReader(file))) == len(rows)
    assert "| none | 4 |" in (tiny_study / "gradients" / "gradients.md").read_text()


def test_plain_deep_nets_pass_far_more_gradient_to_the_first_stage_than_residual_ones(tiny_gradients):
    """With batch norm, a deep plain stack amplifies the gradient on its way back (it explodes rather
    than vanishes); residual shortcuts keep it near the last stage's. At 4 blocks per stage (50 conv
    layers) the measured ratio is 10-30x larger without shortcuts; asserted: 3x, on every seed."""
    ratio = {
        (row["variant"], row["blocks_per_stage"], row["seed"]): row["first_last_ratio"]
        for row in tiny_gradients
    }
    for seed in (0, 1):
        assert ratio["none", 4, seed] > 3 * ratio["short", 4, seed]
        assert ratio["long", 4, seed] > 3 * ratio["long+short", 4, seed]
        assert ratio["none", 4, seed] > ratio["none", 1, seed]  # and it grows with depth


def test_gradients_fall_back_to_random_images_without_the_data(tmp_path, capsys):
    flags = [*tiny_flags(tmp_path / "absent"), "--data.download", "false"]
    rows = gradients_at_init(BASE, flags, variants_named(["none"]), [1], num_seeds=1, num_batches=1)
    assert [row["input"] for row in rows] == ["random images (data not found)"]
    assert "RANDOM images stand in for the data" in capsys.readouterr().err


def test_gradients_command_rejects_a_bad_depth(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["gradients", "--config", *BASE, "--out", "unused", "--blocks_per_stage", "0"])
    assert exit_info.value.code == 2
    assert "--blocks_per_stage values must be integers >= 1" in capsys.readouterr().err
