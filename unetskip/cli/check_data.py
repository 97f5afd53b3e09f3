"""`unetskip check-data`: the data check of a run's data, from the same config files and flags as fit.

    python -m unetskip check-data --config configs/unet.yaml --config configs/folder.yaml [--data.root DIR]

Prints the report of `unetskip.data.check` for every split and exits with status 0 when training can
proceed, 1 when the data has errors, 2 when the data cannot be found. Nothing is written: no logger, no
W&B run, no checkpoint, and the data folder is only read.
"""

from __future__ import annotations

import warnings

from lightning.pytorch import LightningDataModule
from lightning.pytorch.cli import ArgsType

from unetskip.cli.lightning_cli import CLI_KWARGS, UnetSkipCLI
from unetskip.data.folder import FolderDataModule
from unetskip.training.module import SegmentationModule


class DataCheckCLI(UnetSkipCLI):
    """The project's CLI without a subcommand and without anything that writes or needs a device: its
    only use is the instantiated `datamodule`."""

    def before_instantiate_classes(self) -> None:
        trainer = self.config.trainer
        trainer.accelerator, trainer.devices, trainer.num_nodes = "cpu", 1, 1
        super().before_instantiate_classes()
        trainer.logger = False  # a configured WandbLogger would start a run
        trainer.callbacks = []


def check_data_main(args: ArgsType = None) -> int:
    """Run the data check on the data that `args` (fit's configs and flags) configure; return the exit
    status (0: no errors, 1: errors, 2: no data found)."""
    with warnings.catch_warnings():
        # `unetskip check-data ARGS` passes ARGS on while sys.argv also holds them: that is intended.
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        kwargs = CLI_KWARGS | {"parser_kwargs": CLI_KWARGS["parser_kwargs"] | {"prog": "unetskip check-data"}}
        cli = DataCheckCLI(SegmentationModule, LightningDataModule, args=args, run=False, **kwargs)
    datamodule = cli.datamodule
    if not isinstance(datamodule, FolderDataModule):
        print(
            f"error: check-data checks a folder of your own images and masks (data.class_path: "
            f"unetskip.data.FolderDataModule), not {type(datamodule).__name__}"
        )
        return 2
    try:
        report = datamodule.check()
    except FileNotFoundError as error:
        print(f"error: {error}")
        return 2
    print(report.format())
    return 1 if report.all_errors() else 0
