"""Loading the extension is cheap: the IPython face loads, every room behind it on first use."""

from __future__ import annotations

import ast
import subprocess
import sys

HEAVY = ("httpx", "markdown", "nh3", "anywidget", "ipywidgets", "pandas", "llama_cpp")
# The rooms behind the face: a cell or subcommand imports them, loading the extension does not.
ROOMS = ("session", "conversation", "annotation", "api", "local", "replay", "images.sources", "render.widget")


def loaded_after_load_ext(names: tuple[str, ...]) -> list[str]:
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'mistral_magic')\n"
        f"print([m for m in {names!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return ast.literal_eval(result.stdout.strip())


def test_load_ext_imports_no_heavy_library():
    assert loaded_after_load_ext(HEAVY) == []


def test_load_ext_imports_only_the_ipython_face():
    assert loaded_after_load_ext(tuple(f"mistral_magic.{room}" for room in ROOMS)) == []
