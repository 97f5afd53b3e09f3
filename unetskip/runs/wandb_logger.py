"""Lightning's WandbLogger that never blocks a user without a W&B account.

With no API key configured, the run goes offline on its own and one line says where it is and how to
upload it later. `WANDB_MODE` (`online`, `offline`, `disabled`) wins when set.
"""

from __future__ import annotations

import netrc
import os
from argparse import Namespace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import wandb
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from unetskip.compat import drop_wandb_anonymous

DEFAULT_BASE_URL = "https://api.wandb.ai"


def api_key_configured() -> bool:
    """Whether W&B can authenticate without asking: `WANDB_API_KEY`, `WANDB_IDENTITY_TOKEN_FILE`, or a
    key for the W&B host (`WANDB_BASE_URL`, default api.wandb.ai) in the netrc file that `wandb login`
    writes (`NETRC`, default ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).hostname
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        entry = netrc.netrc(path).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def wandb_mode(offline: bool) -> str | None:
    """The run's mode: `WANDB_MODE` when set, else `"offline"` when asked for or when no key is
    configured, else None (wandb's default, online)."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "offline" if offline or not api_key_configured() else None


class AutoOfflineWandbLogger(WandbLogger):
    """WandbLogger whose run goes offline when no API key is configured, instead of failing.

    - No key configured (or `offline=True`) and no `WANDB_MODE`: the run is offline, wandb's own console
      output is silenced, and one line names the offline run folder and the `wandb sync` command.
    - `WANDB_MODE=online|offline|disabled`, when set, decides alone, read when the logger is built.
    - `log_model=True` logs the checkpoints of ModelCheckpoint as a `model` artifact at the end of
      training (`"all"`: every checkpoint as it is saved); an offline run keeps them until `wandb sync`.
    - Once `log_cli_config` has logged LightningCLI's full config, Lightning's own `log_hyperparams` call
      (the module's and datamodule's arguments, already under `model` and `data`) is skipped, so every
      key is in the W&B config once.

    - `version` is the W&B run id (as in WandbLogger): `fit --ckpt_path last` sets it to continue a run.

    Files go to `<save_dir>/wandb/`; checkpoints to `<save_dir>/<project>/<run id>/checkpoints/`.
    """

    def __init__(
        self,
        name: str | None = None,
        save_dir: str = "runs",
        project: str = "unetskip",
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        version: str | None = None,
        offline: bool = False,
        log_model: bool | Literal["all"] = False,
    ) -> None:
        mode = wandb_mode(offline)
        # Passed to wandb.init, as wandb reads WANDB_MODE once per process. When W&B goes offline on its
        # own, its console output is silenced: the one line printed by `experiment` says it all.
        self._announce = mode == "offline" and not os.environ.get("WANDB_MODE")
        mode_args = {"mode": mode} if mode else {}
        if self._announce:
            mode_args["settings"] = wandb.Settings(silent=True)
        # WandbLogger's own `offline=True` is not used: it would set WANDB_MODE for the whole process
        # and refuse `log_model`, while wandb logs artifacts offline and uploads them with `wandb sync`.
        super().__init__(
            name=name,
            save_dir=save_dir,
            project=project,
            version=version,
            log_model=log_model,
            entity=entity,
            group=group,
            tags=tags,
            **mode_args,
        )
        # WandbLogger always passes `anonymous=None`, which wandb 0.31 warns about on every run.
        drop_wandb_anonymous(self)
        # wandb looks for the git commit from `save_dir` and warns when that folder does not exist yet.
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        self.cli_config_logged = False

    @property
    def experiment(self) -> Any:
        """The wandb run, created on first use (a dummy on ranks other than 0)."""
        run = super().experiment
        if self._announce and rank_zero_only.rank == 0:
            self._announce = False
            folder = run.settings.sync_dir
            print(f"wandb: this run is offline, in {folder}; upload it with: wandb sync {folder}")
        return run

    def log_cli_config(self, config: dict[str, Any]) -> None:
        """Log LightningCLI's full resolved config as the run's config."""
        super().log_hyperparams(config)
        self.cli_config_logged = True

    def log_hyperparams(self, params: dict[str, Any] | Namespace) -> None:
        if not self.cli_config_logged:
            super().log_hyperparams(params)
