"""A network's class count as a config sets it: the constructor argument that holds it (each library names
it its own way) and setting it from the data's classes."""

from __future__ import annotations

import inspect
from collections.abc import MutableMapping
from typing import Any

# unetskip's UNet; segmentation_models_pytorch's networks.
CLASS_COUNT_KEYS = ("num_classes", "classes")


def class_count_key(net_class: type) -> str | None:
    """The argument of `net_class`'s constructor that is its number of output classes (None: it has none
    of CLASS_COUNT_KEYS)."""
    parameters = inspect.signature(net_class).parameters
    return next((key for key in CLASS_COUNT_KEYS if key in parameters), None)


def set_class_count(net_class: type, init_args: MutableMapping[str, Any], class_names: list[str]) -> None:
    """Set `init_args`' class count to `len(class_names)`, the data's classes.

    A value in `init_args` other than the constructor's default is a setting of the user's: when it differs
    from the data's count, ValueError names both keys (`model.net.init_args.<key>`, `data.class_names`).
    """
    key = class_count_key(net_class)
    if key is None:
        return
    default = inspect.signature(net_class).parameters[key].default
    given, count = init_args.get(key, default), len(class_names)
    if given not in (count, default):
        raise ValueError(
            f"model.net.init_args.{key} is {given} but data.class_names has {count} classes {class_names}: "
            f"drop model.net.init_args.{key} (it follows data.class_names)"
        )
    init_args[key] = count
