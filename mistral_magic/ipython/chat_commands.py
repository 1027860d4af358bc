"""The ``%mistral`` subcommands about chats: history, chats, reset, undo, save, load, usage, explain and replay."""

from __future__ import annotations

import argparse
import re
import secrets
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..render.tables import table_bundle
from .explain import explain_prompt, mark_explain_failure
from .subcommands import Commands, chat_flag, shorten, subcommand

if TYPE_CHECKING:  # the session (and httpx under it) is imported on first use, not when the extension loads
    pass


@subcommand("show a chat's system prompt and turns", chat_flag)
def history(commands: Commands, opts: argparse.Namespace) -> None:
    from ..images.sources import turn_images_shown
    from ..render.static import rich_bundle

    chat = commands.session.store.chats.get(opts.chat)
    if chat is None or (not chat.turns and chat.system is None):
        commands._say(f"Chat '{opts.chat}' is empty.")
        return
    md, plain = (
        [f"**Chat `{opts.chat}`** · {len(chat.turns)} turn(s)"],
        [f"Chat '{opts.chat}', {len(chat.turns)} turn(s)"],
    )
    token, thumbnails = f"mistralmagicimages{secrets.token_hex(8)}n", {}
    if chat.system is not None:
        md.append(f"**system:** {chat.system}")
        plain.append(f"system: {chat.system}")
    for number, turn in enumerate(chat.turns, 1):
        mark = " (interrupted)" if turn.interrupted else ""
        thinking = turn.thinking
        if thinking:  # shown in the cell's own output; here, how much there was
            mark += f" (after {len(thinking.split())} words of thinking)"
        cell = f" ({turn.cell})" if turn.cell else ""
        md.append(f"**[{number}] user**{cell}:\n\n{turn.user}")
        plain.append(f"[{number}] user{cell}: {turn.user}")
        if turn.images:  # a placeholder paragraph, replaced by the thumbnails once the markdown is rendered
            thumbnails[f"{token}{number}"] = turn_images_shown(turn.images)
            md.append(f"{token}{number}")
            plain.append(thumbnails[f"{token}{number}"][1])
        answered = f"{turn.model} · {turn.provenance.source}" if turn.provenance is not None else turn.model
        md.append(f"**[{number}] assistant** ({answered}){mark}:\n\n{turn.assistant}")
        plain.append(f"[{number}] assistant ({answered}){mark}: {turn.assistant}")
    if chat.left:
        left = ", ".join(f"{t.cell or 'a turn'} ({shorten(t.user, 30)!r})" for t in chat.left)
        md.append(
            f"*Left the chat when an earlier cell ran again:* {left}. *Run those cells again to bring them back.*"
        )
        plain.append(f"Left the chat when an earlier cell ran again: {left}. Run those cells again to bring them back.")
    bundle = rich_bundle("\n\n---\n\n".join(md), "\n".join(plain))
    for placeholder, (shown, described) in thumbnails.items():
        bundle["text/html"] = bundle["text/html"].replace(f"<p>{placeholder}</p>", shown)
        bundle["text/markdown"] = bundle["text/markdown"].replace(placeholder, described)
    commands.show(bundle)


@subcommand("list the chats of this kernel")
def chats(commands: Commands, opts: argparse.Namespace) -> None:
    chats = commands.session.store.chats
    if not chats:
        commands._say("No chats yet.")
        return
    rows = [
        (chat.name, len(chat.turns), shorten(chat.system or ""), chat.turns[-1].model if chat.turns else "")
        for chat in chats.values()
    ]
    commands.show(table_bundle(["chat", "turns", "system prompt", "last model"], rows))


@subcommand("forget a chat's turns (or every chat)", chat_flag, lambda p: p.add_argument("--all", action="store_true"))
def reset(commands: Commands, opts: argparse.Namespace) -> None:
    if opts.all:
        count = len(commands.session.store.chats)
        commands.session.store.reset_all()
        commands._say(f"Forgot all {count} chat(s).")
    else:
        commands.session.store.chats.pop(opts.chat, None)
        commands._say(f"Chat '{opts.chat}' starts afresh.")


@subcommand("drop the last turn of a chat (after a re-run or --new: the chat as it was before)", chat_flag)
def undo(commands: Commands, opts: argparse.Namespace) -> None:
    chat = commands.session.store.chats.get(opts.chat)
    restored = chat.restore() if chat is not None else None
    if restored is not None:
        commands._say(
            f"Chat '{opts.chat}' is back as it was before its last re-run or --new ({len(restored.turns)} turn(s))."
        )
        return
    turn = chat.undo() if chat is not None else None
    if turn is None:
        commands._say(f"Chat '{opts.chat}' has no turn to undo.")
    else:
        commands._say(f"Dropped the last turn of chat '{opts.chat}' (it asked: {shorten(turn.user)!r}).")


@subcommand(
    "write chats to a JSON file (never the key)",
    lambda p: p.add_argument("path", metavar="PATH"),
    lambda p: p.add_argument("-c", "--chat", metavar="NAME", action="append"),
)
def save(commands: Commands, opts: argparse.Namespace) -> None:
    missing = [n for n in opts.chat or [] if n not in commands.session.store.chats]
    if missing:
        raise UsageError(f"No chat named {missing[0]!r}; %mistral chats lists them.")
    path = commands.session.store.save(opts.path, opts.chat)
    count = len(opts.chat) if opts.chat else len(commands.session.store.chats)
    commands._say(f"Saved {count} chat(s) to {path}.")


@subcommand("read chats saved by %mistral save", lambda p: p.add_argument("path", metavar="PATH"))
def load(commands: Commands, opts: argparse.Namespace) -> None:
    names = commands.session.store.load(opts.path)
    commands._say(f"Loaded {len(names)} chat(s): {', '.join(names) or 'none'}.")


@subcommand("tokens used, per chat and in total")
def usage(commands: Commands, opts: argparse.Namespace) -> None:
    from ..usage import ChatUsage

    usage = commands.session.store.usage
    if not usage:
        commands._say("No requests yet.")
        return
    counts = [*usage.items(), ("total", ChatUsage.sum(usage.values()))]
    rows = [(name, u.requests, u.prompt_tokens, u.completion_tokens, u.total_tokens) for name, u in counts]
    commands.show(table_bundle(["chat", "requests", "prompt tokens", "completion tokens", "total tokens"], rows))


@subcommand(
    "ask the chat's model to explain the last error of this kernel",
    chat_flag,
    lambda p: p.add_argument("question", nargs="*", metavar="question"),
    raw=True,
)
def explain(commands: Commands, opts: argparse.Namespace) -> None:
    from ..render.select import make_renderer
    from ..session import TurnOptions

    flag = re.match(r"(?:-c|--chat)(?:\s+|=)(\S+)\s*", opts.line)
    chat, question = (flag.group(1), opts.line[flag.end() :]) if flag else ("default", opts.line)
    shell = getattr(commands.kernel_config, "shell", None)
    try:
        settings = commands.session.local.resolve(commands.kernel_config.settings())
        turns = commands.session.store.get(chat).turns
        if turns and turns[-1].model:  # the model this chat last answered with
            settings = settings.with_overrides(model=turns[-1].model)
        prompt = explain_prompt(shell, question, commands.kernel_config.known_keys())
        options = TurnOptions(chat=chat, cell=commands.cell)
        commands.session.ask(prompt, settings, options, make_renderer(shell, settings.display))
    except BaseException as error:
        mark_explain_failure(error)
        raise


@subcommand(
    "answer cells from the answers saved in the notebook (on, strict, off; or show the state)",
    lambda p: p.add_argument("words", nargs="*", metavar="on | strict | off | PATH.ipynb"),
    lambda p: p.add_argument("--fast", action="store_true"),
)
def replay(commands: Commands, opts: argparse.Namespace) -> None:
    modes = ("on", "strict", "off", "status")
    words: list[str] = opts.words
    mode = words[0] if words and words[0] in modes else ("on" if words else "status")
    paths = words[1:] if words and words[0] in modes else words
    if len(paths) > 1 or (paths and mode in ("off", "status")):
        raise UsageError("%mistral replay takes on, strict or off, then at most one notebook path.")
    config = commands.kernel_config
    if mode == "off":
        config.set_from_text("replay", "off")
        commands._say("Replay is off: cells ask the server.")
        return
    if mode != "status":
        if paths and not paths[0].endswith(".ipynb"):
            raise UsageError(f"Replay reads a notebook file (.ipynb), not {paths[0]!r}.")
        saved = config.state()
        config.set_from_text("replay", mode)
        config.set_from_text("replay_notebook", paths[0] if paths else "")
        config.set_from_text("replay_pace", "fast" if opts.fast else "recorded")
    settings = config.settings()
    if settings.replay == "off":
        commands._say("Replay is off: cells ask the server (%mistral replay on answers them from this notebook).")
        return
    try:
        book = commands.session.replays.book(settings)
    except UsageError:
        if mode != "status":  # a notebook that cannot be read changes nothing
            for name in ("replay", "replay_notebook", "replay_pace"):
                config.set_from_text(name, "")
            config.restore(saved)
        raise
    pace = "at once" if settings.replay_pace == "fast" else "at the recorded pace"
    others = "fail (strict)" if settings.replay == "strict" else "ask the server"
    commands._say(
        f"Replay is {settings.replay}: {len(book)} saved answer(s) in {book.path.name}, streamed {pace}; "
        f"cells without a saved answer {others}."
    )
