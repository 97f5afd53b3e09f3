"""What is benchmarked: the network, loss and optimizer of an experiment config (`configs/*.yaml`)."""

from __future__ import annotations

import functools
import importlib
import importlib.resources
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from torch import nn

from unetskip.cli.class_paths import import_class
from unetskip.cli.lightning_cli import DEFAULT_DATA_CLASS
from unetskip.data import OxfordPetDataModule
from unetskip.models.class_count import set_class_count
from unetskip.training.losses import SegmentationLoss


def find_config(path: str | Path) -> Path:
    """`path` as given, else the copy of `configs/<name>` that the package ships (installed from a wheel,
    `configs/unet.yaml` works from any folder)."""
    if Path(path).is_file():
        return Path(path)
    shipped = Path(str(importlib.resources.files("unetskip"))) / path
    if Path(path).parent == Path("configs") and shipped.is_file():
        return shipped
    raise FileNotFoundError(f"bench: config file {str(path)!r} not found")


@dataclass
class Subject:
    """One experiment config, read for what a training step needs."""

    name: str
    config_path: Path
    net_class: type[nn.Module]
    net_args: dict[str, Any]
    loss: str
    ignore_index: int
    optimizer_class: type[torch.optim.Optimizer]
    optimizer_args: dict[str, Any] = field(default_factory=dict)
    data_root: str = "data/oxford-iiit-pet"
    data_class: type[L.LightningDataModule] = OxfordPetDataModule
    data_args: dict[str, Any] = field(default_factory=dict)  # the config's data init_args

    def build_net(self) -> nn.Module:
        return self.net_class(**self.net_args)

    def build_criterion(self) -> SegmentationLoss:
        return SegmentationLoss(self.loss, self.ignore_index)

    def optimizer_factory(self) -> Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]:
        return functools.partial(self.optimizer_class, **self.optimizer_args)

    @property
    def num_classes(self) -> int:
        return int(self.net_args.get("num_classes", self.net_args.get("classes", 2)))


def load_subject(path: str | Path) -> Subject:
    """Read `model.net`, `model.loss`, `model.optimizer` and `data` from an experiment config."""
    config_path = find_config(path)
    config = yaml.safe_load(config_path.read_text()) or {}
    model, data = config.get("model") or {}, config.get("data") or {}
    data_class_path = data.get("class_path", DEFAULT_DATA_CLASS)
    if "class_path" in data:  # `data: {class_path: ..., init_args: {...}}`
        data = data.get("init_args") or {}
    net = model.get("net")
    if not isinstance(net, dict) or "class_path" not in net:
        raise ValueError(f"{config_path}: model.net must have a class_path (and init_args)")
    optimizer = model.get("optimizer") or {"class_path": "torch.optim.AdamW"}
    net_class = import_class(net["class_path"], f"{config_path} model.net")
    net_args = dict(net.get("init_args") or {})
    data_class = import_class(data_class_path, f"{config_path} data")
    if hasattr(data_class, "class_names_from"):  # the class count follows the data, as in the CLI
        set_class_count(net_class, net_args, data_class.class_names_from(data))
    return Subject(
        name=config_path.stem,
        config_path=config_path,
        net_class=net_class,
        net_args=net_args,
        loss=model.get("loss", "ce+dice"),
        ignore_index=int(data.get("ignore_index", 255)),
        optimizer_class=import_class(optimizer["class_path"], f"{config_path} model.optimizer"),
        optimizer_args=dict(optimizer.get("init_args") or {}),
        data_root=str(data.get("root", "data/oxford-iiit-pet")),
        data_class=data_class,
        data_args=dict(data),
    )
