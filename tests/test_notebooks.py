"""The notebooks in notebooks/: stored without outputs, and the quickstart executed top to bottom (on its
synthetic fallback, as on a machine without the dataset and offline). The study's notebook is executed on
a real tiny study in test_ablation.py."""

from __future__ import annotations

import os

import pytest
from conftest import REPO

NOTEBOOKS = REPO / "notebooks"


@pytest.mark.parametrize("name", ["ablation.ipynb", "quickstart.ipynb"])
def test_notebooks_are_stored_without_outputs(name):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def test_the_quickstart_runs_on_synthetic_data_when_offline(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    env = {
        **os.environ,
        "UNETSKIP_QUICKSTART_DATA": str(tmp_path / "no-dataset-here"),
        "UNETSKIP_QUICKSTART_DOWNLOAD": "0",
        "UNETSKIP_QUICKSTART_EPOCHS": "1",
        "UNETSKIP_QUICKSTART_RUNS": str(tmp_path / "runs"),
    }
    client = nbclient.NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(REPO)}})
    client.execute(env=env)
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "".join(output.get("text", "") for output in outputs)
    assert "data: SYNTHETIC pets" in text
    assert any("image/png" in output.get("data", {}) for output in outputs)  # the side-by-side figure
    for name in ("skips", "no-skips"):
        assert (tmp_path / "runs" / name / "checkpoints" / "last.ckpt").is_file()
    masks = sorted((tmp_path / "runs" / "masks-no-skips").glob("*.png"))
    assert len(masks) == 4
