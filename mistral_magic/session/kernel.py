"""One kernel's state and the turn loop: settings, chats and the HTTP client, without IPython.

Callers pass settings that are ready to send (see :meth:`.localmode.LocalMode.resolve`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..annotation.batchstatus import PollSchedule
from ..annotation.batchstore import BatchJobStore
from ..annotation.cache import ReplyCache, cache_key
from ..annotation.inflight import InFlight
from ..annotation.jsonmode import is_usable
from ..annotation.result import AnnotationRun
from ..annotation.runner import MIN_RETRIES
from ..annotation.schema import Schema
from ..annotation.validate import REPAIR_PROMPT, Validator, rejects_json_schema, until_valid
from ..api import protocol
from ..api.protocol import Completion, Endpoint
from ..cells import CellRef
from ..config import MistralConfig
from ..conversation import ChatStore, Replaced, Turn, build_messages, rerun_notice
from ..errors import BadRequestError, ImageError, MistralMagicError, ReplyInterrupted, UnprocessableError, hint
from ..images.attachment import MAX_IMAGES, Attachment
from ..images.vision import VisionCheck, count_images
from ..local.mode import LocalMode, is_local
from ..provenance import Provenance, Stopwatch, now_iso, request_hash, server_host
from ..render.base import Renderer, ReplyInfo
from ..replay import Replays, ReplayStream
from ..secret import Secret
from ..settings import Settings
from ..textsafe import encodable

if TYPE_CHECKING:  # httpx, under the client, is imported on first use
    from ..api.batchjobs import BatchJobs
    from ..api.client import ChatClient
    from ..api.stream import ChatStream


@dataclass(frozen=True)
class TurnOptions:
    """How one prompt is asked: which chat, and what the cell's flags changed besides settings."""

    chat: str = "default"
    system: str | None = None
    new: bool = False
    once: bool = False
    json: bool = False
    cache: bool = False
    images: tuple[Attachment, ...] = ()  # --image: sent after the prompt's text, kept with the turn
    schema: Schema | None = None  # --schema: the json_schema response format, replies validated
    votes: int = 1  # --votes K (with --each and --schema): K answers per item, asked with n
    cell: CellRef | None = None  # the notebook cell that asks, when the frontend said which


class ChatSession:
    """Everything one kernel keeps: configuration, named chats, one pooled HTTP client, the reply
    cache and the local model server; and the verbs of a cell's turn (:class:`.Session` adds
    ``--each``)."""

    def __init__(self, config: MistralConfig):
        self.config = config
        self.store = ChatStore()
        self.local = LocalMode(config)
        self.last_run: AnnotationRun | None = None
        self.in_flight = InFlight()  # requests that interrupted runs left running
        self.vision = VisionCheck()
        self._client: ChatClient | None = None
        self._cache: ReplyCache | None = None
        self._job_store: BatchJobStore | None = None
        self.batch_poll = PollSchedule()  # how often --batch asks how its jobs go
        self.replays = Replays()  # the notebooks replay reads (the magics tell it how to find this one)

    @property
    def cache(self) -> ReplyCache:
        """The on-disk reply cache (opened on first use)."""
        if self._cache is None:
            self._cache = ReplyCache()
        return self._cache

    @property
    def job_store(self) -> BatchJobStore:
        """The batch jobs this cache knows of (a table in the reply cache's file)."""
        if self._job_store is None:
            self._job_store = BatchJobStore(self.cache.path)
        return self._job_store

    def batch_jobs(self, settings: Settings) -> BatchJobs:
        """The Batch API of the configured server."""
        from ..api.batchjobs import BatchJobs  # httpx is imported on first use, not on load

        endpoint = self.endpoint(settings)
        return BatchJobs(self.client, replace(endpoint, max_retries=max(endpoint.max_retries, MIN_RETRIES)))

    def warn_cache_problem(self) -> None:
        """Print, once, that the cache file failed and answers are kept in memory."""
        warning = self._cache.take_warning() if self._cache is not None else None
        if warning:
            print(warning, file=sys.stderr)

    @property
    def client(self) -> ChatClient:
        """The pooled client, created on first use so that loading the extension stays cheap."""
        if self._client is None:
            from ..api.client import ChatClient  # httpx is imported on first use, not on load

            self._client = ChatClient()
        return self._client

    def close(self) -> None:
        """Close the client, the cache handle and the local server; the client and cache that requests
        of an interrupted run still use are closed once those finish (their answers reach the cache)."""
        client, cache, self._client, self._cache = self._client, self._cache, None, None
        if client is not None:
            self.in_flight.when_idle(client.close)
        if cache is not None:
            self.in_flight.when_idle(cache.close)
        if self._job_store is not None:
            self._job_store.close()
            self._job_store = None
        self.local.stop()

    def endpoint(self, settings: Settings) -> Endpoint:
        """Where to send, with the key for the configured server: required, except for a server on this
        machine; never for the local model server, which local mode chose (the key is not for it)."""
        key = Secret("") if is_local(settings) else self.config.api_key()
        if key is None:
            key = Secret("") if protocol.is_loopback(settings.base_url) else self.config.require_api_key()
        return Endpoint(
            base_url=settings.base_url,
            api_key=key,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_retries=settings.max_retries,
            retry_base_delay=settings.retry_base_delay,
            retry_max_wait=settings.retry_max_wait,
            max_event_bytes=int(settings.max_event_mb * 1_000_000),
            max_reply_bytes=int(settings.max_reply_mb * 1_000_000),
        )

    def build_request(self, prompt: str, settings: Settings, options: TurnOptions) -> dict[str, Any]:
        """The request body for ``prompt`` in its chat, as it stands (nothing is changed yet)."""
        chat = self.store.get(options.chat)
        system = options.system
        if system is None and not options.new:
            system = chat.system
        if system is None:
            system = settings.system
        cell_id, run = (options.cell.id, options.cell.run) if options.cell is not None else (None, None)
        replacing = settings.rerun == "replace"
        history = [] if (options.new or options.once) else chat.history_for(cell_id, run, replace=replacing)
        local = is_local(settings)
        # llama.cpp's server rejects thinking parts (a chat that began with a magistral model).
        images = list(options.images) or None
        messages = build_messages(
            system, history, prompt, settings.max_history_turns, thinking=not local, images=images
        )
        fields = settings.sampling.body_fields()
        if options.json:
            fields["response_format"] = protocol.json_object_format()
        if options.schema is not None:
            schema = options.schema
            fields["response_format"] = (
                protocol.llama_cpp_schema_format(schema.json_schema) if local else schema.response_format()
            )
        if options.votes > 1:
            fields["n"] = options.votes
        if settings.sampling.random_seed is not None and local:
            fields["seed"] = settings.sampling.random_seed  # llama.cpp reads OpenAI's name; Mistral would reject it
        return protocol.build_body(settings.model, messages, stream=settings.stream, fields=fields)

    def ask(self, prompt: str, settings: Settings, options: TurnOptions, renderer: Renderer) -> Completion:
        """Send ``prompt``, show the reply through ``renderer`` and record the turn.

        A failed request leaves the chat as it was. An interrupt keeps the partial reply, on
        screen and in the history (marked ``interrupted``), then raises :class:`ReplyInterrupted`.
        """
        try:
            return self._ask(prompt, settings, options, renderer)
        finally:
            self.warn_cache_problem()

    def _ask(self, prompt: str, settings: Settings, options: TurnOptions, renderer: Renderer) -> Completion:
        prompt = encodable(prompt)  # what is sent and recorded: lone surrogates replaced
        if options.system is not None:
            options = replace(options, system=encodable(options.system))
        body = self.build_request(prompt, settings, options)
        asked_at, clock = now_iso(), Stopwatch()
        recording = self.replays.answer_for(body, settings)
        key, cached = None, None
        if recording is None:  # a replay needs no key, no server and no cache
            endpoint = self.endpoint(settings)
            self.check_images(body, settings, endpoint)
            key = cache_key(endpoint.base_url, body) if options.cache else None
            cached = self.cache.get_usable(key, options.json) if key else None
        source = "replay" if recording is not None else "cache" if cached is not None else "live"
        renderer.start(ReplyInfo(model=settings.model, chat=options.chat))

        def on_retry(attempt: int, attempts: int, delay: float, reason: str) -> None:
            renderer.notice(f"{reason}; retrying in {delay:.1f} s (attempt {attempt} of {attempts})")

        def on_think(text: str) -> None:
            clock.arrived()
            renderer.think(text)

        def provenance_of(completion: Completion) -> Provenance:
            if recording is not None:
                return recording.provenance.as_source("replay")
            return self._provenance(completion, source, settings, options, body, asked_at, clock)

        stream: ChatStream | ReplayStream | None = None
        try:
            if recording is not None:
                stream = ReplayStream(recording, on_think, fast=settings.replay_pace == "fast")
            elif settings.stream and cached is None:
                stream = self.client.stream(endpoint, body, on_retry, on_think)
            if stream is not None:
                for delta in stream:
                    clock.arrived()
                    renderer.feed(delta)
                completion = stream.completion()
            else:
                completion = cached or self.client.complete(endpoint, body, on_retry)
                clock.arrived()
                if completion.thinking:
                    renderer.think(completion.thinking)
                if completion.text:
                    renderer.feed(completion.text)
        except KeyboardInterrupt:
            partial = stream.text if stream is not None else ""
            if source == "live":
                self.store.record_usage(options.chat, stream.usage if stream is not None else None)
            kept, provenance = "", None
            if stream is not None and partial:
                interrupted = replace(stream.completion(), finish_reason="interrupted")
                provenance = provenance_of(interrupted)
                self._record(prompt, settings, options, interrupted, provenance, interrupted=True)
                kept = f"; the partial reply ({len(partial)} characters) is kept in chat '{options.chat}', marked as interrupted"
            error = ReplyInterrupted(f"Stopped by a kernel interrupt{kept}.")
            renderer.fail(partial, error, interrupted=True, provenance=provenance)
            raise error from None
        except MistralMagicError as error:
            renderer.fail(getattr(error, "partial", ""), error)
            raise
        # Recorded before the final rendering, which can take a while: an interrupt then loses nothing.
        provenance = provenance_of(completion)
        if source == "live":
            self.store.record_usage(options.chat, completion.usage)
            if key is not None and is_usable(completion.text, options.json):
                self.cache.put(key, completion)
        replaced = self._record(prompt, settings, options, completion, provenance)
        try:
            renderer.finish(completion.text, provenance)
        except KeyboardInterrupt:
            raise ReplyInterrupted(
                f"Stopped while the reply was shown; the whole reply is kept in chat '{options.chat}'."
            ) from None
        if replaced is not None and replaced.left:
            print(rerun_notice(replaced, options.chat))
        return completion

    def _provenance(
        self,
        completion: Completion,
        source: str,
        settings: Settings,
        options: TurnOptions,
        body: dict[str, Any],
        asked_at: str,
        clock: Stopwatch,
    ) -> Provenance:
        """The record of an answer asked live or served from the reply cache."""
        return Provenance(
            source=source,
            model_asked=settings.model,
            model_answered=self.answering_model(settings, completion),
            server=server_host(settings.base_url),
            request_hash=request_hash(body),
            asked_at=asked_at,
            chat=options.chat,
            options=settings.sampling.body_fields() or None,
            seed=settings.sampling.random_seed,
            finish_reason=completion.finish_reason,
            usage=completion.usage,
            first_token_s=clock.first_token_s,
            total_s=clock.total_s(),
            reply_chars=len(completion.text),
            content=completion.content,
        )

    def answering_model(self, settings: Settings, completion: Completion) -> str | None:
        """The model that answered: the one the local server loaded (llama.cpp's server names
        whatever model was asked for in its reply), else the one the server's reply names."""
        server = self.local.server
        if is_local(settings) and server is not None:
            return server.alias
        return completion.model

    def ask_with_schema(
        self, prompt: str, settings: Settings, options: TurnOptions, renderer: Callable[[], Renderer]
    ) -> Any:
        """``--schema`` on a single cell: the validated answer (a model instance for a model class, else a
        dict), after at most ``settings.repair`` repairs, each shown and recorded like any turn; raises
        :class:`SchemaReplyError` with the reason otherwise."""
        assert options.schema is not None
        validator = Validator(options.schema)
        try:
            completion = self.ask(prompt, settings, options, renderer())
        except (BadRequestError, UnprocessableError) as error:
            if not rejects_json_schema(error):
                raise
            print(
                "The server does not take the json_schema response format; asking for JSON with the schema in the prompt.",
                file=sys.stderr,
            )
            options = replace(options, schema=None, json=True)  # the repairs too
            completion = self.ask(f"{prompt}\n\n{validator.schema.instructions()}", settings, options, renderer())

        def ask_again(last: Completion, reason: str, attempt: int) -> Completion:
            print(
                f"The reply does not match the schema ({reason}); asking again (repair {attempt} of {settings.repair}).",
                file=sys.stderr,
            )
            fix = REPAIR_PROMPT.format(reason=reason)
            if options.once:  # no history to lean on: the question and the reply go with the fix
                fix = f"{prompt}\n\nYour answer was:\n{last.text}\n\n{fix}"
            return self.ask(fix, settings, replace(options, new=False, system=None), renderer())

        return until_valid(validator, completion, settings.repair, ask_again)[0]

    def check_images(self, body: dict[str, Any], settings: Settings, endpoint: Endpoint) -> None:
        """Refuse, before sending, more images than Mistral takes or images for a model without vision."""
        count = count_images(body)
        if count > MAX_IMAGES:
            raise ImageError(
                f"This request would carry {count} images (the chat's earlier turns included); Mistral takes at "
                f"most {MAX_IMAGES}: {hint('fresh_chat')}."
            )
        if count:
            self.vision.require(self.client, endpoint, settings.model, is_local(settings))

    def _record(
        self,
        prompt: str,
        settings: Settings,
        options: TurnOptions,
        completion: Completion,
        provenance: Provenance,
        interrupted: bool = False,
    ) -> Replaced | None:
        if options.once:
            return None
        cell = options.cell
        turn = Turn(
            user=prompt,
            assistant=completion.text,
            model=provenance.model_answered or provenance.model_asked,
            finish_reason=completion.finish_reason,
            usage=completion.usage,
            interrupted=interrupted,
            content=completion.content,
            images=list(options.images) or None,
            cell_id=cell.id if cell is not None else None,
            execution_count=cell.number if cell is not None else None,
            provenance=provenance,
            run=cell.run if cell is not None else None,
        )
        chat = self.store.get(options.chat)
        return chat.record(turn, replace=settings.rerun == "replace", afresh=options.new, system=options.system)
