"""Choosing the renderer for this frontend, and publishing static MIME bundles."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

from ..textsafe import encodable, strip_controls
from .base import Renderer
from .progress import ProgressView
from .text import TextRenderer


def publish(bundle: dict[str, str], metadata: dict[str, Any] | None = None) -> None:
    """Show a MIME bundle in the output of the running cell, with the output's ``metadata``. Its
    ``text/plain`` is what a terminal prints, so it carries no escape sequences or control characters
    from the model."""
    from IPython.display import display

    bundle = {kind: encodable(value) if isinstance(value, str) else value for kind, value in bundle.items()}
    if "text/plain" in bundle:
        bundle["text/plain"] = strip_controls(bundle["text/plain"])
    display(bundle, raw=True, metadata=metadata or None)


def show(obj: Any) -> None:
    """Display an object (a widget) in the output of the running cell."""
    from IPython.display import display

    display(obj)


def clear() -> None:
    """Clear the output of the running cell when the next output arrives."""
    from IPython.display import clear_output

    clear_output(wait=True)


def in_kernel(shell: Any) -> bool:
    """True inside a Jupyter kernel (as opposed to terminal IPython or a bare shell)."""
    return getattr(shell, "kernel", None) is not None


def is_terminal(shell: Any) -> bool:
    """True in terminal IPython, where streamed text stays as the record."""
    return type(shell).__name__ == "TerminalInteractiveShell"


def frontend_shows_widgets(shell: Any) -> bool:
    """Whether the cell runs in an interactive notebook frontend.

    JupyterLab, Notebook 7 and VS Code send the cell's id with each execution request;
    headless runners (nbconvert, nbval, papermill) do not, and have no one to show a widget to.
    """
    if not in_kernel(shell):
        return False
    try:
        parent = shell.kernel.get_parent()
    except Exception:
        return False
    return bool((parent or {}).get("metadata", {}).get("cellId"))


Frontend = Literal["widget", "terminal", "kernel", "plain"]


def frontend(shell: Any, display: str = "auto") -> Frontend:
    """Where output goes: a notebook frontend that shows widgets (or ``display=widget``), terminal
    IPython, another kernel client or a headless run (text, then the static display), or a plain shell."""
    if display == "widget" or (display == "auto" and frontend_shows_widgets(shell)):
        return "widget"
    if is_terminal(shell):
        return "terminal"
    return "kernel" if in_kernel(shell) else "plain"


def make_renderer(shell: Any, display: str = "auto") -> Renderer:
    """The live widget view where widgets can be seen, else plain text.

    With text, a terminal keeps the streamed text as the record; in a notebook the static
    display replaces it when the reply ends.
    """
    where = frontend(shell, display)
    if where == "widget":
        from .widget import WidgetRenderer  # anywidget and markdown load on first use

        return WidgetRenderer(show, publish, clear)
    if where == "terminal":
        return TextRenderer(None)
    if where == "kernel":
        return TextRenderer(publish, clear=clear)
    return TextRenderer(publish)


def progress_factory(shell: Any, display: str = "auto") -> Callable[[int, int], ProgressView]:
    """Progress views for this frontend: a widget bar where widgets can be seen, a text bar
    elsewhere (cleared in a kernel, so the saved notebook keeps only the summary)."""
    where = frontend(shell, display)
    if where == "widget":
        return partial(ProgressView, widget=True)
    if where == "kernel":
        return partial(ProgressView, clear=clear)
    return ProgressView
