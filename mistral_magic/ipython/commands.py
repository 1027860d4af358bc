"""The ``%mistral`` line-magic subcommands: history, chats, reset, undo, save, load, usage,
models, jobs, local, config, key and help."""

from __future__ import annotations

import argparse
import getpass
import re
import secrets
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import MistralMagicError, NotFoundError, UsageError
from ..render.tables import table_bundle
from ..settings import SETTING_NAMES
from .cellflags import ArgumentParser
from .explain import explain_prompt, mark_explain_failure

if TYPE_CHECKING:  # the session (and httpx under it) is imported on first use, not when the extension loads
    from ..api.batchjobs import BatchJobs
    from ..cells import CellRef
    from ..session import Session

Handler = Callable[["Commands", argparse.Namespace], None]


@dataclass(frozen=True)
class Subcommand:
    """One ``%mistral`` subcommand: its parser, its handler and a one-line summary for the help."""

    name: str
    summary: str
    parser: ArgumentParser
    handler: Handler
    raw: bool = False  # the handler gets the rest of the line as written (``opts.line``), not split

    @property
    def usage(self) -> str:
        return " ".join(self.parser.format_usage().split())[len("usage: ") :]


SUBCOMMANDS: dict[str, Subcommand] = {}


def subcommand(
    summary: str, *arguments: Callable[[ArgumentParser], object], raw: bool = False
) -> Callable[[Handler], Handler]:
    """Register a ``Commands`` method as ``%mistral NAME`` (the method's name); ``arguments``
    add the parser's arguments (with ``raw``, they only document the line for the help)."""

    def register(handler: Handler) -> Handler:
        name = handler.__name__
        parser = ArgumentParser(prog=f"%mistral {name}", add_help=False, allow_abbrev=False)
        for add in arguments:
            add(parser)
        SUBCOMMANDS[name] = Subcommand(name, summary, parser, handler, raw)
        return handler

    return register


def subcommand_help() -> str:
    """The help of every subcommand, generated from the parsers."""
    lines = ["Line-magic subcommands:"]
    for command in SUBCOMMANDS.values():
        usage = command.usage
        if len(usage) <= 34:
            lines.append(f"  {usage:<34}{command.summary}")
        else:
            lines.extend([f"  {usage}", f"  {'':<34}{command.summary}"])
    return "\n".join(lines)


def _chat(parser: ArgumentParser) -> None:
    parser.add_argument("-c", "--chat", metavar="NAME", default="default")


class Commands:
    """Runs one subcommand line against the session and shows the result."""

    def __init__(
        self, session: Session, show: Callable[[dict[str, str]], None], help_text: str, cell: CellRef | None = None
    ):
        self.session = session
        self.kernel_config = session.config
        self.show = show
        self.help_text = help_text
        self.cell = cell  # the notebook cell that runs the subcommand (a %mistral explain is a turn of it)

    def run(self, line: str) -> None:
        name, _, rest = line.strip().partition(" ")
        command = SUBCOMMANDS.get(name)
        if command is not None and command.raw:  # free text: an apostrophe is not a shell quote
            command.handler(self, argparse.Namespace(line=rest.strip()))
            return
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"Cannot read the arguments ({exc}); check the quotes.") from None
        if not words:
            raise UsageError("%mistral needs a subcommand, e.g. %mistral help; to ask, use %%mistral as a cell magic.")
        command = SUBCOMMANDS.get(words[0])
        if command is None:
            raise UsageError(f"Unknown subcommand {words[0]!r}; try one of: {', '.join(sorted(SUBCOMMANDS))}.")
        command.handler(self, command.parser.parse_args(words[1:]))

    def _say(self, text: str) -> None:
        self.show({"text/plain": text})

    @subcommand("show a chat's system prompt and turns", _chat)
    def history(self, opts: argparse.Namespace) -> None:
        from ..images.sources import turn_images_shown
        from ..render.static import rich_bundle

        chat = self.session.store.chats.get(opts.chat)
        if chat is None or (not chat.turns and chat.system is None):
            self._say(f"Chat '{opts.chat}' is empty.")
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
            left = ", ".join(f"{t.cell or 'a turn'} ({_short(t.user, 30)!r})" for t in chat.left)
            md.append(
                f"*Left the chat when an earlier cell ran again:* {left}. *Run those cells again to bring them back.*"
            )
            plain.append(
                f"Left the chat when an earlier cell ran again: {left}. Run those cells again to bring them back."
            )
        bundle = rich_bundle("\n\n---\n\n".join(md), "\n".join(plain))
        for placeholder, (shown, described) in thumbnails.items():
            bundle["text/html"] = bundle["text/html"].replace(f"<p>{placeholder}</p>", shown)
            bundle["text/markdown"] = bundle["text/markdown"].replace(placeholder, described)
        self.show(bundle)

    @subcommand("list the chats of this kernel")
    def chats(self, opts: argparse.Namespace) -> None:
        chats = self.session.store.chats
        if not chats:
            self._say("No chats yet.")
            return
        rows = [
            (chat.name, len(chat.turns), _short(chat.system or ""), chat.turns[-1].model if chat.turns else "")
            for chat in chats.values()
        ]
        self.show(table_bundle(["chat", "turns", "system prompt", "last model"], rows))

    @subcommand("forget a chat's turns (or every chat)", _chat, lambda p: p.add_argument("--all", action="store_true"))
    def reset(self, opts: argparse.Namespace) -> None:
        if opts.all:
            count = len(self.session.store.chats)
            self.session.store.reset_all()
            self._say(f"Forgot all {count} chat(s).")
        else:
            self.session.store.chats.pop(opts.chat, None)
            self._say(f"Chat '{opts.chat}' starts afresh.")

    @subcommand("drop the last turn of a chat (after a re-run or --new: the chat as it was before)", _chat)
    def undo(self, opts: argparse.Namespace) -> None:
        chat = self.session.store.chats.get(opts.chat)
        restored = chat.restore() if chat is not None else None
        if restored is not None:
            self._say(
                f"Chat '{opts.chat}' is back as it was before its last re-run or --new ({len(restored.turns)} turn(s))."
            )
            return
        turn = chat.undo() if chat is not None else None
        if turn is None:
            self._say(f"Chat '{opts.chat}' has no turn to undo.")
        else:
            self._say(f"Dropped the last turn of chat '{opts.chat}' (it asked: {_short(turn.user)!r}).")

    @subcommand(
        "write chats to a JSON file (never the key)",
        lambda p: p.add_argument("path", metavar="PATH"),
        lambda p: p.add_argument("-c", "--chat", metavar="NAME", action="append"),
    )
    def save(self, opts: argparse.Namespace) -> None:
        missing = [n for n in opts.chat or [] if n not in self.session.store.chats]
        if missing:
            raise UsageError(f"No chat named {missing[0]!r}; %mistral chats lists them.")
        path = self.session.store.save(opts.path, opts.chat)
        count = len(opts.chat) if opts.chat else len(self.session.store.chats)
        self._say(f"Saved {count} chat(s) to {path}.")

    @subcommand("read chats saved by %mistral save", lambda p: p.add_argument("path", metavar="PATH"))
    def load(self, opts: argparse.Namespace) -> None:
        names = self.session.store.load(opts.path)
        self._say(f"Loaded {len(names)} chat(s): {', '.join(names) or 'none'}.")

    @subcommand("tokens used, per chat and in total")
    def usage(self, opts: argparse.Namespace) -> None:
        from ..conversation import Usage

        usage = self.session.store.usage
        if not usage:
            self._say("No requests yet.")
            return
        counts = [*usage.items(), ("total", Usage.sum(usage.values()))]
        rows = [(name, u.requests, u.prompt_tokens, u.completion_tokens, u.total_tokens) for name, u in counts]
        self.show(table_bundle(["chat", "requests", "prompt tokens", "completion tokens", "total tokens"], rows))

    @subcommand("the models the server offers")
    def models(self, opts: argparse.Namespace) -> None:
        settings = self.session.local.resolve(self.kernel_config.settings())
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

    @subcommand("the items of the last --each run that have no answer")
    def errors(self, opts: argparse.Namespace) -> None:
        from ..annotation.trial import short

        run = self.session.last_run
        if run is None:
            self._say("No --each run yet.")
            return
        if not run.errors:
            self._say(f"The last run has no errors ({run.summary()})")
            return
        rows = [(e.index, short(e.item, 40), e.error) for e in run.errors]
        self.show(table_bundle(["index", "item", "error"], rows, title=f"{len(run.errors)} of {len(run)} items failed"))

    @subcommand(
        "the batch jobs of this cache (--batch), or cancel one of them",
        lambda p: p.add_argument("action", nargs="?", choices=["list", "cancel"], default="list", metavar="cancel"),
        lambda p: p.add_argument("job_id", nargs="?", metavar="ID"),
        lambda p: p.add_argument("--force", action="store_true", help="cancel a job this cache did not send"),
    )
    def jobs(self, opts: argparse.Namespace) -> None:
        from ..annotation.batchstore import GONE, JOB_STATES

        batch = self.session.batch_jobs(self.kernel_config.settings())
        if opts.action == "cancel":
            if not opts.job_id:
                raise UsageError("%mistral jobs cancel needs the job's ID (see %mistral jobs).")
            self._cancel_job(batch, opts.job_id, opts.force)
            return
        if opts.job_id or opts.force:
            raise UsageError("%mistral jobs lists the jobs; to cancel one: %mistral jobs cancel ID.")
        records = self.session.job_store.recent()
        if not records:
            self._say("No batch jobs in this cache yet (%%mistral --each NAME --batch submits one).")
            return
        rows = []
        for record in records:
            status, counts = record.status or JOB_STATES.get(record.state, "unknown"), ""
            if record.job_id is not None and record.status != GONE:
                try:
                    job = batch.get(record.job_id)
                    status, counts = job.status, f"{job.succeeded} done, {job.failed} failed of {job.total}"
                except MistralMagicError as exc:
                    counts = _short(str(exc), 60)
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created))
            collected = "yes" if record.collected else "no"
            rows.append((record.job_id or "–", status, counts, created, record.model, record.items, collected))
        headers = ["id", "status", "counts", "created", "model", "requests", "collected"]
        self.show(table_bundle(headers, rows, title=f"Batch jobs of the reply cache {self.session.cache.path}"))

    def _cancel_job(self, batch: BatchJobs, job_id: str, force: bool) -> None:
        """Cancel a job of this cache (another only with ``force``); a job the server no longer knows
        is marked ended, so that its cell sends its items again."""
        from ..annotation.batchstore import GONE

        store = self.session.job_store
        record = store.find(job_id)
        if record is None and not force:
            raise UsageError(
                f"Batch job {job_id} is not one of this cache's jobs (%mistral jobs lists them): nothing was "
                f"cancelled. To cancel it anyway: %mistral jobs cancel {job_id} --force."
            )
        try:
            job = batch.cancel(job_id)
        except NotFoundError as missing:
            if record is None:
                raise
            batch.confirm_gone(missing)
            store.ended(record.run, GONE)
            self._say(
                f"The server no longer knows batch job {job_id} (expired, deleted, or made with another "
                "workspace's key): it is marked ended here, and running its cell again sends its items again."
            )
            return
        if record is None:
            self._say(f"Asked the server to cancel batch job {job.id}, not a job of this cache: now {job.status}.")
        else:
            self._say(
                f"Asked the server to cancel batch job {job.id}: now {job.status}. What it finished stays "
                "collectable: running its cell again collects it and sends the rest."
            )

    @subcommand(
        "where the reply cache is and how many answers it holds, or empty it",
        lambda p: p.add_argument("action", nargs="?", choices=["info", "clear"], default="info", metavar="clear"),
    )
    def cache(self, opts: argparse.Namespace) -> None:
        cache = self.session.cache
        if opts.action == "clear":
            self._say(f"Emptied the reply cache ({cache.clear()} answers removed).")
            return
        count = len(cache)
        if cache.problem is not None:
            cache.take_warning()  # said here; no second warning under the next cell
            self._say(
                f"The reply cache {cache.path} cannot be used ({cache.problem}); {count} answers are kept in memory. "
                "%mistral cache clear removes a broken cache file."
            )
        else:
            self._say(f"The reply cache holds {count} answers in {cache.path}.")

    @subcommand(
        "start a small local model (llama.cpp) and ask it; stop it, or show whether it runs",
        lambda p: p.add_argument(
            "action", nargs="?", choices=("start", "stop", "status"), default="start", metavar="stop | status"
        ),
        lambda p: p.add_argument("--model", metavar="PATH.gguf"),
        lambda p: p.add_argument("--port", metavar="N", type=int),
        lambda p: p.add_argument("--ctx", metavar="N", type=int),
    )
    def local(self, opts: argparse.Namespace) -> None:
        server = self.session.local.server
        if opts.action != "start" and (opts.model is not None or opts.port is not None or opts.ctx is not None):
            raise UsageError(
                f"%mistral local {opts.action} takes no flags; --model, --port and --ctx are for starting."
            )
        if opts.action == "stop":
            server = self.session.local.stop()
            if server is None:
                self._say("No local model server runs in this kernel.")
                return
            settings = self.kernel_config.settings()
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
            server, reused = self.session.local.start(opts.model, opts.port, opts.ctx)
            self._say(server.banner(reused))

    @subcommand(
        "show settings and where each comes from, or set them (name= unsets)",
        lambda p: p.add_argument("assignments", nargs="*", metavar="name=value"),
    )
    def config(self, opts: argparse.Namespace) -> None:
        args: list[str] = opts.assignments
        for assignment in args:
            name, sep, value = assignment.partition("=")
            if not sep:
                raise UsageError(f"Write settings as name=value (got {assignment!r}); name= with nothing unsets one.")
            if name in ("api_key", "key"):
                raise UsageError(
                    "The key is never set in a cell (it would be saved in the notebook): run %mistral key."
                )
            self.kernel_config.set_from_text(name.strip(), value)
        settings = self.kernel_config.settings()
        shown = [n for n in SETTING_NAMES if not args or any(a.partition("=")[0].strip() == n for a in args)]
        rows = [(name, _format_value(settings.value(name)), settings.sources[name]) for name in shown]
        if not args:
            key = self.kernel_config.api_key()
            rows.insert(0, ("api_key", key.masked() if key else "(not set)", self.kernel_config.api_key_source()))
        self.show(table_bundle(["setting", "value", "source"], rows))

    @subcommand(
        "type the API key privately (getpass), or forget it",
        lambda p: p.add_argument("--clear", action="store_true"),
    )
    def key(self, opts: argparse.Namespace) -> None:
        if opts.clear:
            self.kernel_config.set_api_key("")
            self._say("Forgot the key typed with %mistral key (MISTRAL_API_KEY, if set, applies again).")
            return
        key = getpass.getpass("Mistral API key (hidden): ")
        if not key.strip():
            raise UsageError("No key entered; nothing changed.")
        self.kernel_config.set_api_key(key)
        masked = self.kernel_config.api_key()
        self._say(f"Key set for this kernel ({masked.masked() if masked else ''}); it is kept in memory only.")

    @subcommand(
        "ask the chat's model to explain the last error of this kernel",
        _chat,
        lambda p: p.add_argument("question", nargs="*", metavar="question"),
        raw=True,
    )
    def explain(self, opts: argparse.Namespace) -> None:
        from ..render.select import make_renderer
        from ..session import TurnOptions

        flag = re.match(r"(?:-c|--chat)(?:\s+|=)(\S+)\s*", opts.line)
        chat, question = (flag.group(1), opts.line[flag.end() :]) if flag else ("default", opts.line)
        shell = getattr(self.kernel_config, "shell", None)
        try:
            settings = self.session.local.resolve(self.kernel_config.settings())
            turns = self.session.store.get(chat).turns
            if turns and turns[-1].model:  # the model this chat last answered with
                settings = settings.with_overrides(model=turns[-1].model)
            prompt = explain_prompt(shell, question, self.kernel_config.known_keys())
            options = TurnOptions(chat=chat, cell=self.cell)
            self.session.ask(prompt, settings, options, make_renderer(shell, settings.display))
        except BaseException as error:
            mark_explain_failure(error)
            raise

    @subcommand(
        "answer cells from the answers saved in the notebook (on, strict, off; or show the state)",
        lambda p: p.add_argument("words", nargs="*", metavar="on | strict | off | PATH.ipynb"),
        lambda p: p.add_argument("--fast", action="store_true"),
    )
    def replay(self, opts: argparse.Namespace) -> None:
        modes = ("on", "strict", "off", "status")
        words: list[str] = opts.words
        mode = words[0] if words and words[0] in modes else ("on" if words else "status")
        paths = words[1:] if words and words[0] in modes else words
        if len(paths) > 1 or (paths and mode in ("off", "status")):
            raise UsageError("%mistral replay takes on, strict or off, then at most one notebook path.")
        config = self.kernel_config
        if mode == "off":
            config.set_from_text("replay", "off")
            self._say("Replay is off: cells ask the server.")
            return
        if mode != "status":
            if paths and not paths[0].endswith(".ipynb"):
                raise UsageError(f"Replay reads a notebook file (.ipynb), not {paths[0]!r}.")
            previous = {name: config.settings().value(name) for name in ("replay", "replay_notebook", "replay_pace")}
            config.set_from_text("replay", mode)
            config.set_from_text("replay_notebook", paths[0] if paths else "")
            config.set_from_text("replay_pace", "fast" if opts.fast else "recorded")
            try:
                self.session.replays.book(config.settings())
            except UsageError:  # a notebook that cannot be read changes nothing
                for name, value in previous.items():
                    config.set_from_text(name, "" if value is None else str(value))
                raise
        settings = config.settings()
        if settings.replay == "off":
            self._say("Replay is off: cells ask the server (%mistral replay on answers them from this notebook).")
            return
        book = self.session.replays.book(settings)
        pace = "at once" if settings.replay_pace == "fast" else "at the recorded pace"
        others = "fail (strict)" if settings.replay == "strict" else "ask the server"
        self._say(
            f"Replay is {settings.replay}: {len(book)} saved answer(s) in {book.path.name}, streamed {pace}; "
            f"cells without a saved answer {others}."
        )

    @subcommand("this help")
    def help(self, opts: argparse.Namespace) -> None:
        self._say(self.help_text)


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _format_value(value: object) -> str:
    return "(none)" if value is None else repr(value) if isinstance(value, str) else str(value)
