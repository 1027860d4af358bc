"""The static display that stays in the notebook once a reply ends."""

from __future__ import annotations

FINISH_NOTICES = {
    "length": "The reply was cut: it reached max_tokens (finish_reason=length). Raise max_tokens.",
    "model_length": "The reply was cut: the model's context window is full (finish_reason=model_length). "
    "Start a new chat or lower max_history_turns.",
    "error": "The server ended the reply with an error (finish_reason=error).",
}

FOOTER_STYLE = "font-size:0.8em;color:#888"
THINKING_SUMMARY = "Thinking…"


def reply_notice(
    finish_reason: str | None, *, interrupted: bool = False, error: BaseException | None = None
) -> str | None:
    """The one-line notice to show under a reply, if anything about its end needs saying."""
    if interrupted:
        return "Interrupted: the partial reply above is kept (in history too, marked as interrupted)."
    if error is not None:
        return "Incomplete: the reply broke off here (see the error below); it is not added to the history."
    return FINISH_NOTICES.get(finish_reason or "")


def rich_bundle(markdown: str, plain: str) -> dict[str, str]:
    """``text/markdown`` with a sanitized ``text/html`` rendering of it. Frontends prefer the
    HTML, so markdown that quotes model output is never rendered unsanitized."""
    from .html import render_markdown  # markdown and nh3 load on first use, not with the extension

    return {"text/html": render_markdown(markdown), "text/markdown": markdown, "text/plain": plain}


def thinking_html(thinking: str) -> str:
    """A reasoning model's thinking, collapsed: ``<details><summary>Thinking…</summary>`` and the
    thinking rendered from markdown, the whole fragment sanitized."""
    from .html import render_markdown, sanitize

    body = render_markdown(thinking)
    return sanitize(f"<details><summary>{THINKING_SUMMARY}</summary><blockquote>{body}</blockquote></details>")


def final_bundle(
    text: str,
    notice: str | None = None,
    footer: str | None = None,
    *,
    html: str | None = None,
    thinking: str = "",
) -> dict[str, str]:
    """The MIME bundle of a finished reply: sanitized ``text/html``, and the reply itself as
    ``text/markdown`` and ``text/plain``, so every viewer shows the answer (replay reads the answer
    back from the start of ``text/markdown``). ``html`` is the reply already rendered (by the live
    view), if it was. A reasoning model's ``thinking`` is a collapsed section above the answer in the
    HTML only: the other types hold the answer. ``footer`` is :meth:`.Provenance.footer`."""
    from .html import escape_text, render_markdown

    if html is None:
        html = render_markdown(text)
    if thinking.strip():
        html = thinking_html(thinking) + html
    markdown = text
    plain = text
    if notice:
        html += f"<blockquote><p>⚠ {escape_text(notice)}</p></blockquote>"
        markdown = f"{text}\n\n> ⚠ {notice}" if text else f"> ⚠ {notice}"
        plain = f"{text}\n\n[{notice}]" if text else f"[{notice}]"
    if footer:
        html += f'<div style="{FOOTER_STYLE}">{escape_text(footer)}</div>'
    return {"text/html": html, "text/markdown": markdown, "text/plain": plain}
