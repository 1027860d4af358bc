"""GitHub's bare links (``www.``, ``http(s)://``, ``mailto:``, ``xmpp:``, e-mail addresses), found in
time linear in the reply.

mdit-py-plugins' ``gfm_autolink`` rules read far more than a link can span. At every ``:`` its
protocol rule copies the rest of the paragraph and searches all the text pending since the last
token for ``http``, ``https``, ``mailto`` or ``xmpp``; at every ``@`` and ``www.`` the other two
rules copy the rest of the paragraph. A one-line JSON answer has thousands of ``:`` and no token
between them, so its rendering took time quadratic in its length (279 KB: 70 s).

The rules here decide exactly as the plugin's (its own matchers and link tokens, and its e-mail and
``www.`` rules themselves), given only the text that can decide: the protocol name at the end of
the pending text, and the text after the trigger up to where the matchers stop reading. They stop
at the end of a domain (the first character that cannot be in one) when it is invalid, else at
whitespace or at a ``<`` (which ends a link); an e-mail address at the first character that cannot
be in one. Each window is read once, and what follows it is new text, so the whole is linear.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin
from mdit_py_plugins.gfm_autolink._match import _is_valid_hostchar, match_any_email, match_http
from mdit_py_plugins.gfm_autolink.index import _create_autolink, _email_rule, _preceding_ok, _www_inline_rule

Rule = Callable[[StateInline, bool], bool]

_PROTOCOLS = ("https", "http", "mailto", "xmpp")  # "https" first: a text ending in it ends in "http" too
_LINK_STOP = re.compile(r"[ \t\r\n\x00\x0b\x0c<]")  # the matchers' whitespace, and "<", where a link is cut
_ADDRESS = re.compile(r"[A-Za-z0-9._-]*")  # the domain of a bare e-mail address
_PROTOCOL_ADDRESS = re.compile(r"[A-Za-z0-9.+_@/-]*")  # mailto:/xmpp: local part, @, domain and xmpp's resource


def autolink_plugin(md: MarkdownIt) -> None:
    """``gfm_autolink_plugin`` (its ``w`` terminator and rules, in their order), each rule reading
    only the text that decides it."""
    gfm_autolink_plugin(md)
    md.inline.ruler.at("gfm_autolink_www", _bounded(_www_inline_rule, _www_end))
    md.inline.ruler.at("gfm_autolink_protocol", _protocol_rule)
    md.inline.ruler.at("gfm_autolink_email", _bounded(_email_rule, _address_end))


def _bounded(rule: Rule, window_end: Callable[[StateInline], int | None]) -> Rule:
    """``rule`` run with the text cut at ``window_end`` (``None``: the rule cannot match here)."""

    def bounded(state: StateInline, silent: bool) -> bool:
        end = window_end(state)
        if end is None:
            return False
        whole = state.posMax
        state.posMax = end
        try:
            return rule(state, silent)
        finally:
            state.posMax = whole

    return bounded


def _url_end(state: StateInline, domain_start: int) -> int:
    """Where ``match_http``/``match_www`` stop reading a URL whose domain starts at ``domain_start``:
    just after the character that ends the domain (all the domain check reads), then just after
    the first whitespace or ``<`` from there (a valid link runs to whitespace, cut at a ``<``)."""
    src, end = state.src, state.posMax
    index = domain_start
    while index < end and (src[index] in "._-" or _is_valid_hostchar(src[index])):
        index += 1
    stop = _LINK_STOP.search(src, index, end)
    return stop.end() if stop else end


def _www_end(state: StateInline) -> int | None:
    return _url_end(state, state.pos + 4) if state.src.startswith("www.", state.pos) else None


def _address_end(state: StateInline) -> int | None:
    """Where the e-mail rule stops reading the domain after an ``@``."""
    return _after_run(_ADDRESS, state, state.pos + 1) if state.src[state.pos] == "@" else None


def _after_run(characters: re.Pattern[str], state: StateInline, start: int) -> int:
    """Just after the run of ``characters`` from ``start`` and the character that ends it."""
    run = characters.match(state.src, start, state.posMax)
    return min((run.end() if run else start) + 1, state.posMax)


def _protocol_rule(state: StateInline, silent: bool) -> bool:
    """The plugin's rule for ``http(s)://``, ``mailto:`` and ``xmpp:`` links, at a ``:``."""
    pos, src = state.pos, state.src
    if silent or state.linkLevel > 0 or src[pos] != ":" or state.posMax - pos < 4:
        return False  # the plugin recognises links only when emitting tokens
    pending = state.pending
    proto = next((name for name in _PROTOCOLS if pending.endswith(name)), None)
    if proto is None or not _preceding_ok(state, len(proto)):
        return False
    if proto in ("mailto", "xmpp"):
        text = proto + src[pos : _after_run(_PROTOCOL_ADDRESS, state, pos + 1)]
        result = match_any_email(text, len(proto) + 1, proto)
    elif src.startswith("//", pos + 1):
        text = proto + src[pos : _url_end(state, pos + 3)]
        result = match_http(text)
    else:
        return False
    if result is None:
        return False
    url, length = result
    return _create_autolink(state, len(proto), length, url, text[:length])
