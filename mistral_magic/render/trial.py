"""Trial-run displays: the first filled prompt, and the answers next to their inputs."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .tables import table_bundle


def prompt_bundle(title: str, prompt: str) -> dict[str, str]:
    """A prompt shown as written (preformatted, escaped, sanitized)."""
    from .html import sanitize  # nh3 loads on first use, not with the extension

    html = sanitize(f"<p><strong>{escape(title)}</strong></p><pre>{escape(prompt)}</pre>")
    return {"text/html": html, "text/plain": f"{title}\n{prompt}"}


def results_bundle(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> dict[str, str]:
    """The answers of a trial run next to their inputs."""
    return table_bundle(headers, rows, title=title)
