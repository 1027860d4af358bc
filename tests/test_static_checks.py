"""The type checker and the linter, as tests: the one test command also runs them (and so does CI).

Configured in pyproject.toml: mypy in default mode for the package and strict for api/,
annotation/ and render/; ruff's lint rules and its formatter (line length 120).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "command",
    [
        ["mypy"],
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
    ],
    ids=["mypy", "ruff check", "ruff format"],
)
def test_static_check_passes(command):
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"


def test_nothing_cites_a_file_outside_the_repository():
    """The wire facts live in docs/mistral-api.md, which cites Mistral's public documentation."""
    root = Path(__file__).resolve().parents[1]
    sources = [
        *root.glob("mistral_magic/**/*.py"),
        *root.glob("tests/**/*.py"),
        *root.glob("*.md"),
        *root.glob("docs/*.md"),
    ]
    citing = [str(path.relative_to(root)) for path in sources if "PROTOCOL" + ".md" in path.read_text(encoding="utf-8")]
    assert citing == []
