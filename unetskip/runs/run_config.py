"""A run's name, folder and saved config under LightningCLI.

- `variant_name`: the run name that says which network variant was trained, for any logger whose name
  is left unset, so `--model.net.skip_connections false` gets its own name without editing a config.
- `RunConfigCallback`: saves `config.yaml` in the run's own folder (next to `checkpoints/`), so re-runs
  never clash on one shared file, prints that folder, and logs the full resolved config to W&B once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import yaml
from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser, SaveConfigCallback
from lightning.pytorch.loggers import Logger

from unetskip.runs.wandb_logger import AutoOfflineWandbLogger

# Loggers whose `name` is one of these get the variant name (Lightning's CSV and TensorBoard default).
UNSET_LOGGER_NAMES = (None, "", "lightning_logs")


def variant_name(net: Namespace | dict[str, Any], seed: int | bool | None) -> str:
    """`unet-skip-residual-seed42`, `unet-noskip-plain-seed0`, `unet-resnet34-seed42` (smp), ...

    `net` is the network's config (`class_path` and `init_args`). The name is the class name followed by
    whichever of `skip_connections` (skip/noskip), `residual` (residual/plain) and `encoder_name` its
    arguments hold, and the seed when it is an integer.
    """
    net = net.as_dict() if isinstance(net, Namespace) else dict(net)
    init_args = net.get("init_args") or {}
    parts = [str(net.get("class_path", "net")).rsplit(".", 1)[-1].lower()]
    if "skip_connections" in init_args:
        parts.append("skip" if init_args["skip_connections"] else "noskip")
    if "residual" in init_args:
        parts.append("residual" if init_args["residual"] else "plain")
    if init_args.get("encoder_name"):
        parts.append(str(init_args["encoder_name"]))
    if isinstance(seed, int) and not isinstance(seed, bool):
        parts.append(f"seed{seed}")
    return "-".join(parts)


def name_loggers(config: Namespace, subcommand: str | None = "fit") -> None:
    """Set `trainer.logger`'s `name` (one logger or a list) to the variant name where it is unset.

    Runs of other subcommands than `fit` get it as a suffix: `unet-skip-residual-seed42-test`.
    """
    suffix = "" if subcommand in (None, "fit") else f"-{subcommand}"
    loggers = config.get("trainer.logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        if not isinstance(logger, Namespace) or not isinstance(logger.get("init_args"), Namespace):
            continue  # True, False or None: Lightning's default logger, or none
        if "name" in logger.init_args and logger.init_args.name in UNSET_LOGGER_NAMES:
            logger.init_args.name = variant_name(config.model.net, config.get("seed_everything")) + suffix


def run_folder(logger: Logger | None, default_root_dir: str | Path) -> Path:
    """The folder of the run that `logger` (the trainer's first) logs: where ModelCheckpoint (with no
    `dirpath`) puts `checkpoints/` and `RunConfigCallback` the config.

    `<save_dir>/<name>/version_<n>` for CSV and TensorBoard, `<save_dir>/<project>/<run id>` for W&B,
    `default_root_dir` without a logger. Its parent holds all runs of that logger (`unetskip.runs.resume`),
    its name is the run's version as checkpoints record it (`unetskip.runs.checkpointing`).
    """
    if logger is None:
        return Path(default_root_dir)
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    return Path(logger.save_dir or default_root_dir) / str(logger.name) / version


class RunConfigCallback(SaveConfigCallback):
    """Saves LightningCLI's config as `config.yaml` in the run's folder (`run_folder`), prints
    `run folder: <path>`, and logs the config to W&B.

    The folder belongs to this run alone, so a file already there is this run's own (a resumed run) and is
    overwritten. An `AutoOfflineWandbLogger` gets the full resolved config (`trainer`, `model`, `data`,
    `seed_everything`, ...) as the run's config, in place of Lightning's partial hyperparameters.
    """

    def __init__(
        self, parser: LightningArgumentParser, config: Namespace, config_filename: str = "config.yaml"
    ) -> None:
        super().__init__(parser, config, config_filename, overwrite=True, save_to_log_dir=False)

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        folder = run_folder(trainer.loggers[0] if trainer.loggers else None, trainer.default_root_dir)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"run folder: {folder}")  # on rank 0 only, like every call of save_config
        self.parser.save(self.config, folder / self.config_filename, skip_none=False, overwrite=True)
        for logger in trainer.loggers:
            if isinstance(logger, AutoOfflineWandbLogger):
                logger.log_cli_config(yaml.safe_load(self.parser.dump(self.config, skip_none=False)))
