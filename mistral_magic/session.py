"""One kernel's state and the turn loop: settings, chats and the HTTP client, without IPython."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import protocol
from .cache import ReplyCache, cache_key
from .conversation import ChatStore, Turn, build_messages
from .errors import LocalServerError, MistralMagicError, ReplyInterrupted
from .protocol import Completion, Endpoint
from .render.base import Renderer, ReplyInfo
from .secret import Secret
from .settings import MistralConfig, Settings

if TYPE_CHECKING:
    from .batch import AnnotationRun
    from .client import ChatClient, ChatStream
    from .local import LocalServer

LOCAL_SOURCE = "%mistral local"  # the source %mistral config shows for what local mode set


@dataclass(frozen=True)
class TurnOptions:
    """How one prompt is asked: which chat, and what the cell's flags changed."""

    chat: str = "default"
    system: str | None = None
    new: bool = False
    once: bool = False
    json: bool = False
    stop: tuple[str, ...] = ()
    cache: bool = False


class Session:
    """Everything one kernel keeps: configuration, named chats and one pooled HTTP client."""

    def __init__(self, config: MistralConfig):
        self.config = config
        self.store = ChatStore()
        self.last_run: AnnotationRun | None = None
        self._client: ChatClient | None = None
        self._cache: ReplyCache | None = None
        self.local: LocalServer | None = None  # the llama.cpp server of %mistral local
        self._local_banner: str | None = None

    @property
    def cache(self) -> ReplyCache:
        """The on-disk reply cache (opened on first use)."""
        if self._cache is None:
            self._cache = ReplyCache()
        return self._cache

    @property
    def client(self) -> ChatClient:
        """The pooled client, created on first use so that loading the extension stays cheap."""
        if self._client is None:
            from .client import ChatClient  # httpx is imported on first use, not on load

            self._client = ChatClient()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        self.stop_local()

    def endpoint(self, settings: Settings) -> Endpoint:
        """Where to send: a key is required, except for a server on this machine."""
        settings = self.resolve_local(settings)
        key = self.config.api_key()
        if key is None:
            key = Secret("") if is_loopback(settings.base_url) else self.config.require_api_key()
        return Endpoint(
            base_url=settings.base_url,
            api_key=key,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_retries=settings.max_retries,
            retry_base_delay=settings.retry_base_delay,
            retry_max_wait=settings.retry_max_wait,
        )

    def build_request(self, prompt: str, settings: Settings, options: TurnOptions) -> dict:
        """The request body for ``prompt`` in its chat, as it stands (nothing is changed yet)."""
        chat = self.store.get(options.chat)
        system = options.system
        if system is None and not options.new:
            system = chat.system
        if system is None:
            system = settings.system
        history = [] if (options.new or options.once) else chat.turns
        local = settings.sources.get("base_url") == LOCAL_SOURCE
        # llama.cpp's server rejects thinking parts (a chat that began with a magistral model).
        messages = build_messages(system, history, prompt, settings.max_history_turns, thinking=not local)
        body = protocol.build_body(
            settings.model,
            messages,
            stream=settings.stream,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_tokens=settings.max_tokens,
            random_seed=settings.random_seed,
            stop=list(options.stop) if options.stop else None,
            safe_prompt=settings.safe_prompt,
            response_format={"type": "json_object"} if options.json else None,
            reasoning_effort=settings.reasoning_effort,
        )
        if settings.random_seed is not None and local:
            body["seed"] = settings.random_seed  # llama.cpp reads OpenAI's name; Mistral would reject it
        return body

    def ask(self, prompt: str, settings: Settings, options: TurnOptions, renderer: Renderer) -> Completion:
        """Send ``prompt``, show the reply through ``renderer`` and record the turn.

        A failed request leaves the chat as it was. An interrupt keeps the partial reply, on
        screen and in the history (marked ``interrupted``), then raises :class:`ReplyInterrupted`.
        """
        settings = self.resolve_local(settings)
        endpoint = self.endpoint(settings)
        body = self.build_request(prompt, settings, options)
        key = cache_key(endpoint.base_url, body) if options.cache else None
        cached = self.cache.get(key) if key else None
        renderer.start(ReplyInfo(model=settings.model, chat=options.chat))

        def on_retry(attempt: int, attempts: int, delay: float, reason: str) -> None:
            renderer.notice(f"{reason}; retrying in {delay:.1f} s (attempt {attempt} of {attempts})")

        stream: ChatStream | None = None
        try:
            if settings.stream and cached is None:
                stream = self.client.stream(endpoint, body, on_retry, renderer.think)
                for delta in stream:
                    renderer.feed(delta)
                completion = stream.completion()
            else:
                completion = cached or self.client.complete(endpoint, body, on_retry)
                if completion.thinking:
                    renderer.think(completion.thinking)
                if completion.text:
                    renderer.feed(completion.text)
        except KeyboardInterrupt:
            partial = stream.text if stream is not None else ""
            self.store.record_usage(options.chat, stream.usage if stream is not None else None)
            kept = ""
            if partial:
                interrupted = replace(stream.completion(), finish_reason="interrupted")
                self._record(prompt, settings, options, interrupted, interrupted=True)
                kept = f"; the partial reply ({len(partial)} characters) is kept in chat '{options.chat}', marked as interrupted"
            error = ReplyInterrupted(f"Stopped by a kernel interrupt{kept}.")
            renderer.fail(partial, error, interrupted=True)
            raise error from None
        except MistralMagicError as error:
            renderer.fail(getattr(error, "partial", ""), error)
            raise
        renderer.finish(completion.text, finish_reason=completion.finish_reason, usage=completion.usage)
        if cached is None:
            self.store.record_usage(options.chat, completion.usage)
            if key is not None:
                self.cache.put(key, completion)
        self._record(prompt, settings, options, completion)
        if self._local_banner is not None:  # base_url=local started the server for this reply
            print(self._local_banner)
            self._local_banner = None
        return completion

    def start_local(
        self, model: str | None = None, port: int | None = None, n_ctx: int | None = None
    ) -> tuple[LocalServer, bool]:
        """Start this kernel's local model server (or reuse it when it runs with the same model,
        port and context size) and point the settings at it. Returns the server and whether it
        was reused."""
        from . import local

        server = self.local
        if server is not None and server.running() and server.matches(model, port, n_ctx):
            self.config.set_by(LOCAL_SOURCE, base_url=server.base_url, model=server.alias)
            return server, True
        if model is not None:
            local.check_model(model)  # before a running server is stopped for it
        if port is not None and (server is None or port != server.port):
            local.check_port(port)
        self.stop_local()
        server = local.start(model, port, n_ctx)
        self.local = server
        self.config.set_by(LOCAL_SOURCE, base_url=server.base_url, model=server.alias)
        return server, False

    def stop_local(self) -> LocalServer | None:
        """Stop the local model server, if any, and put back the settings it replaced."""
        server, self.local = self.local, None
        if server is None:
            return None
        server.stop()
        self.config.unset_by(LOCAL_SOURCE)
        return server

    def resolve_local(self, settings: Settings) -> Settings:
        """``base_url=local``: start (or reuse) the local model server and point ``settings`` at it.

        Settings that point at a local server that has died since give a clear error.
        """
        if settings.base_url == "local":
            server, reused = self.start_local()
            if not reused:
                self._local_banner = server.banner()
            flagged = settings.sources.get("model") == "cell flag"
            return replace(
                settings,
                base_url=server.base_url,
                model=settings.model if flagged else server.alias,
                sources={**settings.sources, "base_url": LOCAL_SOURCE, **({} if flagged else {"model": LOCAL_SOURCE})},
            )
        server = self.local
        if settings.sources.get("base_url") == LOCAL_SOURCE and server is not None and not server.running():
            tail = server.log_tail()
            raise LocalServerError(
                f"The local model server (pid {server.pid}) has stopped (exit code {server.process.returncode}); "
                "run %mistral local to start it again" + (f". Its last lines: {tail}" if tail else ".")
            )
        return settings

    def _record(
        self, prompt: str, settings: Settings, options: TurnOptions, completion: Completion, interrupted: bool = False
    ) -> None:
        if options.once:
            return
        chat = self.store.get(options.chat)
        if options.new:
            chat.reset(options.system)
        elif options.system is not None:
            chat.system = options.system
        chat.append_turn(
            Turn(
                user=prompt,
                assistant=completion.text,
                model=completion.model or settings.model,
                finish_reason=completion.finish_reason,
                usage=completion.usage,
                interrupted=interrupted,
                content=completion.content,
            )
        )


def is_loopback(base_url: str) -> bool:
    """True for a server on this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(base_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
