"""Every answer's saved output carries its provenance, and it survives nbconvert.

Notebooks run in real kernels (nbclient) against the fake server; the saved ``.ipynb`` is read as
JSON, as any other tool would read it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

from tests.fakeapi import Reply
from tests.support import TEST_KEY

KEY = "mistral_magic"


def run_notebook(cells: list[str], path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(nb, path)
    return nb


def html(output: dict) -> str:
    value = output["data"]["text/html"]
    return "".join(value) if isinstance(value, list) else value


def answer_outputs(cell) -> list[dict]:
    return [o for o in cell["outputs"] if KEY in o.get("metadata", {})]


def test_each_saved_answer_carries_its_provenance_and_no_secret(kernel_env, tmp_path):
    fake = kernel_env
    fake.add_rule("seeded", Reply(text="Seeded answer.", model="mistral-small-2506"))
    path = tmp_path / "lesson.ipynb"
    run_notebook(
        [
            "%load_ext mistral_magic",
            "%%mistral -m mistral-small-latest -t 0.2 --seed 7 --max-tokens 50\nA seeded question",
            "%%mistral --once --cache\nCached question",
            "%%mistral --once --cache\nCached question",
        ],
        path,
    )
    saved = json.loads(path.read_text())
    live = answer_outputs(saved["cells"][1])[0]["metadata"][KEY]
    assert live["source"] == "live"
    assert live["model_asked"] == "mistral-small-latest" and live["model_answered"] == "mistral-small-2506"
    assert live["server"] == f"127.0.0.1:{fake.url.rsplit(':', 1)[1]}"
    assert live["options"] == {"temperature": 0.2, "max_tokens": 50, "random_seed": 7} and live["seed"] == 7
    assert live["finish_reason"] == "stop" and live["usage"]["completion_tokens"] > 0
    assert 0 <= live["first_token_s"] <= live["total_s"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", live["asked_at"])
    assert re.fullmatch(r"[0-9a-f]{64}", live["request_hash"])
    assert live["reply_chars"] == len("Seeded answer.")
    footer = html(answer_outputs(saved["cells"][1])[0])
    assert "mistral-small-2506 (asked: mistral-small-latest) · stop · " in footer
    first, second = (answer_outputs(saved["cells"][i])[0]["metadata"][KEY] for i in (2, 3))
    assert (first["source"], second["source"]) == ("live", "cache")
    assert first["request_hash"] == second["request_hash"]
    assert "from the cache" in html(answer_outputs(saved["cells"][3])[0])
    assert TEST_KEY not in path.read_text() and TEST_KEY[-12:] not in path.read_text()


def test_provenance_survives_nbconvert_to_notebook_and_html(kernel_env, tmp_path):
    path = tmp_path / "lesson.ipynb"
    run_notebook(["%load_ext mistral_magic", "%%mistral\nConvert me"], path)
    original = answer_outputs(json.loads(path.read_text())["cells"][1])[0]["metadata"][KEY]
    convert = [sys.executable, "-m", "nbconvert", "--output-dir", str(tmp_path / "out")]
    subprocess.run([*convert, "--to", "notebook", str(path)], check=True, capture_output=True)
    converted = json.loads((tmp_path / "out" / "lesson.ipynb").read_text())
    assert answer_outputs(converted["cells"][1])[0]["metadata"][KEY] == original
    subprocess.run([*convert, "--to", "html", str(path)], check=True, capture_output=True)
    html = (tmp_path / "out" / "lesson.html").read_text()
    assert "Echo: Convert me" in html
    assert f"{original['model_answered']} · stop · " in html  # the footer: who answered, how it ended
