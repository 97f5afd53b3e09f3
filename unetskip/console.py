"""What the command line prints: the run folder, the W&B line, the progress bar, the results, and real
warnings; nothing else by default.

`quiet_console()`, called by the CLI before anything is logged:
- Lightning's and Fabric's INFO messages are not shown (their loggers log WARNING and above, Lightning's
  documented way to configure its console logging): the litlogger tip, "GPU available", "Seed set to",
  "`Trainer.fit` stopped", "Restoring states from the checkpoint".
- torch's FutureWarning "`isinstance(treespec, LeafSpec)` is deprecated", which Lightning 2.6's own
  `lightning/pytorch/utilities/_pytree.py` raises on every run (Lightning-AI/pytorch-lightning#21326),
  is ignored; tests/test_console.py fails once Lightning stops raising it, so the filter can go.

`TRAINER_DEFAULTS` turns Lightning's model summary off (its FLOPs column reads 0, since the module has no
`example_input_array`); `--trainer.enable_model_summary true` shows it.
"""

from __future__ import annotations

import logging
import re
import warnings

# The loggers of Lightning's packages (each has its own console handler unless the root logger has one).
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")
PYTREE_DEPRECATION = "`isinstance(treespec, LeafSpec)` is deprecated"
PYTREE_MODULE = r"lightning\.pytorch\.utilities\._pytree"
TRAINER_DEFAULTS = {"enable_model_summary": False}


def quiet_console() -> None:
    """Apply the console policy above to this process (calling it again changes nothing)."""
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings(
        "ignore", message=re.escape(PYTREE_DEPRECATION), category=FutureWarning, module=PYTREE_MODULE
    )
