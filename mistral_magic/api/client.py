"""The HTTP client: one pooled httpx connection pool, retries, streamed and one-shot completions."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import httpx

from .. import errors
from ..errors import hint
from ..secret import Secret
from ..textsafe import encodable_data
from . import protocol
from .bodylimit import ACCEPT_ENCODING, BodyNotDecodable, BodyTooLarge, read_body
from .failures import connection_error, failures_in_one_line, megabytes, timeout_error
from .protocol import Completion, Endpoint
from .retry import Attempts, RetryCallback, server_hint
from .stream import ChatStream

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


class _Retryable(Exception):
    def __init__(self, error: Exception, reason: str, headers: Mapping[str, str] | None = None):
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.headers: Mapping[str, str] = headers or {}


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
            request = http.build_request(method, _parsed(url), json=body, headers=headers, timeout=timeout)
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


def _read_json(response: httpx.Response, endpoint: Endpoint, url: str) -> dict[str, Any]:
    try:
        raw = read_body(response, endpoint.max_reply_bytes)
    except httpx.TimeoutException as exc:
        raise timeout_error(endpoint, exc) from None
    except httpx.TransportError:
        raise errors.BadResponseError(f"Reply incomplete: the connection to {endpoint.base_url} was lost.") from None
    except BodyTooLarge:
        raise errors.BadResponseError(
            f"The reply from {url} is over {megabytes(endpoint.max_reply_bytes)} (setting max_reply_mb)."
        ) from None
    except BodyNotDecodable as exc:
        raise errors.BadResponseError(f"The reply from {url} is unreadable: {exc}.") from None
    return protocol.checked_payload(raw, endpoint, url)


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


@functools.lru_cache(maxsize=32)
def _parsed(url: str) -> httpx.URL:
    """``url`` parsed once: httpx would parse the same string for every request (URLs are immutable)."""
    return httpx.URL(url)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default
