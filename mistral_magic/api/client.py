"""The HTTP client: one pooled httpx connection pool, retries, streamed and one-shot completions."""

from __future__ import annotations

import itertools
import json
import json.scanner
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

import httpx

from .. import errors
from ..errors import hint
from ..secret import Secret
from ..textsafe import SurrogateJoiner, encodable_data
from . import protocol
from .bodylimit import ACCEPT_ENCODING, BodyNotDecodable, BodyTooLarge, iter_body, read_body
from .content import ContentParts
from .protocol import Completion, Endpoint
from .retry import retry_delay, server_hint
from .sse import SSEDecoder

_SCAN_JSON: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]
"""``(value, end)`` of the JSON value at an index: json.loads's own scanner (the C one when built)."""

RetryCallback = Callable[[int, int, float, str], None]
"""Called before each retry with (attempt number, attempts allowed, delay in s, reason)."""

MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Form:
    """A multipart/form-data body: text ``fields`` and ``files`` (name -> (filename, open binary file))."""

    fields: Mapping[str, str]
    files: Mapping[str, tuple[str, BinaryIO]]


class BearerAuth(httpx.Auth):
    """Adds ``Authorization: Bearer <key>`` as the request is sent: the revealed key is never a
    variable of any frame (a ``%xmode Verbose`` traceback prints those)."""

    def __init__(self, key: Secret):
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._key:
            request.headers["Authorization"] = "Bearer " + self._key.reveal()
        yield request

    def __repr__(self) -> str:
        return f"BearerAuth({self._key!r})"


def request_failed(endpoint: Endpoint, what: str) -> errors.MistralMagicError:
    return errors.RequestFailedError(f"The request to {endpoint.base_url} failed: {what}")


@contextmanager
def failures_in_one_line(
    endpoint: Endpoint, fail: Callable[[Endpoint, str], errors.MistralMagicError] = request_failed
) -> Iterator[None]:
    """Any exception of the request path that is not one of ours (a URL httpx cannot use, a body that
    cannot be encoded, a bug) becomes one line, by default a :class:`errors.RequestFailedError`, its
    frames dropped."""
    try:
        yield
    except errors.MistralMagicError:
        raise
    except Exception as exc:
        failure = fail(endpoint, endpoint.api_key.redact(f"{type(exc).__name__}: {exc}".splitlines()[0]))
        exc.__traceback__ = None  # its frames (httpx's included) stay out of reach of %debug and %tb
        raise failure from None


class _Retryable(Exception):
    def __init__(self, error: Exception, reason: str, headers: Mapping[str, str] | None = None):
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.headers: Mapping[str, str] = headers or {}


class Attempts:
    """The attempts of one request: the one place that decides whether to retry, how long to
    wait, tells ``on_retry`` and waits (or pauses every worker sharing the pacer, after a 429)."""

    def __init__(self, endpoint: Endpoint, on_retry: RetryCallback | None):
        self.endpoint = endpoint
        self.on_retry = on_retry
        self.allowed = endpoint.max_retries + 1
        self.done = 0  # attempts that failed so far

    def retry_or_raise(self, error: Exception, reason: str, headers: Mapping[str, str] | None = None) -> None:
        """Wait before the next attempt, or raise ``error`` when none is left."""
        if self.done + 1 >= self.allowed:
            raise error
        endpoint = self.endpoint
        delay = retry_delay(self.done, headers or {}, base=endpoint.retry_base_delay, cap=endpoint.retry_max_wait)
        if self.on_retry is not None:
            self.on_retry(self.done + 2, self.allowed, delay, reason)
        if endpoint.pacer is not None and reason == "HTTP 429":
            endpoint.pacer.back_off(delay)  # a rate limit pauses every worker, not only this one
        else:
            time.sleep(delay)
        self.done += 1


class ChatClient:
    """Sends chat-completion requests over pooled ``httpx`` connections.

    A server on this machine is reached directly, never through a proxy from the environment
    (see :func:`protocol.is_loopback`); ``http`` replaces both pools (a test's mock transport).
    """

    def __init__(self, http: httpx.Client | None = None):
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        self._http = http or httpx.Client(limits=limits)
        self._direct = http or httpx.Client(limits=limits, trust_env=False)

    def close(self) -> None:
        self._http.close()
        self._direct.close()

    def stream(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        on_retry: RetryCallback | None = None,
        on_thinking: Callable[[str], None] | None = None,
    ) -> ChatStream:
        """A streamed completion: iterate the returned object for answer text deltas; a reasoning
        model's thinking goes to ``on_thinking`` as it arrives."""
        return ChatStream(self, endpoint, {**body, "stream": True}, on_retry, on_thinking)

    def complete(self, endpoint: Endpoint, body: dict[str, Any], on_retry: RetryCallback | None = None) -> Completion:
        """A one-shot completion (``stream: false``)."""
        return self.complete_choices(endpoint, body, on_retry)[0]

    def complete_choices(
        self, endpoint: Endpoint, body: dict[str, Any], on_retry: RetryCallback | None = None
    ) -> list[Completion]:
        """Every choice of a one-shot completion (several when the body asks for ``n`` and the server honours it)."""
        payload = self.json_request(endpoint, "POST", "chat/completions", {**body, "stream": False}, on_retry)
        with failures_in_one_line(endpoint):
            return protocol.completions_from(payload, endpoint)

    def models(self, endpoint: Endpoint) -> list[dict[str, Any]]:
        """The server's model list (``GET {base}/models``)."""
        payload = self.json_request(endpoint, "GET", "models", None, None)
        with failures_in_one_line(endpoint):
            return list(payload.get("data") or [])

    def json_request(
        self,
        endpoint: Endpoint,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        on_retry: RetryCallback | None = None,
        *,
        form: Form | None = None,
        retry: bool = True,
    ) -> dict[str, Any]:
        """The JSON object answered to ``method {base}/{path}``; ``retry=False`` makes one attempt only
        (a request that must never be sent twice, as a batch job's creation)."""
        with failures_in_one_line(endpoint):
            url = protocol.endpoint(endpoint.base_url, path)
            attempts = Attempts(endpoint, on_retry)
            if not retry:
                attempts.allowed = 1
            response = self.send_with_retries(endpoint, method, url, body, attempts, form)
            try:
                return _read_json(response, endpoint, url)
            finally:
                response.close()

    def send_with_retries(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        attempts: Attempts,
        form: Form | None = None,
    ) -> httpx.Response:
        """Send until a 2xx response arrives (returned open, headers read) or ``attempts`` run out.
        A ``form`` is sent as multipart/form-data instead of the JSON ``body``, its files streamed
        (and rewound for each attempt)."""
        while True:
            if endpoint.pacer is not None:
                endpoint.pacer.before_attempt()
            try:
                return self._send_once(endpoint, method, url, body, attempts.done + 1, form)
            except _Retryable as retry:
                attempts.retry_or_raise(retry.error, retry.reason, retry.headers)

    def _send_once(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        body: dict[str, Any] | None,
        attempt: int,
        form: Form | None = None,
    ) -> httpx.Response:
        headers = {
            "Accept": "text/event-stream" if body and body.get("stream") else "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        timeout = httpx.Timeout(endpoint.read_timeout, connect=endpoint.connect_timeout)
        body = encodable_data(body) if body is not None else None  # a lone surrogate cannot go out as UTF-8
        http = self._direct if protocol.is_loopback(url) else self._http
        if form is None:
            request = http.build_request(method, url, json=body, headers=headers, timeout=timeout)
        else:
            request = http.build_request(
                method, url, data=form.fields, files=form.files, headers=headers, timeout=timeout
            )
        try:
            response = _send_within_origin(http, request, endpoint)
        except httpx.TimeoutException as exc:
            raise _Retryable(timeout_error(endpoint, exc), "timeout") from None
        except httpx.TransportError as exc:
            raise _Retryable(connection_error(endpoint, exc), "connection failed") from None
        if response.status_code < 400:
            return response
        try:
            raw = read_body(response, endpoint.max_reply_bytes)
        except (httpx.HTTPError, BodyTooLarge, BodyNotDecodable):
            raw = b""
        finally:
            response.close()
        error = protocol.api_error(
            response.status_code,
            protocol.parse_body(raw, endpoint.api_key),
            url=url,
            base_url=endpoint.base_url,
            attempts=attempt,
        )
        error.retry_after = server_hint(response.headers)
        if response.status_code in protocol.RETRYABLE_STATUSES:
            raise _Retryable(error, f"HTTP {response.status_code}", response.headers)
        raise error


class ChatStream:
    """Iterate for answer text deltas; ``text``, ``thinking``, ``finish_reason``, ``usage`` and
    ``model`` fill in as the stream goes. A stream that fails before anything arrived is retried;
    after that, never.
    """

    def __init__(
        self,
        client: ChatClient,
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
        self.usage: dict[str, Any] | None = None
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
        return self._read_stream(itertools.chain((first,), chunks), decoder)

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

    def _read_stream(self, chunks: Iterator[bytes], decoder: SSEDecoder) -> Iterator[str]:
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
                    self.usage = protocol.usage_of(usage) or self.usage
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
                else:
                    thinking, text = self._content.add(content)
                    thinking = thinking_joiner.feed(thinking) if thinking else ""
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
                        f"the server sent a line over {_megabytes(endpoint.max_event_bytes)} without ending it "
                        "(setting max_event_mb)"
                    )
        except BodyTooLarge:
            raise self._stream_error(
                f"the reply is over {_megabytes(endpoint.max_reply_bytes)} (setting max_reply_mb)"
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


def timeout_error(endpoint: Endpoint, exc: httpx.TimeoutException) -> errors.RequestTimeoutError:
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return errors.RequestTimeoutError(
            f"Could not connect to {endpoint.base_url} within {endpoint.connect_timeout:g} s; "
            "check the base URL and your network (setting connect_timeout)."
        )
    return errors.RequestTimeoutError(
        f"No answer from {endpoint.base_url} for {endpoint.read_timeout:g} s; try again, or raise "
        f"the limit with {hint('read_timeout')}."
    )


def connection_error(endpoint: Endpoint, exc: httpx.TransportError) -> errors.ConnectionFailedError:
    text = str(exc).lower()
    if "name or service" in text or "nodename" in text or "name resolution" in text or "getaddrinfo" in text:
        why = "the host name could not be resolved"
    elif "refused" in text:
        why = "the connection was refused"
    else:
        why = "the connection failed"
    return errors.ConnectionFailedError(
        f"Cannot reach {endpoint.base_url}: {why}. Check the base URL (MISTRAL_BASE_URL or "
        f"{hint('base_url')}) and your network."
    )


def _read_json(response: httpx.Response, endpoint: Endpoint, url: str) -> dict[str, Any]:
    try:
        raw = read_body(response, endpoint.max_reply_bytes)
    except httpx.TimeoutException as exc:
        raise timeout_error(endpoint, exc) from None
    except httpx.TransportError:
        raise errors.BadResponseError(f"Reply incomplete: the connection to {endpoint.base_url} was lost.") from None
    except BodyTooLarge:
        raise errors.BadResponseError(
            f"The reply from {url} is over {_megabytes(endpoint.max_reply_bytes)} (setting max_reply_mb)."
        ) from None
    except BodyNotDecodable as exc:
        raise errors.BadResponseError(f"The reply from {url} is unreadable: {exc}.") from None
    return protocol.checked_payload(raw, endpoint, url)


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB"


def _send_within_origin(http: httpx.Client, request: httpx.Request, endpoint: Endpoint) -> httpx.Response:
    """Send ``request`` (stream open), following redirects only on the same origin: a redirect to
    another host would carry the conversation there."""
    auth = BearerAuth(endpoint.api_key)
    for _ in range(MAX_REDIRECTS + 1):
        response = http.send(request, stream=True, auth=auth, follow_redirects=False)
        target = response.next_request
        if target is None:
            return response
        response.close()
        if _origin(target.url) != _origin(request.url):
            host = target.url.netloc.decode("ascii", "replace")
            raise errors.RedirectRefusedError(
                f"The server at {endpoint.base_url} redirected the request to another host ({host}); "
                f"it was not followed, so nothing was sent there. If that server is right, set it with {hint('base_url')}."
            )
        request = target
    raise errors.RedirectRefusedError(
        f"The server at {endpoint.base_url} redirected the request over {MAX_REDIRECTS} times."
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default
