"""The quickstart notebook runs end to end (in a Jupyter kernel) with tiny settings."""

from __future__ import annotations

from pathlib import Path

import nbclient  # dev extras: a missing one is a broken install, not a skip
import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def with_parameters(notebook, values: dict) -> None:
    """Insert a cell setting ``values`` right after the cell tagged ``parameters`` (as papermill does)."""
    index = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    lines = ["import torch", "torch.set_num_threads(1)"] + [f"{k} = {v!r}" for k, v in values.items()]
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell("\n".join(lines)))


def test_quickstart_notebook_runs_with_tiny_settings(tmp_path):
    notebook = nbformat.read(NOTEBOOKS / "quickstart.ipynb", as_version=4)
    with_parameters(notebook, {
        "DATA_ROOT": str(tmp_path / "data"), "WORK_DIR": str(tmp_path / "work"), "NUM_VIDEOS": 12,
        "FRAMES_PER_VIDEO": 16, "BATCH_SIZE": 2, "MAX_STEPS": 2, "NUM_INFERENCE_STEPS": 2, "NUM_SAMPLES": 2,
    })
    client = nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/gif" in o.get("data", {}) or "image/png" in o.get("data", {})]
    assert len(images) >= 5  # training clip (gif + sheet), 2 samples, the sample sheet, independent sample
    assert (tmp_path / "work" / "samples.png").is_file()
    text = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert "background drift" in text
