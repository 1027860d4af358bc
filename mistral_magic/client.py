"""The HTTP client: one pooled httpx connection pool, retries, streamed and one-shot completions."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from . import errors, protocol
from .content import ContentParts
from .protocol import Completion, Endpoint
from .retry import retry_delay
from .secret import Secret
from .sse import SSEDecoder

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")

RetryCallback = Callable[[int, int, float, str], None]
"""Called before each retry with (attempt number, attempts allowed, delay in s, reason)."""


class _Retryable(Exception):
    def __init__(self, error: Exception, reason: str, headers: dict | None = None):
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.headers = headers or {}


class ChatClient:
    """Sends chat-completion requests over one pooled ``httpx.Client``."""

    def __init__(self, http: httpx.Client | None = None):
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        # A server on this machine is never reached through a proxy from the environment.
        direct = {f"all://{host}": httpx.HTTPTransport(limits=limits) for host in LOOPBACK_HOSTS}
        self._http = http or httpx.Client(limits=limits, follow_redirects=True, mounts=direct)

    def close(self) -> None:
        self._http.close()

    def stream(
        self,
        endpoint: Endpoint,
        body: dict,
        on_retry: RetryCallback | None = None,
        on_thinking: Callable[[str], None] | None = None,
    ) -> ChatStream:
        """A streamed completion: iterate the returned object for answer text deltas; a reasoning
        model's thinking goes to ``on_thinking`` as it arrives."""
        return ChatStream(self, endpoint, {**body, "stream": True}, on_retry, on_thinking)

    def complete(self, endpoint: Endpoint, body: dict, on_retry: RetryCallback | None = None) -> Completion:
        """A one-shot completion (``stream: false``)."""
        payload = self._json_request(endpoint, "POST", "chat/completions", {**body, "stream": False}, on_retry)
        choices = payload.get("choices") or [{}]
        message = choices[0].get("message") or {}
        parts = ContentParts()
        _, text = parts.add(message.get("content"))
        return Completion(
            text=text,
            finish_reason=choices[0].get("finish_reason"),
            usage=payload.get("usage"),
            model=payload.get("model"),
            content=parts.message_content(text),
        )

    def models(self, endpoint: Endpoint) -> list[dict]:
        """The server's model list (``GET {base}/models``)."""
        payload = self._json_request(endpoint, "GET", "models", None, None)
        return list(payload.get("data") or [])

    def _json_request(
        self, endpoint: Endpoint, method: str, path: str, body: dict | None, on_retry: RetryCallback | None
    ) -> dict:
        url = protocol.endpoint(endpoint.base_url, path)
        response, _ = self.send_with_retries(endpoint, method, url, body, on_retry)
        try:
            return _read_json(response, endpoint, url)
        finally:
            response.close()

    def send_with_retries(
        self,
        endpoint: Endpoint,
        method: str,
        url: str,
        body: dict | None,
        on_retry: RetryCallback | None,
        first_attempt: int = 0,
    ) -> tuple[httpx.Response, int]:
        """Send until a 2xx response arrives (returned open, headers read) or retries run out."""
        attempts = endpoint.max_retries + 1
        attempt = first_attempt
        pacer = endpoint.pacer
        while True:
            if pacer is not None:
                pacer.before_attempt()
            try:
                return self._send_once(endpoint, method, url, body, attempt + 1), attempt
            except _Retryable as retry:
                if attempt + 1 >= attempts:
                    raise retry.error from None
                delay = retry_delay(attempt, retry.headers, base=endpoint.retry_base_delay, cap=endpoint.retry_max_wait)
                if on_retry is not None:
                    on_retry(attempt + 2, attempts, delay, retry.reason)
                if pacer is not None and retry.reason == "HTTP 429":
                    pacer.back_off(delay)  # a rate limit pauses every worker, not only this one
                else:
                    time.sleep(delay)
                attempt += 1

    def _send_once(self, endpoint: Endpoint, method: str, url: str, body: dict | None, attempt: int) -> httpx.Response:
        headers = {"Accept": "text/event-stream" if body and body.get("stream") else "application/json"}
        if endpoint.api_key:
            headers["Authorization"] = f"Bearer {endpoint.api_key.reveal()}"
        timeout = httpx.Timeout(endpoint.read_timeout, connect=endpoint.connect_timeout)
        request = self._http.build_request(method, url, json=body, headers=headers, timeout=timeout)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise _Retryable(timeout_error(endpoint, exc), "timeout") from None
        except httpx.TransportError as exc:
            raise _Retryable(connection_error(endpoint, exc), "connection failed") from None
        if response.status_code < 400:
            return response
        try:
            raw = response.read()
        except httpx.HTTPError:
            raw = b""
        finally:
            response.close()
        error = protocol.api_error(
            response.status_code,
            _redacted(protocol.parse_body(raw), endpoint.api_key),
            url=url,
            base_url=endpoint.base_url,
            attempts=attempt,
        )
        if response.status_code in protocol.RETRYABLE_STATUSES:
            raise _Retryable(error, f"HTTP {response.status_code}", dict(response.headers))
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
        body: dict,
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
        self.usage: dict | None = None
        self.model: str | None = None

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
        attempt = 0
        while True:
            response, attempt = self._client.send_with_retries(
                endpoint, "POST", url, self._body, self._on_retry, attempt
            )
            try:
                yield from self._read_events(response)
                return
            except httpx.TransportError as exc:
                if self._received or attempt >= endpoint.max_retries:
                    raise self._broken(exc) from None
                reason = "timeout" if isinstance(exc, httpx.TimeoutException) else "connection lost"
                delay = retry_delay(attempt, {}, base=endpoint.retry_base_delay, cap=endpoint.retry_max_wait)
                if self._on_retry is not None:
                    self._on_retry(attempt + 2, endpoint.max_retries + 1, delay, reason)
                time.sleep(delay)
                attempt += 1
            finally:
                response.close()

    def _read_events(self, response: httpx.Response) -> Iterator[str]:
        decoder = SSEDecoder()
        parts = self._parts
        loads = json.loads
        for chunk in response.iter_bytes():
            for data in decoder.feed(chunk):
                if data == "[DONE]":
                    return
                try:
                    event = loads(data)
                except ValueError:
                    raise self._stream_error(f"the server sent a malformed chunk: {data[:80]!r}") from None
                if not isinstance(event, dict):
                    continue
                if "error" in event or event.get("object") == "error":
                    message = protocol.error_message(_redacted(event, self._endpoint.api_key))
                    raise self._stream_error(f"the server reported an error mid-stream: {message}")
                usage = event.get("usage")
                if usage:
                    self.usage = usage
                if self.model is None:
                    self.model = event.get("model")
                choices = event.get("choices")
                if not choices:
                    continue
                choice = choices[0]
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if content.__class__ is str:
                    text = content
                else:
                    thinking, text = self._content.add(content)
                    if thinking and self._on_thinking is not None:
                        self._on_thinking(thinking)
                if text:
                    parts.append(text)
                    yield text
                reason = choice.get("finish_reason")
                if reason:
                    self.finish_reason = reason
        raise self._stream_error("the stream ended before the server said it was done ([DONE] missing)")

    def _stream_error(self, what: str) -> errors.StreamError:
        if self._parts:
            kept = f"; the {len(self.text)} characters received are kept"
        else:
            kept = "; the thinking received stays on screen" if self._content.has_thinking else ""
        return errors.StreamError(f"Reply incomplete: {what}{kept}.", partial=self.text)

    def _broken(self, exc: httpx.TransportError) -> errors.MistralMagicError:
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
        "the limit with %mistral config read_timeout=120."
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
        "%mistral config base_url=...) and your network."
    )


def _read_json(response: httpx.Response, endpoint: Endpoint, url: str) -> Any:
    try:
        raw = response.read()
    except httpx.TimeoutException as exc:
        raise timeout_error(endpoint, exc) from None
    except httpx.TransportError:
        raise errors.StreamError(f"Reply incomplete: the connection to {endpoint.base_url} was lost.") from None
    payload = protocol.parse_body(raw)
    if not isinstance(payload, dict):
        raise errors.StreamError(f"The server at {url} did not answer with JSON.")
    if "error" in payload or payload.get("object") == "error":
        raise errors.StreamError(f"The server reported an error: {protocol.error_message(payload)}")
    return payload


def _redacted(body: Any, key: Secret) -> Any:
    """A server-provided body with the key masked, in case the server echoes the request."""
    if isinstance(body, str):
        return key.redact(body)
    if isinstance(body, (dict, list)):
        text = json.dumps(body)
        cleaned = key.redact(text)
        return body if cleaned == text else json.loads(cleaned)
    return body
