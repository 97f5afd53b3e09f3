"""Execute the study's notebook (`notebooks/ablation.ipynb`, shipped as `unetskip/notebooks/`) on a results
folder, and save the executed copy, with its table, plots and prediction examples, in that folder."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from unetskip.ablation.report import load_study


def shipped_notebook(name: str) -> Path:
    """`notebooks/<name>`: the copy a wheel ships as `unetskip/notebooks/`, else (a source checkout or an
    editable install, which map no data folders) the checkout's `notebooks/`."""
    package = Path(str(files("unetskip")))
    shipped = package / "notebooks" / name
    return shipped if shipped.is_file() else package.parent / "notebooks" / name


NOTEBOOK = shipped_notebook("ablation.ipynb")
# The notebook reads its results folder from this variable (default: runs/ablation_cpu).
RESULTS_ENV = "UNETSKIP_ABLATION_RESULTS"


def execute_notebook(results_dir: Path, notebook: Path = NOTEBOOK, timeout_s: int = 600) -> Path:
    """Run `notebook` top to bottom on `results_dir` in a fresh kernel; return the executed copy's path
    (`<results_dir>/<notebook name>`). A cell that fails raises nbclient's CellExecutionError."""
    load_study(results_dir)  # a clear error before a kernel starts, if this is no results folder
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook {notebook} not found: pass --notebook with its path")
    try:  # the `notebook` extra: only this command needs a Jupyter kernel
        import nbformat
        from nbclient import NotebookClient
    except ImportError as error:
        raise ImportError(
            f"executing a notebook needs nbclient and ipykernel: pip install 'unetskip[notebook]' ({error})"
        ) from error
    executed = nbformat.read(notebook, as_version=4)
    # The kernel works in this process's folder, so that relative paths in the runs' settings (a data.root
    # of ../shared/...) mean what they meant to `ablation run`, started from the same place.
    client = NotebookClient(executed, timeout=timeout_s, resources={"metadata": {"path": str(Path.cwd())}})
    client.execute(env={**os.environ, RESULTS_ENV: str(results_dir.resolve())})
    out = results_dir / notebook.name
    nbformat.write(executed, out)
    return out
