"""The class a config's `class_path` names."""

from __future__ import annotations

import importlib


def import_class(class_path: str, source: str) -> type:
    """`package.module.Class` -> the class; `source` names where the path came from, for errors."""
    module_name, _, class_name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"{source}: cannot import class_path {class_path!r}: {error}") from error
