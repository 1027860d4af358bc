"""Wire-format facts of the chat-completions API: URLs, request bodies, reply pieces, error bodies."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any, NoReturn
from urllib.parse import urlsplit

from .. import errors
from ..errors import hint
from ..secret import Secret
from ..textsafe import encodable
from ..usage import TokenUsage
from .content import ContentParts, reasoning_of, split_content
from .pacing import Pacer

RETRYABLE_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))


def endpoint(base_url: str, path: str) -> str:
    """``{base}/{path}``: the base URL is used as given, with or without ``/v1`` or a trailing slash."""
    return f"{base_url.rstrip('/')}/{path}"


@functools.lru_cache(maxsize=32)
def is_loopback(url: str) -> bool:
    """True for a server on this machine (``localhost``, 127.0.0.0/8, ``::1``): it needs no key and is
    never reached through a proxy."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def build_body(
    model: str, messages: list[dict[str, Any]], *, stream: bool, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """A request body: model, messages, the optional ``fields`` that are set, and ``stream``.

    Only set fields are sent: the public Mistral API rejects unknown fields with 422.
    """
    return {"model": model, "messages": messages, **fields, "stream": stream}


def json_object_format() -> dict[str, Any]:
    """``response_format`` for any JSON object (the prompt must say JSON: docs/mistral-api.md)."""
    return {"type": "json_object"}


def json_schema_format(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Mistral's structured-output ``response_format``: ``name`` and a strict ``schema``, nothing else."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def llama_cpp_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's server takes a schema with ``json_object`` (it constrains the reply to it)."""
    return {"type": "json_object", "schema": schema}


def error_message(body: Any) -> str:
    """The human message in an error body: ``message`` (string or object), else ``detail``, else
    ``error.message``; an HTML page from a proxy becomes a short note."""
    if isinstance(body, dict):
        for key in ("message", "detail"):
            value = body.get(key)
            if value:
                return value if isinstance(value, str) else _describe_detail(value)
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
        return json.dumps(body)[:200]
    if isinstance(body, str):
        text = body.strip()
        if text.startswith("<"):
            return "the server answered with an HTML error page"
        return text.splitlines()[0][:200] if text else "no message"
    return "no message"


def reported_error(body: dict[str, Any]) -> str | None:
    """The server's message when a 200 body or chunk reports an error: a non-empty ``error`` field, or
    ``object: "error"``. ``"error": null`` (or ``{}``, ``""``) rides along in some servers' good replies."""
    if body.get("error") or body.get("object") == "error":
        return error_message(body)
    return None


def _describe_detail(detail: Any) -> str:
    """Validation details (FastAPI style) as ``field: message; ...``."""
    if isinstance(detail, dict) and "detail" in detail:
        detail = detail["detail"]
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = [str(p) for p in item.get("loc", []) if p != "body"]
                field = ".".join(loc) or "request"
                parts.append(f"field '{field}': {item.get('msg', 'invalid')}")
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, dict):
        return detail.get("msg") or json.dumps(detail)[:200]
    return str(detail)


def parse_body(raw: bytes, key: Secret) -> Any:
    """A response body as JSON when it is JSON, else as text; ``key`` masked, should the server echo it."""
    text = key.redact(raw.decode("utf-8", errors="replace"))
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting too deep to decode
        return text


def str_or_none(value: Any) -> str | None:
    """An optional text field (``model``, ``finish_reason``): a string, else ignored."""
    return value if isinstance(value, str) else None


_STATUS_ERRORS: dict[int, tuple[type[errors.ApiError], str]] = {
    400: (errors.BadRequestError, "Bad request: {message}"),
    401: (
        errors.AuthenticationError,
        "Unauthorized ({message}): the API key was rejected. {key_rejected}",
    ),
    403: (errors.PermissionDeniedError, "Forbidden: {message}"),
    404: (
        errors.NotFoundError,
        "Not found: {url}. The base URL is probably wrong ({base_url}); fix it with MISTRAL_BASE_URL or {base_url_hint}",
    ),
    422: (errors.UnprocessableError, "Rejected request: {message}"),
    429: (errors.RateLimitError, "Rate limited{tried}: {message}. Wait a little and run the cell again."),
}
_SERVER_ERROR = (errors.ServerError, "Server error{tried} from {base_url}: {message}. Try again later.")
_OTHER_ERROR = (errors.ApiError, "HTTP {status}: {message}")


def api_error(status: int, body: Any, *, url: str, base_url: str, attempts: int) -> errors.ApiError:
    """The exception, with its one actionable line, for an HTTP error status."""
    kind, template = _STATUS_ERRORS.get(status) or (_SERVER_ERROR if status >= 500 else _OTHER_ERROR)
    tried = f" (after {attempts} attempts)" if attempts > 1 else ""
    message = template.format(
        message=error_message(body),
        url=url,
        base_url=base_url,
        tried=tried,
        status=status,
        key_rejected=hint("key_rejected"),
        base_url_hint=hint("base_url"),
    )
    return kind(message, status=status, body=body)


@dataclass(frozen=True)
class Endpoint:
    """Where and how to send requests: base URL, key, timeouts and the retry policy."""

    base_url: str
    api_key: Secret
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retries: int = 2
    retry_base_delay: float = 0.5
    retry_max_wait: float = 20.0
    max_event_bytes: int = 16_000_000  # a line or event of a streamed reply
    max_reply_bytes: int = 128_000_000  # a whole reply body, after decompression
    pacer: Pacer | None = None  # shared by the workers of one annotation run

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.base_url!r}, api_key={self.api_key!r})"


@dataclass
class Completion:
    """A finished reply: ``text`` is the answer; ``content`` the assistant content to send back
    when it is more than that text (a reasoning model's thinking parts and text)."""

    text: str
    finish_reason: str | None = None
    usage: TokenUsage | None = None
    model: str | None = None
    content: list[dict[str, Any]] | None = None

    @property
    def thinking(self) -> str:
        """What a reasoning model thought before answering ("" for other models)."""
        return split_content(self.content)[0]


def checked_payload(raw: bytes, endpoint: Endpoint, url: str) -> dict[str, Any]:
    """A 2xx body as a JSON object that reports no error, else the one-line :class:`errors.BadResponseError`."""
    payload = parse_body(raw, endpoint.api_key)
    if not isinstance(payload, dict):
        raise errors.BadResponseError(f"The server at {url} did not answer with JSON.")
    message = reported_error(payload)
    if message is not None:
        raise errors.BadResponseError(f"The server reported an error: {message}")
    return payload


def completion_from(payload: dict[str, Any], endpoint: Endpoint, parts: ContentParts) -> Completion:
    """The completion in a whole (not streamed) reply; thinking parts go to ``parts``."""
    return _choice_completion(_choices(payload, endpoint)[0], payload, endpoint, parts)


def completions_from(payload: dict[str, Any], endpoint: Endpoint) -> list[Completion]:
    """Every choice of a whole reply (several when the request asked for ``n``)."""
    return [_choice_completion(choice, payload, endpoint, ContentParts()) for choice in _choices(payload, endpoint)]


def _choices(payload: dict[str, Any], endpoint: Endpoint) -> list[Any]:
    choices = payload.get("choices")
    if not choices:
        raise errors.BadResponseError(f"The server at {endpoint.base_url} sent a reply without choices.")
    if not isinstance(choices, list):
        _unexpected_shape(payload, endpoint)
    return choices


def _unexpected_shape(payload: dict[str, Any], endpoint: Endpoint) -> NoReturn:
    shown = json.dumps(payload)[:80]
    raise errors.BadResponseError(f"The server at {endpoint.base_url} sent a reply of an unexpected shape: {shown}")


def _choice_completion(choice: Any, payload: dict[str, Any], endpoint: Endpoint, parts: ContentParts) -> Completion:
    if not isinstance(choice, dict) or not isinstance(message := choice.get("message") or {}, dict):
        _unexpected_shape(payload, endpoint)
    _, text = parts.add(message.get("content"))
    if not parts.has_thinking and (reasoning := reasoning_of(message)):
        parts.add_reasoning(reasoning)
    return Completion(
        text=encodable(text),
        finish_reason=str_or_none(choice.get("finish_reason")),
        usage=TokenUsage.of(payload.get("usage")),
        model=str_or_none(payload.get("model")),
        content=parts.message_content(text),
    )
