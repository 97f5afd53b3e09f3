#!/usr/bin/env bash
# The floors of pyproject.toml, tested: a venv of its own with the lowest supported version of every direct
# dependency (.ci/lowest.txt), unetskip installed into it as a user installs it (`pip install .`, not
# editable), then the tests that drive each dependency's API (see LOWEST_TESTS). Run by .ci/run after the
# main suite; needs the main venv (.venv, from `make install`) for its torch and torchvision.
#   LOWEST_VENV  where to build the venv (default .venv-lowest)
set -euo pipefail
cd "$(dirname "$0")/.."
LOWEST_VENV=${LOWEST_VENV:-.venv-lowest}
# The CLI end to end with the smp baseline and the W&B logger (lightning, jsonargparse, smp, wandb,
# torchmetrics), data and augmentations (albumentations, opencv, pillow, numpy), metrics (torchmetrics),
# the benchmark from an installed copy (matplotlib is imported by the ablation report's tests, tqdm by the
# download's). About a fifth of the suite's time; the rest uses nothing of these packages that these
# tests do not.
LOWEST_TESTS=(tests/test_cli.py tests/test_data.py tests/test_metrics.py tests/test_bench.py
    tests/test_download.py tests/test_wandb_logging.py)

rm -rf "$LOWEST_VENV"
python3 -m venv "$LOWEST_VENV"
# torch and torchvision (same versions as the floor, which CI pins for the main venv): hard links of the
# main venv's files instead of unpacking 5 GB again; pip replaces them if .ci/lowest.txt asks for others.
.venv/bin/python .ci/link_packages.py "$LOWEST_VENV" torch torchvision --except numpy pillow
PYTHON=$(cd "$LOWEST_VENV" && pwd)/bin/python
"$PYTHON" -m pip install --quiet -c .ci/lowest.txt ".[notebook]" pytest
"$PYTHON" -m pip check
"$PYTHON" - <<'PY'
from importlib import metadata
pins = [line.split("#")[0].strip() for line in open(".ci/lowest.txt")]
for pin in filter(None, pins):
    name, version = pin.split("==")
    installed = metadata.version(name.split("[")[0])
    assert installed == version, f"{name}: {installed} installed, {version} pinned"
print("lowest versions:", ", ".join(filter(None, pins)))
PY
# From outside the checkout's root, so that `unetskip` is the installed copy, not the source folder.
(cd tests && "$PYTHON" -m pytest -p no:cacheprovider --rootdir .. -c ../pyproject.toml \
    "${LOWEST_TESTS[@]/#tests\//}")
