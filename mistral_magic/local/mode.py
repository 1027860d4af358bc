"""Local mode: the lifecycle of this kernel's llama.cpp server and the settings that point at it.

``%mistral local`` starts (or reuses) the server and sets ``base_url`` and ``model`` with the source
``%mistral local``; ``%mistral local stop`` stops it and puts back what they were. Settings with
``base_url=local`` start it on first use (:meth:`LocalMode.resolve`).
"""

from __future__ import annotations

import os
from dataclasses import replace

from ..config import MistralConfig
from ..errors import LocalServerError, hint
from ..settings import KEY_ENV, Settings
from . import server as local
from .server import LocalServer

LOCAL_SOURCE = "%mistral local"  # the source %mistral config shows for what local mode set


class LocalMode:
    """This kernel's local model server, if any, and the settings it replaced."""

    def __init__(self, config: MistralConfig):
        self.config = config
        self.server: LocalServer | None = None
        self.banner: str | None = None  # to show under the next answer: base_url=local started the server

    def start(
        self, model: str | os.PathLike[str] | None = None, port: int | None = None, n_ctx: int | None = None
    ) -> tuple[LocalServer, bool]:
        """Start the server (or reuse it when it runs with the same model, port and context size)
        and point the settings at it. Returns the server and whether it was reused."""
        server = self.server
        if server is not None and server.running() and server.matches(model, port, n_ctx):
            self.config.set_by(LOCAL_SOURCE, base_url=server.base_url, model=server.alias)
            return server, True
        # Every check before a running server is stopped for the new one.
        launch = local.plan(model, port, n_ctx, port_freed=server.port if server is not None else None)
        self.stop()
        server = self.server = local.start(launch, withhold=(KEY_ENV,))  # the key is not for this server
        self.config.set_by(LOCAL_SOURCE, base_url=server.base_url, model=server.alias)
        return server, False

    def stop(self) -> LocalServer | None:
        """Stop the server, if any, and put back the settings it replaced."""
        server, self.server = self.server, None
        if server is None:
            return None
        server.stop()
        self.config.unset_by(LOCAL_SOURCE)
        return server

    def resolve(self, settings: Settings) -> Settings:
        """``settings`` ready to send: ``base_url=local`` starts (or reuses) the server and points
        them at it; settings that point at a server that has died since give a clear error."""
        if settings.base_url == "local":
            server, reused = self.start()
            if not reused:
                self.banner = server.banner()
            flagged = settings.sources.get("model") == "cell flag"
            return replace(
                settings,
                base_url=server.base_url,
                model=settings.model if flagged else server.alias,
                sources={**settings.sources, "base_url": LOCAL_SOURCE, **({} if flagged else {"model": LOCAL_SOURCE})},
            )
        running = self.server
        if is_local(settings) and running is not None and not running.running():
            tail = running.log_tail()
            raise LocalServerError(
                f"The local model server (pid {running.pid}) has stopped (exit code {running.process.returncode}); "
                f"{hint('local_restart')}" + (f". Its last lines: {tail}" if tail else ".")
            )
        return settings

    def take_banner(self) -> str | None:
        """The banner of a server :meth:`resolve` started, once."""
        banner, self.banner = self.banner, None
        return banner


def is_local(settings: Settings) -> bool:
    """Whether ``settings`` point at the server of local mode."""
    return settings.sources.get("base_url") == LOCAL_SOURCE
