"""Workarounds for upstream behaviour that has no public switch, each in its own section with the
upstream issue it waits for; tests/test_compat.py fails when upstream changes so a workaround can go.
"""

from __future__ import annotations

from lightning.pytorch.loggers import WandbLogger

# --- WandbLogger: the `anonymous` argument ---------------------------------------------------------
# Lightning's WandbLogger (checked with lightning 2.6.6) puts `anonymous=None` into its wandb.init
# arguments whatever it is given; `anonymous` is a named parameter, so its `**kwargs` cannot override it.
# wandb since wandb/wandb#10909 (anonymous mode removed; checked with 0.31) prints "The anonymous
# setting has no effect and will be removed" for it on every run.
WANDB_INIT_ATTRIBUTE = "_wandb_init"


def drop_wandb_anonymous(logger: WandbLogger) -> None:
    """Remove `anonymous` from the arguments `logger` will pass to wandb.init, if it still puts it there."""
    init_args = getattr(logger, WANDB_INIT_ATTRIBUTE, None)
    if isinstance(init_args, dict):
        init_args.pop("anonymous", None)
