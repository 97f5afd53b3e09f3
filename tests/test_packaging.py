"""pyproject.toml lists the packages of the wheel by hand (one of them is mapped: configs/ ships as
unetskip.configs): a subpackage added to the tree but not to the list would be missing from every install."""

from __future__ import annotations

import pytest
from conftest import REPO


def test_every_subpackage_is_in_the_wheel():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "unetskip").rglob("__init__.py")
    }
    mapped = set(setuptools["package-dir"])
    assert set(setuptools["packages"]) - mapped == on_disk
    assert all((REPO / folder).is_dir() for folder in setuptools["package-dir"].values())
