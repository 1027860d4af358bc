"""mistral-magic: a streaming ``%%mistral`` cell magic for Jupyter and IPython.

``%load_ext mistral_magic`` registers the magics; nothing heavy is imported until first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["annotate", "load_ipython_extension", "unload_ipython_extension", "side_by_side", "__version__"]

_loaded: dict[int, Any] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%mistral`` / ``%mistral`` in this shell (``%load_ext mistral_magic``)."""
    from .magics import MistralMagics

    if id(ipython) in _loaded:
        return
    magics = MistralMagics(shell=ipython)
    ipython.register_magics(magics)
    _loaded[id(ipython)] = magics


def unload_ipython_extension(ipython: Any) -> None:
    """Close the HTTP client and remove the magics (``%unload_ext mistral_magic``)."""
    magics = _loaded.pop(id(ipython), None)
    if magics is None:
        return
    magics.session.close()
    if magics in getattr(ipython, "configurables", []):
        ipython.configurables.remove(magics)
    registry = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        if registry[kind].get("mistral") is not None:
            del registry[kind]["mistral"]
    ipython.magics_manager.registry.pop(type(magics).__name__, None)


def side_by_side(**answers: str) -> Any:
    """Display answers next to each other, e.g. ``side_by_side(tutor=a, critic=b)``."""
    from .render.columns import side_by_side as build

    return build(**answers)


def annotate(items: Any, template: str, **options: Any) -> Any:
    """Label many items with one prompt template, concurrently and resumably; see
    :func:`mistral_magic.batch.annotate`."""
    from .batch import annotate as run

    return run(items, template, **options)
