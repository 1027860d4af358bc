"""Re-run the notebooks against the fake server and save their outputs (the ones nbval compares).

python tests/refresh_notebooks.py            # every notebook in notebooks/
python tests/refresh_notebooks.py NAME.ipynb
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.support

from tests.support.notebook_harness import start_fake_server

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def refresh(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=120, record_timing=False, resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    print(f"refreshed {path.name}")


def main() -> None:
    server = start_fake_server()
    try:
        names = sys.argv[1:] or sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
        for name in names:
            refresh(NOTEBOOKS / name)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
