"""Loading the extension is cheap: the heavy libraries load on first use."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("httpx", "markdown", "nh3", "anywidget", "ipywidgets", "pandas", "llama_cpp")


def test_load_ext_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.instance().run_line_magic('load_ext', 'mistral_magic')\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
