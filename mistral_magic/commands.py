"""The ``%mistral`` line-magic subcommands: history, chats, reset, undo, save, load, usage,
models, local, config, key and help."""

from __future__ import annotations

import getpass
import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from .cellflags import ArgumentParser
from .errors import UsageError
from .render.static import rich_bundle
from .render.tables import table_bundle
from .settings import SETTING_NAMES

if TYPE_CHECKING:
    from .magics import MistralMagics

SUBCOMMAND_HELP = """\
Line-magic subcommands:
  %mistral history [-c NAME]        show a chat's system prompt and turns
  %mistral chats                    list the chats of this kernel
  %mistral reset [-c NAME | --all]  forget a chat's turns (or every chat)
  %mistral undo [-c NAME]           drop the last turn of a chat
  %mistral save PATH [-c NAME]      write chats to a JSON file (never the key)
  %mistral load PATH                read chats saved by %mistral save
  %mistral usage                    tokens used, per chat and in total
  %mistral models                   the models the server offers
  %mistral errors                   the items of the last --each run that have no answer
  %mistral cache [clear]            where the reply cache is and how many answers it holds, or empty it
  %mistral local [--model PATH.gguf] [--port N] [--ctx N]
                                    start a small local model (llama.cpp) and ask it
  %mistral local stop | status      stop it, or show whether it runs
  %mistral config [name=value ...]  show settings and where each comes from, or set them
  %mistral key                      type the API key privately (getpass)
  %mistral help                     this help"""


def _parser(prog: str) -> ArgumentParser:
    return ArgumentParser(prog=f"%mistral {prog}", add_help=False, allow_abbrev=False)


def _chat_option(parser: ArgumentParser) -> ArgumentParser:
    parser.add_argument("-c", "--chat", default="default")
    return parser


class Commands:
    """Runs one subcommand line against the magics' session and shows the result."""

    def __init__(self, magics: MistralMagics, show: Callable[[dict], None]):
        self.magics = magics
        self.session = magics.session
        self.show = show

    def run(self, line: str) -> None:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"Cannot read the arguments ({exc}); check the quotes.") from None
        if not words:
            raise UsageError("%mistral needs a subcommand, e.g. %mistral help; to ask, use %%mistral as a cell magic.")
        name, args = words[0], words[1:]
        handler = getattr(self, f"cmd_{name}", None)
        if handler is None:
            names = ", ".join(n[4:] for n in dir(self) if n.startswith("cmd_"))
            raise UsageError(f"Unknown subcommand {name!r}; try one of: {names}.")
        handler(args)

    def _say(self, text: str) -> None:
        self.show({"text/plain": text})

    def cmd_help(self, args: list[str]) -> None:
        self._say(self.magics.help_text())

    def cmd_history(self, args: list[str]) -> None:
        opts = _chat_option(_parser("history")).parse_args(args)
        chat = self.session.store.chats.get(opts.chat)
        if chat is None or (not chat.turns and chat.system is None):
            self._say(f"Chat '{opts.chat}' is empty.")
            return
        md, plain = (
            [f"**Chat `{opts.chat}`** · {len(chat.turns)} turn(s)"],
            [f"Chat '{opts.chat}', {len(chat.turns)} turn(s)"],
        )
        if chat.system is not None:
            md.append(f"**system:** {chat.system}")
            plain.append(f"system: {chat.system}")
        for number, turn in enumerate(chat.turns, 1):
            mark = " (interrupted)" if turn.interrupted else ""
            thinking = turn.thinking
            if thinking:  # shown in the cell's own output; here, how much there was
                mark += f" (after {len(thinking.split())} words of thinking)"
            md.append(f"**[{number}] user:**\n\n{turn.user}")
            md.append(f"**[{number}] assistant** ({turn.model}){mark}:\n\n{turn.assistant}")
            plain.append(f"[{number}] user: {turn.user}")
            plain.append(f"[{number}] assistant ({turn.model}){mark}: {turn.assistant}")
        self.show(rich_bundle("\n\n---\n\n".join(md), "\n".join(plain)))

    def cmd_chats(self, args: list[str]) -> None:
        _parser("chats").parse_args(args)
        chats = self.session.store.chats
        if not chats:
            self._say("No chats yet.")
            return
        rows = [
            (chat.name, len(chat.turns), _short(chat.system or ""), chat.turns[-1].model if chat.turns else "")
            for chat in chats.values()
        ]
        self.show(table_bundle(["chat", "turns", "system prompt", "last model"], rows))

    def cmd_reset(self, args: list[str]) -> None:
        parser = _chat_option(_parser("reset"))
        parser.add_argument("--all", action="store_true")
        opts = parser.parse_args(args)
        if opts.all:
            count = len(self.session.store.chats)
            self.session.store.reset_all()
            self._say(f"Forgot all {count} chat(s).")
        else:
            self.session.store.chats.pop(opts.chat, None)
            self._say(f"Chat '{opts.chat}' starts afresh.")

    def cmd_undo(self, args: list[str]) -> None:
        opts = _chat_option(_parser("undo")).parse_args(args)
        chat = self.session.store.chats.get(opts.chat)
        turn = chat.undo() if chat is not None else None
        if turn is None:
            self._say(f"Chat '{opts.chat}' has no turn to undo.")
        else:
            self._say(f"Dropped the last turn of chat '{opts.chat}' (it asked: {_short(turn.user)!r}).")

    def cmd_save(self, args: list[str]) -> None:
        parser = _parser("save")
        parser.add_argument("path")
        parser.add_argument("-c", "--chat", action="append")
        opts = parser.parse_args(args)
        missing = [n for n in opts.chat or [] if n not in self.session.store.chats]
        if missing:
            raise UsageError(f"No chat named {missing[0]!r}; %mistral chats lists them.")
        path = self.session.store.save(opts.path, opts.chat)
        count = len(opts.chat) if opts.chat else len(self.session.store.chats)
        self._say(f"Saved {count} chat(s) to {path}.")

    def cmd_load(self, args: list[str]) -> None:
        parser = _parser("load")
        parser.add_argument("path")
        opts = parser.parse_args(args)
        names = self.session.store.load(opts.path)
        self._say(f"Loaded {len(names)} chat(s): {', '.join(names) or 'none'}.")

    def cmd_usage(self, args: list[str]) -> None:
        _parser("usage").parse_args(args)
        usage = self.session.store.usage
        if not usage:
            self._say("No requests yet.")
            return
        rows = [(name, u.requests, u.prompt_tokens, u.completion_tokens, u.total_tokens) for name, u in usage.items()]
        totals = [sum(row[i] for row in rows) for i in range(1, 5)]
        rows.append(("total", *totals))
        self.show(table_bundle(["chat", "requests", "prompt tokens", "completion tokens", "total tokens"], rows))

    def cmd_models(self, args: list[str]) -> None:
        _parser("models").parse_args(args)
        settings = self.magics.settings()
        models = self.session.client.models(self.session.endpoint(settings))
        rows = [
            (
                m.get("id"),
                m.get("max_context_length", ""),
                m.get("owned_by", ""),
                "← current" if m.get("id") == settings.model else "",
            )
            for m in models
            if isinstance(m, dict)
        ]
        self.show(
            table_bundle(["model", "context length", "owned by", ""], rows, title=f"Models at {settings.base_url}")
        )

    def cmd_errors(self, args: list[str]) -> None:
        _parser("errors").parse_args(args)
        run = self.session.last_run
        if run is None:
            self._say("No --each run yet.")
            return
        if not run.errors:
            self._say(f"The last run has no errors ({run.summary()})")
            return
        rows = [(e.index, _short(str(e.item), 40), e.error) for e in run.errors]
        self.show(table_bundle(["index", "item", "error"], rows, title=f"{len(run.errors)} of {len(run)} items failed"))

    def cmd_cache(self, args: list[str]) -> None:
        parser = _parser("cache")
        parser.add_argument("action", nargs="?", choices=["info", "clear"], default="info")
        opts = parser.parse_args(args)
        cache = self.session.cache
        if opts.action == "clear":
            self._say(f"Emptied the reply cache ({cache.clear()} answers removed).")
        else:
            self._say(f"The reply cache holds {len(cache)} answers in {cache.path}.")

    def cmd_local(self, args: list[str]) -> None:
        parser = _parser("local")
        parser.add_argument("action", nargs="?", choices=("start", "stop", "status"), default="start")
        parser.add_argument("--model", metavar="PATH.gguf")
        parser.add_argument("--port", type=int)
        parser.add_argument("--ctx", type=int)
        opts = parser.parse_args(args)
        server = self.session.local
        if opts.ctx is not None and opts.ctx <= 0:
            raise UsageError(f"--ctx {opts.ctx} is invalid: the context size must be a positive number of tokens.")
        if opts.action != "start" and (opts.model is not None or opts.port is not None or opts.ctx is not None):
            raise UsageError(
                f"%mistral local {opts.action} takes no flags; --model, --port and --ctx are for starting."
            )
        if opts.action == "stop":
            server = self.session.stop_local()
            if server is None:
                self._say("No local model server runs in this kernel.")
                return
            settings = self.magics.settings()
            if settings.base_url == "local":
                self._say(
                    f"Stopped the local model server (pid {server.pid}); base_url is still 'local', so the next cell starts it again."
                )
            else:
                self._say(
                    f"Stopped the local model server (pid {server.pid}); cells go to {settings.base_url} again "
                    f"(model {settings.model})."
                )
        elif opts.action == "status":
            if server is None:
                self._say("No local model server runs in this kernel; %mistral local starts one.")
            elif not server.running():
                self._say(f"The local model server (pid {server.pid}) has stopped; %mistral local starts it again.")
            else:
                self._say(
                    f"Local model server running: {server.model_path} at {server.base_url} "
                    f"(pid {server.pid}, context {server.n_ctx} tokens)."
                )
        else:
            server, reused = self.session.start_local(opts.model, opts.port, opts.ctx)
            self._say(server.banner(reused))

    def cmd_config(self, args: list[str]) -> None:
        for assignment in args:
            name, sep, value = assignment.partition("=")
            if not sep:
                raise UsageError(f"Write settings as name=value (got {assignment!r}); name= with nothing unsets one.")
            if name in ("api_key", "key"):
                raise UsageError(
                    "The key is never set in a cell (it would be saved in the notebook): run %mistral key."
                )
            self.magics.set_from_text(name.strip(), value)
        settings = self.magics.settings()
        shown = [n for n in SETTING_NAMES if not args or any(a.partition("=")[0].strip() == n for a in args)]
        rows = [(name, _format_value(getattr(settings, name)), settings.sources[name]) for name in shown]
        if not args:
            key = self.magics.api_key()
            rows.insert(0, ("api_key", key.masked() if key else "(not set)", self.magics.api_key_source()))
        self.show(table_bundle(["setting", "value", "source"], rows))

    def cmd_key(self, args: list[str]) -> None:
        parser = _parser("key")
        parser.add_argument("--clear", action="store_true")
        opts = parser.parse_args(args)
        if opts.clear:
            self.magics.set_api_key("")
            self._say("Forgot the key typed with %mistral key (MISTRAL_API_KEY, if set, applies again).")
            return
        key = getpass.getpass("Mistral API key (hidden): ")
        if not key.strip():
            raise UsageError("No key entered; nothing changed.")
        self.magics.set_api_key(key)
        self._say(f"Key set for this kernel ({self.magics.api_key().masked()}); it is kept in memory only.")


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _format_value(value: object) -> str:
    return "(none)" if value is None else repr(value) if isinstance(value, str) else str(value)
