"""Images in user messages, checked as Mistral does (docs/mistral-api.md, "Images"): content
parts, data URLs of png/jpeg/webp/gif, 10 MB per image, 8 images per request, vision models only."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

MAX_IMAGES = 8
MAX_IMAGE_BYTES = 10_000_000
USER_PART_KEYS = {"text": {"type", "text"}, "image_url": {"type", "image_url"}}
_DATA_URL = re.compile(r"data:(?P<mime>image/(?:png|jpeg|webp|gif));base64,(?P<payload>.*)", re.S)
_SIGNATURES = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


def image_urls(request_json: Any) -> list[str]:
    """The URL (or data URL) of every ``image_url`` part of the request's user messages, in order."""
    urls = []
    for message in request_json.get("messages", []) if isinstance(request_json, dict) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                value = part.get("image_url")
                urls.append(value.get("url") if isinstance(value, dict) else value)
    return urls


def decode_data_url(url: str) -> tuple[str, bytes]:
    """(mime, bytes) of an image data URL; ValueError when it is not one Mistral accepts."""
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise ValueError("not a data:image/(png|jpeg|webp|gif);base64 URL")
    try:
        data = base64.b64decode(match.group("payload"), validate=True)
    except binascii.Error:
        raise ValueError("invalid base64") from None
    mime = match.group("mime")
    valid = data.startswith(_SIGNATURES[mime]) if mime in _SIGNATURES else data[8:12] == b"WEBP"
    if not valid:
        raise ValueError(f"the bytes are not {mime}")
    return mime, data


def user_content_errors(messages: list) -> list[dict]:
    """422 details for malformed parts of user messages (text and image_url parts only)."""
    details = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "user" or isinstance(message.get("content"), str):
            continue
        content = message.get("content")
        for number, part in enumerate(content if isinstance(content, list) else [content]):
            kind = part.get("type") if isinstance(part, dict) else None
            loc = ["body", "messages", index, "content", number]
            if kind not in USER_PART_KEYS or set(part) - USER_PART_KEYS[kind]:
                details.append({"type": "union_tag_invalid", "loc": loc, "msg": "Invalid content part", "input": part})
                continue
            inner = part[kind]
            if kind == "image_url" and isinstance(inner, dict):
                inner = inner.get("url")
            if not isinstance(inner, str):
                details.append({"type": "string_type", "loc": [*loc, kind], "msg": "Input should be a string"})
    return details


def image_error(request_json: dict, models: list[dict]) -> str | None:
    """Why the request's images are refused (a 400), or None."""
    urls = image_urls(request_json)
    if not urls:
        return None
    entry = next((m for m in models if m.get("id") == request_json.get("model")), None)
    if entry is not None and not entry.get("capabilities", {}).get("vision", True):
        return f"Model {request_json.get('model')} does not support image input"
    if len(urls) > MAX_IMAGES:
        return f"Too many images: {len(urls)} (at most {MAX_IMAGES})"
    for url in urls:
        if url.startswith(("http://", "https://")):
            continue
        try:
            _, data = decode_data_url(url)
        except ValueError as exc:
            return f"Invalid image URL: {exc}"
        if len(data) > MAX_IMAGE_BYTES:
            return f"Image too large: {len(data)} bytes (at most {MAX_IMAGE_BYTES})"
    return None
