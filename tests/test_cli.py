"""The real CLI entry point on tiny synthetic data: fit, then validate and test from the checkpoint alone."""

from __future__ import annotations

import csv
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_flags

from unetskip.cli.lightning_cli import TRAINING_STATE_WARNINGS, cli_main
from unetskip.data import OxfordPetDataModule

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def cpu_recipe_configs() -> list[str]:
    """The CPU recipe on the Oxford subset: configs/cpu.yaml, then configs/cpu_subset.yaml."""
    return ["--config", str(CONFIGS / "cpu.yaml"), "--config", str(CONFIGS / "cpu_subset.yaml")]


def tiny_args(pet_root: Path, tmp_path: Path) -> list[str]:
    """Overrides that shrink the default experiment to seconds on a CPU."""
    return [
        "--config",
        str(CONFIGS / "unet.yaml"),
        *tiny_flags(pet_root),
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "runs"),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
    ]


def test_fit_fast_dev_run(pet_root, tmp_path):
    cli = cli_main(["fit", *tiny_args(pet_root, tmp_path), "--trainer.fast_dev_run", "true"])
    assert cli.trainer.state.finished
    assert "val/dice_macro" in cli.trainer.callback_metrics
    assert cli.model.net.skip_connections is True


@pytest.fixture(scope="module")
def trained_no_skip(pet_root, tmp_path_factory):
    """One real epoch of the ablation, flipped by one flag; returns (checkpoint path, tmp dir)."""
    tmp_path = tmp_path_factory.mktemp("fit")
    cli = cli_main(
        [
            "fit",
            *tiny_args(pet_root, tmp_path),
            "--model.net.skip_connections",
            "false",
            "--trainer.max_epochs",
            "1",
        ]
    )
    assert cli.model.net.skip_connections is False
    ckpts = sorted((tmp_path / "runs").rglob("last.ckpt"))
    assert len(ckpts) == 1
    return ckpts[0], tmp_path


class PetsNamedOtherwise(OxfordPetDataModule):
    """A DataModule chosen by `data.class_path` whose class names differ from the mask mode's."""

    def __init__(
        self,
        root: str = "data/oxford-iiit-pet",
        download: bool = False,
        image_size: int = 32,
        batch_size: int = 4,
        num_workers: int | None = 0,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            root, download, image_size, batch_size=batch_size, num_workers=num_workers, seed=seed
        )
        self.class_names = ["ground", "animal"]


def test_the_data_class_is_chosen_by_class_path_and_names_the_classes(pet_root, tmp_path):
    cli = cli_main(
        ["fit", *tiny_args(pet_root, tmp_path), "--data", "test_cli.PetsNamedOtherwise"]
        + ["--trainer.fast_dev_run", "true"]
    )
    assert type(cli.datamodule) is PetsNamedOtherwise
    assert cli.datamodule.root == pet_root and cli.datamodule.image_size == 32  # --data.root still applies
    assert cli.model.class_names == ["ground", "animal"] and cli.model.hparams.ignore_index == 255
    assert "val/iou/animal" in cli.trainer.callback_metrics


def test_checkpoint_records_the_architecture(trained_no_skip):
    ckpt, _ = trained_no_skip
    hparams = torch.load(ckpt, weights_only=True)["hyper_parameters"]
    assert hparams["net"]["class_path"] == "unetskip.models.UNet"
    assert hparams["net"]["init_args"]["skip_connections"] is False
    assert hparams["class_names"] == ["background", "pet"]  # linked from the DataModule, recorded
    data = torch.load(ckpt, weights_only=True)["datamodule_hyper_parameters"]
    assert data["_class_path"] == "unetskip.data.OxfordPetDataModule" and data["image_size"] == 32
    config = yaml.safe_load((ckpt.parents[1] / "config.yaml").read_text())
    assert config["model"]["net"]["init_args"]["skip_connections"] is False
    assert config["data"]["class_path"] == "unetskip.data.OxfordPetDataModule"
    assert config["model"]["lr_scheduler"]["init_args"]["T_max"] == 1  # follows max_epochs


@pytest.mark.parametrize("subcommand", ["validate", "test"])
def test_evaluate_from_the_checkpoint_alone(trained_no_skip, subcommand, tmp_path):
    ckpt, _ = trained_no_skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = cli_main(
            [
                subcommand,
                "--ckpt_path",
                str(ckpt),
                "--trainer.logger",
                "false",
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.default_root_dir",
                str(tmp_path),
            ]
        )
    # Nothing about the training callbacks' state in the checkpoint, which evaluation does not use.
    assert not [w for w in caught if str(w.message).startswith(TRAINING_STATE_WARNINGS)]
    prefix = "val" if subcommand == "validate" else "test"
    metrics = cli.trainer.callback_metrics
    for key in ("dice_macro", "iou_macro", "iou/pet", "dice/pet", "pet_iou_pooled", "pet_iou_per_image"):
        assert f"{prefix}/{key}" in metrics, key
    # The architecture, image size and data folder all came from the checkpoint.
    assert cli.model.net.skip_connections is False
    assert cli.model.net.depth == 2
    assert cli.datamodule.image_size == 32
    weights = torch.load(ckpt, weights_only=True)["state_dict"]
    torch.testing.assert_close(cli.model.state_dict()["net.head.weight"], weights["net.head.weight"])


@pytest.mark.parametrize("given", ["flag", "config file"])
def test_ckpt_path_in_a_config_file_works_like_the_flag(trained_no_skip, tmp_path, given):
    """The checkpoint's settings lie under both: a config file's keys and later flags override them."""
    ckpt, _ = trained_no_skip
    config = {"trainer": {"logger": False, "enable_progress_bar": False, "default_root_dir": str(tmp_path)}}
    if given == "config file":
        config |= {"ckpt_path": str(ckpt), "data": {"init_args": {"batch_size": 1}}}
        args = []
    else:
        args = ["--ckpt_path", str(ckpt), "--data.batch_size", "1"]
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(config))
    cli = cli_main(["test", "--config", str(tmp_path / "eval.yaml"), *args, "--data.num_workers", "0"])
    assert cli.config.test.ckpt_path == str(ckpt)
    assert cli.model.net.skip_connections is False and cli.model.net.depth == 2  # from the checkpoint
    assert cli.datamodule.image_size == 32  # from the checkpoint
    assert cli.datamodule.batch_size == 1 and cli.datamodule.num_workers == 0  # the config file's, a flag's
    assert "test/dice_macro" in cli.trainer.callback_metrics
    weights = torch.load(ckpt, weights_only=True)["state_dict"]
    torch.testing.assert_close(cli.model.state_dict()["net.head.weight"], weights["net.head.weight"])


def test_a_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump({"ckpt_path": str(tmp_path / "none.ckpt")}))
    with pytest.raises(SystemExit, match="none.ckpt is not a file"):
        cli_main(["validate", "--config", str(tmp_path / "eval.yaml")])


def test_evaluate_a_checkpoint_that_names_no_data_class(trained_no_skip, tmp_path):
    """Checkpoints written before `data.class_path` existed rebuild the Oxford-IIIT Pet DataModule."""
    ckpt, _ = trained_no_skip
    contents = torch.load(ckpt, weights_only=True)
    del contents["datamodule_hyper_parameters"]["_class_path"]
    torch.save(contents, tmp_path / "old.ckpt")
    cli = cli_main(
        ["test", "--ckpt_path", str(tmp_path / "old.ckpt"), "--trainer.logger", "false"]
        + ["--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(tmp_path)]
    )
    assert type(cli.datamodule) is OxfordPetDataModule and cli.datamodule.image_size == 32
    assert "test/dice_macro" in cli.trainer.callback_metrics


def test_print_config_shows_both_switches(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(CONFIGS / "unet.yaml"), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["net"]["init_args"]["skip_connections"] is True
    assert printed["model"]["net"]["init_args"]["residual"] is True
    assert printed["model"]["lr_scheduler"]["init_args"]["T_max"] == printed["trainer"]["max_epochs"]


@pytest.mark.parametrize("model_config", ["unet.yaml", "smp_unet.yaml", "no_skip.yaml"])
def test_cpu_recipe_gives_every_model_one_cycle_that_follows_epochs_and_lr(model_config, capsys):
    args = ["--config", str(CONFIGS / model_config), *cpu_recipe_configs()]
    flags = ["--trainer.max_epochs", "7", "--model.optimizer.init_args.lr", "0.01", "--print_config"]
    with pytest.raises(SystemExit):
        cli_main(["fit", *args, *flags])
    scheduler = yaml.safe_load(capsys.readouterr().out)["model"]["lr_scheduler"]
    assert scheduler["class_path"] == "torch.optim.lr_scheduler.OneCycleLR"
    assert scheduler["init_args"]["total_steps"] == 7 and scheduler["init_args"]["max_lr"] == 0.01
    assert "T_max" not in scheduler["init_args"]  # the model config's cosine is replaced, not merged


def cpu_recipe_args(pet_root: Path, tmp_path: Path, epochs: int) -> list[str]:
    """The U-Net under configs/cpu.yaml + cpu_subset.yaml, shrunk by tiny_flags, logging to a CSV file."""
    return [
        "fit",
        *["--config", str(CONFIGS / "unet.yaml"), *cpu_recipe_configs()],
        *tiny_flags(pet_root),
        *["--trainer.max_epochs", str(epochs), "--trainer.limit_train_batches", "1"],
        *["--trainer.logger", "CSVLogger", "--trainer.logger.save_dir", str(tmp_path)],
        *["--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"],
    ]


def test_cpu_recipe_one_cycle_warms_up_then_ends_at_its_minimum_in_the_last_epoch(pet_root, tmp_path):
    cli = cli_main(cpu_recipe_args(pet_root, tmp_path, epochs=20))  # a step past the end would raise
    with Path(cli.trainer.logger.log_dir, "metrics.csv").open() as metrics:
        rows = list(csv.DictReader(metrics))
    lrs = [float(row["train/lr"]) for row in rows if row.get("train/lr")]  # at each epoch's start
    assert len(lrs) == 20
    assert lrs[0] == pytest.approx(0.002 / 25) and lrs[1] == pytest.approx(0.002)  # 2 epochs of warm-up
    assert all(later < earlier for earlier, later in zip(lrs[1:-1], lrs[2:], strict=True))
    assert lrs[-1] == pytest.approx(0.002 / 25 / 1e4)


def test_one_cycle_with_one_warm_up_step_names_the_keys(pet_root, tmp_path):
    with pytest.raises(ValueError, match=r"model\.lr_scheduler.*pct_start.*--trainer\.max_epochs"):
        cli_main(cpu_recipe_args(pet_root, tmp_path, epochs=10))  # 10 epochs x pct_start 0.1 = 1 step


def test_one_cycle_still_divides_by_zero_for_one_warm_up_step():
    # pytorch/pytorch#180187: when this stops raising, configure_optimizers' translation can go.
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    with pytest.raises(ZeroDivisionError):
        torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.002, total_steps=10, pct_start=0.1)


def test_trimap_mode_links_three_classes(pet_root, tmp_path):
    cli = cli_main(
        [
            "fit",
            *tiny_args(pet_root, tmp_path),
            "--data.mask_mode",
            "trimap",
            "--model.net.num_classes",
            "3",
            "--trainer.fast_dev_run",
            "true",
        ]
    )
    assert cli.model.class_names == ["background", "pet", "border"]
    assert "val/iou/border" in cli.trainer.callback_metrics


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--model.net.skip_conections", "false", "skip_conections"),
        ("--model.net.depth", "deep", "depth"),
        ("--data.mask_mode", "rgb", "mask_mode"),
    ],
)
def test_wrong_key_or_type_gives_a_cli_error(flag, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(CONFIGS / "unet.yaml"), flag, value])
    assert exit_info.value.code != 0
    assert message in capsys.readouterr().err


def load_config(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text())


def test_no_skip_config_differs_from_default_only_in_the_switch():
    default, no_skip = load_config("unet.yaml"), load_config("no_skip.yaml")
    assert no_skip["model"]["net"]["init_args"].pop("skip_connections") is False
    assert default["model"]["net"]["init_args"].pop("skip_connections") is True
    assert no_skip == default  # the run name is derived from the network, not written in the config


def test_smp_config_differs_from_default_only_in_the_network():
    default, smp = load_config("unet.yaml"), load_config("smp_unet.yaml")
    assert smp["model"].pop("net")["class_path"] == "segmentation_models_pytorch.Unet"
    default["model"].pop("net")
    assert smp == default


def test_smp_baseline_trains_by_config_alone(pet_root, tmp_path):
    args = [
        "fit",
        "--config",
        str(CONFIGS / "smp_unet.yaml"),
        "--data.root",
        str(pet_root),
        "--data.download",
        "false",
        "--data.image_size",
        "64",
        "--data.batch_size",
        "2",
        "--data.num_workers",
        "0",
        "--trainer.default_root_dir",
        str(tmp_path),
        "--trainer.logger",
        "false",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.fast_dev_run",
        "true",
    ]
    cli = cli_main(args)
    assert type(cli.model.net).__name__ == "Unet"
    assert cli.trainer.state.finished


def test_module_and_console_script_are_the_same_cli():
    result = subprocess.run(
        [sys.executable, "-m", "unetskip", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert all(cmd in result.stdout for cmd in ("fit", "validate", "test", "predict"))
    pyproject = (CONFIGS.parent / "pyproject.toml").read_text()
    assert 'unetskip = "unetskip.cli.main:main"' in pyproject


def test_console_script_exits_with_status_0_after_a_run(pet_root, tmp_path, monkeypatch):
    tomllib = pytest.importorskip("tomllib")
    pyproject = tomllib.loads((CONFIGS.parent / "pyproject.toml").read_text())
    module_name, _, function_name = pyproject["project"]["scripts"]["unetskip"].partition(":")
    entry_point = getattr(importlib.import_module(module_name), function_name)
    args = [*tiny_args(pet_root, tmp_path), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1"]
    monkeypatch.setattr(sys, "argv", ["unetskip", "fit", *args, "--trainer.limit_val_batches", "1"])
    with pytest.raises(SystemExit) as exit_info:
        sys.exit(entry_point())  # what the script that pip installs does
    assert exit_info.value.code is None
    assert len(list((tmp_path / "runs").rglob("last.ckpt"))) == 1
