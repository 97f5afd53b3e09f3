"""The project's only uses of private Lightning APIs, each where no public way exists.

Every workaround names its upstream issue, applies only to the Lightning versions it was checked against
(`CHECKED_LIGHTNING`), and has a test in tests/test_compat.py that fails once upstream behaves
differently, so that a Lightning upgrade shows at once which workaround to revisit or drop.
"""

from __future__ import annotations

import lightning
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.core.mixins import hparams_mixin
from packaging.version import Version

# The Lightning releases these workarounds were checked against: 2.4 (the oldest pyproject.toml allows)
# to 2.6. A later release keeps Lightning's own behaviour until tests/test_compat.py passes on it.
CHECKED_LIGHTNING = (Version("2.4"), Version("2.7"))
LIGHTNING_VERSION = Version(lightning.__version__)
CHECKED = CHECKED_LIGHTNING[0] <= LIGHTNING_VERSION < CHECKED_LIGHTNING[1]


class CheckpointArgumentsKeptCLI(LightningCLI):
    """LightningCLI that leaves the parsed configuration alone after `--ckpt_path`.

    Lightning parses the checkpoint's model hyperparameters over the whole parsed configuration, so
    they silently undo command-line flags and config files (`--model.net.skip_connections false`), and
    fail on keys that are link targets (Lightning-AI/pytorch-lightning#21455, open; #20801). There is no
    public switch; `UnetSkipCLI.parse_arguments` applies the checkpoint under the flags instead.
    """

    if CHECKED:

        def _parse_ckpt_path(self) -> None:
            """Nothing: the checkpoint's settings are already parsed, under the flags."""


def lightning_cli_config_given() -> bool:
    """Whether LightningCLI is instantiating the module being built now from its parsed configuration.

    Then `save_hyperparameters()` records that configuration (`net` as its class_path and init_args,
    which rebuilds the network from a checkpoint alone) instead of the constructor's arguments
    (Lightning-AI/pytorch-lightning#20726, open); Lightning has no public way to ask which of the two
    it records. Outside the checked versions it answers False once the private context is gone.
    """
    given = (
        hparams_mixin._given_hyperparameters
        if CHECKED
        else getattr(hparams_mixin, "_given_hyperparameters", None)
    )
    return given is not None and given.get() is not None
