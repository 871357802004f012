"""``examples/quickstart.ipynb`` runs top to bottom in a fresh ``python3`` kernel, on NumPy."""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"


def _require(module):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install 'xpnet[test]')")


def _outputs(cell):
    text = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            text.append(out.get("text", ""))
        elif "data" in out:
            text.append(out["data"].get("text/plain", ""))
    return "".join(text)


def test_notebook_is_in_sync_with_its_generator():
    _require("nbformat")
    import nbformat

    spec = importlib.util.spec_from_file_location("make_quickstart_notebook",
                                                  REPO / "examples" / "make_quickstart_notebook.py")
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    stored = nbformat.read(NOTEBOOK, as_version=4)
    built = generator.build()
    assert [c.source for c in stored.cells] == [c.source for c in built.cells], (
        "examples/quickstart.ipynb is out of date: run python examples/make_quickstart_notebook.py")
    assert all(not c.get("outputs") for c in stored.cells if c.cell_type == "code")


def test_quickstart_notebook_runs_on_numpy(monkeypatch):
    for module in ("nbformat", "nbclient", "ipykernel"):
        _require(module)
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    if "python3" not in KernelSpecManager().find_kernel_specs():
        pytest.skip("no 'python3' Jupyter kernel is installed (python -m ipykernel install --user)")
    monkeypatch.setenv("XPNET_BACKEND", "numpy")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO)}})
    client.execute()

    text = "\n".join(_outputs(c) for c in nb.cells if c.cell_type == "code")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert "backend: numpy" in text
    spirals = "using synthetic spirals" in text
    assert ("Epoch 30/30" if spirals else "Epoch 5/5") in text
    accuracy = float(re.search(r"test accuracy: ([\d.]+)", text).group(1))
    assert accuracy > 0.7  # measured: 0.839 on the Fashion-MNIST subset, 0.84 on the spirals
    assert len(re.findall(r"^predicted ", text, flags=re.M)) == 5
