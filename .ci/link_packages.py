"""Hard-link installed distributions, with what they require, from this venv into another one.

    .venv/bin/python .ci/link_packages.py TARGET_VENV NAME... [--except NAME...]

The files and their .dist-info land in the target's site-packages as pip would put them, so pip there sees
the packages as installed and leaves them alone when their versions satisfy its constraints (or replaces
them when not). It saves the lowest-versions venv unpacking torch's 5 GB again. Scripts in bin/ are
skipped (their shebangs name this venv's python); `--except` names packages the target installs itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sysconfig
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def closure(names: list[str], skip: set[str]) -> list[metadata.Distribution]:
    """The distributions `names` and, recursively, what they require (with the extras asked for), less
    `skip`."""
    found: dict[str, metadata.Distribution] = {}
    extras: dict[str, set[str]] = {}
    pending = [(canonicalize_name(name), frozenset()) for name in names]
    while pending:
        name, wanted = pending.pop()
        if name in skip or (name in found and wanted <= extras[name]):
            continue
        extras.setdefault(name, set()).update(wanted)
        found[name] = dist = metadata.distribution(name)
        for line in dist.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in {"", *extras[name]}):
                pending.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return list(found.values())


def link_tree(dist: metadata.Distribution, source: Path, target: Path) -> int:
    count = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file)).resolve()
        if not path.is_relative_to(source) or not path.is_file():
            continue  # bin/ scripts and files outside site-packages
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        if not destination.exists():
            try:
                os.link(path, destination)
            except OSError:  # another file system
                shutil.copy2(path, destination)
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target_venv", type=Path)
    parser.add_argument("names", nargs="+")
    parser.add_argument("--except", dest="skip", nargs="*", default=[])
    args = parser.parse_args()
    source = Path(sysconfig.get_paths()["purelib"]).resolve()
    venv = str(args.target_venv)
    target = Path(sysconfig.get_paths(vars={"base": venv, "platbase": venv})["purelib"])
    dists = closure(args.names, {canonicalize_name(name) for name in args.skip})
    files = sum(link_tree(dist, source, target) for dist in dists)
    names = ", ".join(sorted(f"{d.metadata['Name']}=={d.version}" for d in dists))
    print(f"linked {files} files of {len(dists)} distributions into {target}: {names}")


if __name__ == "__main__":
    main()
