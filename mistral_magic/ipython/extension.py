"""The IPython extension: loading and unloading the magics, and the session of a loaded one.

Unloading keeps the kernel's state (chats, usage, the last ``--each`` run, the requests an interrupted
run left running, the settings set here and the typed key) for the next load in the same shell, so
``%reload_ext`` loses nothing; the HTTP client, the cache handle and the local model server are closed
(the client once those requests finish) and made anew on use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from ..config import ConfigState
from ..images.figures import remember_figures
from .explain import keep_question_marks
from .magics import MistralMagics

if TYPE_CHECKING:
    from ..annotation.inflight import InFlight
    from ..annotation.result import AnnotationRun
    from ..conversation import ChatStore
    from ..session import Session

_loaded: dict[int, MistralMagics] = {}  # id(shell) -> its magics


@dataclass(frozen=True)
class _KeptState:
    """What an unload keeps for the next load in the same shell."""

    config: ConfigState
    session: _SessionState | None  # None: no cell or subcommand used the session


@dataclass(frozen=True)
class _SessionState:
    store: ChatStore
    last_run: AnnotationRun | None
    in_flight: InFlight  # a re-run after the reload waits for these instead of paying for them again

    @classmethod
    def of(cls, session: Session) -> _SessionState:
        return cls(session.store, session.last_run, session.in_flight)

    def restore(self, session: Session) -> None:
        session.store = self.store
        session.last_run = self.last_run
        session.in_flight = self.in_flight


_kept: WeakKeyDictionary[Any, _KeptState] = WeakKeyDictionary()  # shell -> its state while unloaded


def load(ipython: Any) -> None:
    """Register ``%%mistral`` / ``%mistral`` in this shell, once, with the state an unload kept."""
    if id(ipython) in _loaded:
        return
    magics = MistralMagics(shell=ipython)
    kept = _kept.pop(ipython, None)
    if kept is not None:
        magics.restore(kept.config)
        if kept.session is not None:
            kept.session.restore(magics.session)
    ipython.register_magics(magics)
    _loaded[id(ipython)] = magics
    cleanup = getattr(ipython, "input_transformers_cleanup", None)
    if cleanup is not None and keep_question_marks not in cleanup:
        cleanup.append(keep_question_marks)
    post_execute = ipython.events.callbacks["post_execute"]
    if remember_figures not in post_execute:  # first: matplotlib-inline's hook closes the figures
        post_execute.insert(0, remember_figures)
    ipython.events.register("pre_run_cell", magics.cells.pre_run_cell)


def unload(ipython: Any) -> None:
    """Close the session (HTTP client, cache, local server), keep its state and remove the magics."""
    magics = _loaded.pop(id(ipython), None)
    if magics is None:
        return
    session = None
    if magics.has_session:
        magics.session.close()  # stops the local server first, which puts back the settings it replaced
        session = _SessionState.of(magics.session)
    _kept[ipython] = _KeptState(magics.state(), session)
    if magics in getattr(ipython, "configurables", []):
        ipython.configurables.remove(magics)
    registry = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        if registry[kind].get("mistral") is not None:
            del registry[kind]["mistral"]
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    cleanup = getattr(ipython, "input_transformers_cleanup", None)
    if cleanup is not None and keep_question_marks in cleanup:
        cleanup.remove(keep_question_marks)
    if remember_figures in ipython.events.callbacks["post_execute"]:
        ipython.events.unregister("post_execute", remember_figures)
    if magics.cells.pre_run_cell in ipython.events.callbacks["pre_run_cell"]:
        ipython.events.unregister("pre_run_cell", magics.cells.pre_run_cell)


def forget(ipython: Any) -> None:
    """Drop the state an unload kept, so that the next load starts afresh (as in a new kernel)."""
    _kept.pop(ipython, None)


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
