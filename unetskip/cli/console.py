"""What the command line prints: the run folder, the W&B line, the progress bar, the results, and real
warnings; nothing else by default.

`quiet_console()`, called by the CLI before anything is logged:
- Lightning's and Fabric's INFO messages are not shown (their loggers log WARNING and above, Lightning's
  documented way to configure its console logging): the litlogger tip, "GPU available", "Seed set to",
  "`Trainer.fit` stopped", "Restoring states from the checkpoint".
- Three warnings that ask nothing of the user are ignored, each matched by message, category and the
  module that raises it (`HIDDEN_WARNINGS`): torch's FutureWarning "`isinstance(treespec, LeafSpec)` is
  deprecated", which Lightning 2.6's own `_pytree.py` raises on every run
  (Lightning-AI/pytorch-lightning#21326; tests/test_console.py fails once Lightning stops raising it, so
  that filter can go); "No seed found, seed set to 0" of test and predict without `seed_everything`
  (the seed is in the run's config.yaml); Lightning's note that its default logger is CSVLogger when
  TensorBoard is not installed.

`class_table` is the per-class IoU and Dice printed at the end of fit (the last validation), validate
and test.

`TRAINER_DEFAULTS` turns Lightning's model summary off (its FLOPs column reads 0, since the module has no
`example_input_array`); `--trainer.enable_model_summary true` shows it.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

# The loggers of Lightning's packages (each has its own console handler unless the root logger has one).
LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric")
PYTREE_DEPRECATION = "`isinstance(treespec, LeafSpec)` is deprecated"
# (start of the message, category, module that raises it)
HIDDEN_WARNINGS = (
    (PYTREE_DEPRECATION, FutureWarning, r"lightning\.pytorch\.utilities\._pytree"),
    ("No seed found, seed set to", UserWarning, r"lightning\.fabric\.utilities\.seed"),
    (
        "Starting from v1.9.0, `tensorboardX` has been removed as a dependency",
        UserWarning,
        r"lightning\.pytorch\.trainer\.connectors\.logger_connector\.logger_connector",
    ),
)
TRAINER_DEFAULTS = {"enable_model_summary": False}


def class_table(metrics: Mapping[str, Any], stage: str, class_names: Sequence[str]) -> str:
    """The per-class IoU and Dice of `stage` ("val", "test") among `metrics` (the trainer's
    `callback_metrics`: `<stage>/iou/<class>`, `<stage>/dice/<class>`, `<stage>/iou_macro`, ...) as a
    table, macro means last; '' when `metrics` holds none. A class absent from the images and the
    predictions has no score (nan), and the macro means leave it out."""
    if f"{stage}/iou_macro" not in metrics:
        return ""
    width = max(len(name) for name in [*class_names, "macro mean"])
    lines = [f"{stage} scores per class:", f"  {'class':<{width}}     IoU    Dice"]
    for name in class_names:
        iou, dice = (float(metrics.get(f"{stage}/{score}/{name}", float("nan"))) for score in ("iou", "dice"))
        lines.append(f"  {name:<{width}}  {iou:6.3f}  {dice:6.3f}")
    iou, dice = (float(metrics[f"{stage}/{score}_macro"]) for score in ("iou", "dice"))
    lines.append(f"  {'macro mean':<{width}}  {iou:6.3f}  {dice:6.3f}")
    return "\n".join(lines)


def quiet_console() -> None:
    """Apply the console policy above to this process (calling it again changes nothing)."""
    for name in LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for message, category, module in HIDDEN_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(message), category=category, module=module)
