"""A streamed completion: the SSE body read into answer text, thinking, finish reason and usage."""

from __future__ import annotations

import itertools
import json
import json.scanner
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import httpx

from .. import errors
from ..errors import hint
from ..textsafe import SurrogateJoiner
from ..usage import TokenUsage
from . import protocol
from .bodylimit import BodyNotDecodable, BodyTooLarge, iter_body
from .content import ContentParts, reasoning_of
from .drain import read_rest
from .failures import connection_error, failures_in_one_line, megabytes, request_failed, timeout_error
from .protocol import Completion, Endpoint
from .retry import Attempts, RetryCallback
from .sse import SSEDecoder

_SCAN_JSON: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
"""``(value, end)`` of the JSON value at an index: json.loads's own scanner (the C one when built)."""


class Sender(Protocol):
    """What a stream sends its request through (:class:`~mistral_magic.api.client.ChatClient`)."""

    def send_with_retries(
        self, endpoint: Endpoint, method: str, url: str, body: dict[str, Any] | None, attempts: Attempts
    ) -> httpx.Response: ...


class ChatStream:
    """Iterate for answer text deltas; ``text``, ``thinking``, ``finish_reason``, ``usage`` and
    ``model`` fill in as the stream goes. A stream that fails before anything arrived is retried;
    after that, never.
    """

    def __init__(
        self,
        client: Sender,
        endpoint: Endpoint,
        body: dict[str, Any],
        on_retry: RetryCallback | None,
        on_thinking: Callable[[str], None] | None = None,
    ):
        self._client = client
        self._endpoint = endpoint
        self._body = body
        self._on_retry = on_retry
        self._on_thinking = on_thinking
        self._parts: list[str] = []
        self._content = ContentParts()  # a reasoning model's thinking parts
        self.finish_reason: str | None = None
        self.usage: TokenUsage | None = None
        self.model: str | None = None
        self._answering = False  # an event arrived: the server is generating (and billing) this reply

    @property
    def text(self) -> str:
        """All text received so far."""
        return "".join(self._parts)

    @property
    def thinking(self) -> str:
        """All thinking received so far (reasoning models)."""
        return self._content.thinking

    def completion(self) -> Completion:
        """The reply so far, with the assistant content to send back when the model thought."""
        text = self.text
        return Completion(text, self.finish_reason, self.usage, self.model, self._content.message_content(text))

    @property
    def _received(self) -> bool:
        return bool(self._parts) or self._content.has_thinking

    def __iter__(self) -> Iterator[str]:
        endpoint = self._endpoint
        url = protocol.endpoint(endpoint.base_url, "chat/completions")
        attempts = Attempts(endpoint, self._on_retry)
        with failures_in_one_line(endpoint, self._failed):
            while True:
                response = self._client.send_with_retries(endpoint, "POST", url, self._body, attempts)
                try:
                    yield from self._read_events(response)
                    return
                except httpx.TransportError as exc:
                    timeout = isinstance(exc, httpx.TimeoutException)
                    if self._received or (timeout and self._answering):  # the server may still be generating it
                        raise self._broken(exc) from None
                    reason = "timeout" if timeout else "connection lost"
                    attempts.retry_or_raise(self._broken(exc), reason)
                finally:
                    response.close()

    def _read_events(self, response: httpx.Response) -> Iterator[str]:
        """The answer's deltas (not a generator itself: one level less for every delta to pass)."""
        decoder = SSEDecoder()
        chunks = self._limited_chunks(response, decoder)
        first = next(chunks, b"")
        if "json" in response.headers.get("content-type", "") or first.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{":
            # A server that ignored "stream": a whole completion, or an error body (LM Studio's {"error": ...}).
            return self._read_whole(first + b"".join(chunks), str(response.url))
        return self._read_stream(itertools.chain((first,), chunks), decoder, response)

    def _read_whole(self, raw: bytes, url: str) -> Iterator[str]:
        completion = protocol.completion_from(
            protocol.checked_payload(raw, self._endpoint, url), self._endpoint, self._content
        )
        self.finish_reason, self.usage, self.model = completion.finish_reason, completion.usage, completion.model
        if self._content.thinking and self._on_thinking is not None:
            self._on_thinking(self._content.thinking)
        if completion.text:
            self._parts.append(completion.text)
            yield completion.text

    def _read_stream(self, chunks: Iterator[bytes], decoder: SSEDecoder, response: httpx.Response) -> Iterator[str]:
        joiner = SurrogateJoiner()  # a pair split across two deltas is joined, a lone surrogate replaced
        thinking_joiner = SurrogateJoiner()
        parts = self._parts
        loads = json.loads
        scan = _SCAN_JSON
        redact = self._endpoint.api_key.redact  # every event, before anything reads it
        for chunk in chunks:
            events = decoder.feed(chunk)
            if events:
                self._answering = True
            for data in map(redact, events):
                if data == "[DONE]":
                    if decoder.errors:
                        break
                    tail = joiner.flush()
                    if tail:
                        parts.append(tail)
                        yield tail
                    read_rest(response, chunks)  # the body's end: the connection is then reused
                    return
                try:
                    try:
                        event, end = scan(data, 0)  # json.loads without its two Python-level calls and regexes
                    except StopIteration:
                        end = -1
                    if end != len(data):  # whitespace around the value, or not JSON: the full rules and their error
                        event = loads(data)
                except (ValueError, RecursionError):  # RecursionError: nesting too deep to decode
                    raise self._stream_error(f"the server sent a malformed chunk: {data[:80]!r}") from None
                if event.__class__ is not dict:
                    continue
                if "error" in data and ("error" in event or event.get("object") == "error"):
                    message = protocol.reported_error(event)
                    if message is not None:
                        raise self._stream_error(f"the server reported an error mid-stream: {message}")
                # The shape, checked once here: what the reply needs must fit; optional fields that do not are ignored.
                usage = event.get("usage")
                if usage:
                    self.usage = TokenUsage.of(usage) or self.usage
                if self.model is None:
                    self.model = protocol.str_or_none(event.get("model"))
                choices = event.get("choices")
                if not choices:
                    continue
                choice = choices[0] if choices.__class__ is list else None
                if not isinstance(choice, dict) or (delta := choice.get("delta") or {}).__class__ is not dict:
                    raise self._stream_error(f"the server sent a chunk of an unexpected shape: {data[:80]!r}")
                content = delta.get("content")
                if content.__class__ is str:
                    text = content
                    thinking = self._content.add_reasoning(reasoning_of(delta)) if len(delta) > 1 else ""
                else:
                    thinking, text = self._content.add(content)
                    thinking = thinking or self._content.add_reasoning(reasoning_of(delta))
                if thinking:
                    thinking = thinking_joiner.feed(thinking)
                    if thinking and self._on_thinking is not None:
                        self._on_thinking(thinking)
                if joiner.held or not text.isascii():
                    text = joiner.feed(text)
                if text:
                    parts.append(text)
                    yield text
                reason = choice.get("finish_reason")
                if reason and reason.__class__ is str:
                    self.finish_reason = reason
            if decoder.errors:
                raise self._stream_error(f"the server reported an error: {self._field_error(decoder.errors[0])}")
        if self.finish_reason is None:
            raise self._stream_error("the stream ended before the server said it was done ([DONE] missing)")
        # Some servers (ik_llama.cpp, older llama.cpp, TGI, mistral.rs) end the body after the finish_reason.
        tail = joiner.flush()
        if tail:
            parts.append(tail)
            yield tail

    def _field_error(self, value: str) -> str:
        """The message of an SSE ``error`` field (JSON or plain text), key masked."""
        value = self._endpoint.api_key.redact(value)
        try:
            return protocol.error_message(json.loads(value))
        except (ValueError, RecursionError):
            return protocol.error_message(value)

    def _limited_chunks(self, response: httpx.Response, decoder: SSEDecoder) -> Iterator[bytes]:
        """The body in bounded pieces; a StreamError once the reply, or a line or event still
        being received, is over its limit (settings max_reply_mb, max_event_mb)."""
        endpoint = self._endpoint
        try:
            for chunk in iter_body(response, endpoint.max_reply_bytes):
                yield chunk
                if decoder.pending_size > endpoint.max_event_bytes:
                    raise self._stream_error(
                        f"the server sent a line over {megabytes(endpoint.max_event_bytes)} without ending it "
                        "(setting max_event_mb)"
                    )
        except BodyTooLarge:
            raise self._stream_error(
                f"the reply is over {megabytes(endpoint.max_reply_bytes)} (setting max_reply_mb)"
            ) from None
        except BodyNotDecodable as exc:
            raise self._stream_error(str(exc)) from None

    def _failed(self, endpoint: Endpoint, what: str) -> errors.MistralMagicError:
        """An unexpected failure: after text arrived, a :class:`errors.StreamError` that keeps it."""
        return self._stream_error(what) if self._received else request_failed(endpoint, what)

    def _stream_error(self, what: str) -> errors.StreamError:
        if self._parts:
            kept = f"; the {len(self.text)} characters received are kept"
        else:
            kept = "; the thinking received stays on screen" if self._content.has_thinking else ""
        return errors.StreamError(f"Reply incomplete: {what}{kept}.", partial=self.text)

    def _broken(self, exc: httpx.TransportError) -> errors.MistralMagicError:
        if self._answering and not self._received and isinstance(exc, httpx.TimeoutException):
            return self._stream_error(
                f"no data for {self._endpoint.read_timeout:g} s (read timeout) after the server started answering; "
                "not sent again, as the server may still be generating (and billing) it; "
                f"raise the limit with {hint('read_timeout')} for a slow model"
            )
        if not self._received:
            if isinstance(exc, httpx.TimeoutException):
                return timeout_error(self._endpoint, exc)
            return connection_error(self._endpoint, exc)
        if isinstance(exc, httpx.TimeoutException):
            return self._stream_error(f"no data for {self._endpoint.read_timeout:g} s (read timeout)")
        return self._stream_error("the connection was lost mid-reply")
