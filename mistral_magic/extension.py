"""The IPython extension: loading and unloading the magics, and the session of a loaded one."""

from __future__ import annotations

from typing import Any

from .magics import MistralMagics
from .session import Session

_loaded: dict[int, MistralMagics] = {}  # id(shell) -> its magics


def load(ipython: Any) -> None:
    """Register ``%%mistral`` / ``%mistral`` in this shell, once."""
    if id(ipython) in _loaded:
        return
    magics = MistralMagics(shell=ipython)
    ipython.register_magics(magics)
    _loaded[id(ipython)] = magics


def unload(ipython: Any) -> None:
    """Close the session (HTTP client, cache, local server) and remove the magics."""
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


def magics_of(ipython: Any) -> MistralMagics | None:
    """The magics loaded in ``ipython``, if any."""
    return _loaded.get(id(ipython)) if ipython is not None else None


def loaded_session() -> Session | None:
    """The session of the extension loaded in the running IPython, if any."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    magics = magics_of(get_ipython())
    return magics.session if magics is not None else None
