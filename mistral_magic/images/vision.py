"""Whether a model reads images, from the server's ``GET /models`` (``capabilities.vision``), cached per server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ImageError, LocalNoVisionError, MistralMagicError, hint, option

if TYPE_CHECKING:
    from ..api.client import ChatClient
    from ..api.protocol import Endpoint


def count_images(body: dict[str, Any]) -> int:
    """The ``image_url`` parts in a request body's messages (history included)."""
    return sum(
        1
        for message in body.get("messages", [])
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "image_url"
    )


class VisionCheck:
    """Refuses, before a request is sent, images for a model whose ``capabilities.vision`` is false.

    A server that lists no capabilities, does not list the model, or cannot list its models is
    trusted: the request goes and the server decides.
    """

    def __init__(self) -> None:
        self._models: dict[str, list[dict[str, Any]]] = {}  # base URL -> its /models list

    def require(self, client: ChatClient, endpoint: Endpoint, model: str, local: bool) -> None:
        if local:
            raise LocalNoVisionError(
                f"{hint('local_vision')}, so this cell sent nothing: with a key, a vision model of Mistral's API "
                f"{hint('vision_model')} answers it."
            )
        models = self._models.get(endpoint.base_url)
        if models is None:
            try:
                models = client.models(endpoint)
            except MistralMagicError:
                models = []  # no list (404, a server without it): asked once, then the requests decide
            self._models[endpoint.base_url] = models
        entry = next((m for m in models if isinstance(m, dict) and m.get("id") == model), None)
        capabilities = entry.get("capabilities") if entry else None
        if not isinstance(capabilities, dict) or "vision" not in capabilities or capabilities["vision"]:
            return
        seeing = [
            m["id"]
            for m in models
            if isinstance(m, dict) and isinstance(m.get("capabilities"), dict) and m["capabilities"].get("vision")
        ]
        suggestion = f"one that does, e.g. {option('model')} {seeing[0]}" if seeing else "one with capabilities.vision"
        raise ImageError(
            f"Model {model} does not read images (its capabilities say vision: false): use {suggestion} "
            f"({hint('models')})."
        )
