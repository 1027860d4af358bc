"""The static display that stays in the notebook once a reply ends."""

from __future__ import annotations

FINISH_NOTICES = {
    "length": "The reply was cut: it reached max_tokens (finish_reason=length). Raise --max-tokens.",
    "model_length": "The reply was cut: the model's context window is full (finish_reason=model_length). "
    "Start afresh with --new or lower max_history_turns.",
    "error": "The server ended the reply with an error (finish_reason=error).",
}


def reply_notice(finish_reason: str | None, *, interrupted: bool = False, error: BaseException | None = None) -> str | None:
    """The one-line notice to show under a reply, if anything about its end needs saying."""
    if interrupted:
        return "Interrupted: the partial reply above is kept (in history too, marked as interrupted)."
    if error is not None:
        return "Incomplete: the reply broke off here (see the error below); it is not added to the history."
    return FINISH_NOTICES.get(finish_reason or "")


def final_bundle(text: str, notice: str | None = None) -> dict[str, str]:
    """The MIME bundle of a finished reply: the reply itself as ``text/markdown`` and ``text/plain``."""
    markdown = text
    plain = text
    if notice:
        markdown = f"{text}\n\n> ⚠ {notice}" if text else f"> ⚠ {notice}"
        plain = f"{text}\n\n[{notice}]" if text else f"[{notice}]"
    return {"text/markdown": markdown, "text/plain": plain}
