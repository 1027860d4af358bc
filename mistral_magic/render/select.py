"""Choosing the renderer for this frontend, and publishing static MIME bundles."""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from .base import Renderer
from .text import TextRenderer


def publish(bundle: dict) -> None:
    """Show a MIME bundle in the output of the running cell."""
    from IPython.display import display

    display(bundle, raw=True)


def in_kernel(shell: Any) -> bool:
    """True inside a Jupyter kernel (as opposed to terminal IPython or a bare shell)."""
    return getattr(shell, "kernel", None) is not None


def is_terminal(shell: Any) -> bool:
    return type(shell).__name__ == "TerminalInteractiveShell"


def make_renderer(shell: Any, settings: Settings) -> Renderer:
    """The plain-text renderer; in a terminal the streamed text is the record, elsewhere a static
    display replaces it when the reply ends."""
    if is_terminal(shell):
        return TextRenderer(None)
    if in_kernel(shell):
        from IPython.display import clear_output

        return TextRenderer(publish, clear=lambda: clear_output(wait=True))
    return TextRenderer(publish)
