"""Choosing the renderer for this frontend, and publishing static MIME bundles."""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from ..textsafe import encodable
from .base import Renderer
from .controls import strip_controls
from .text import TextRenderer


def publish(bundle: dict) -> None:
    """Show a MIME bundle in the output of the running cell. Its ``text/plain`` is what a terminal
    prints, so it carries no escape sequences or control characters from the model."""
    from IPython.display import display

    bundle = {kind: encodable(value) if isinstance(value, str) else value for kind, value in bundle.items()}
    if "text/plain" in bundle:
        bundle["text/plain"] = strip_controls(bundle["text/plain"])
    display(bundle, raw=True)


def show(obj: Any) -> None:
    """Display an object (a widget) in the output of the running cell."""
    from IPython.display import display

    display(obj)


def clear() -> None:
    from IPython.display import clear_output

    clear_output(wait=True)


def in_kernel(shell: Any) -> bool:
    """True inside a Jupyter kernel (as opposed to terminal IPython or a bare shell)."""
    return getattr(shell, "kernel", None) is not None


def is_terminal(shell: Any) -> bool:
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


def make_renderer(shell: Any, settings: Settings) -> Renderer:
    """The live widget view where widgets can be seen (or ``display=widget``), else plain text.

    With text, a terminal keeps the streamed text as the record; in a notebook the static
    display replaces it when the reply ends.
    """
    mode = settings.display
    if mode == "widget" or (mode == "auto" and frontend_shows_widgets(shell)):
        from .widget import WidgetRenderer

        return WidgetRenderer(show, publish, clear)
    if is_terminal(shell):
        return TextRenderer(None)
    if in_kernel(shell):
        return TextRenderer(publish, clear=clear)
    return TextRenderer(publish)


def batch_progress() -> Any:
    """A factory of progress views for this frontend: a widget bar in notebook frontends, a text
    bar elsewhere (cleared in a kernel, so the saved notebook keeps only the summary)."""
    from functools import partial

    from IPython import get_ipython

    from ..progress import ProgressView

    shell = get_ipython()
    if frontend_shows_widgets(shell):
        return partial(ProgressView, widget=True)
    if in_kernel(shell):
        return partial(ProgressView, clear=clear)
    return ProgressView
