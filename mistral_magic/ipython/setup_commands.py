"""The ``%mistral`` subcommands about the server and the settings: models, local, config, key and help."""

from __future__ import annotations

import argparse
import getpass
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..render.tables import table_bundle
from ..settings import SETTING_NAMES
from .subcommands import Commands, format_value, subcommand

if TYPE_CHECKING:  # the session (and httpx under it) is imported on first use, not when the extension loads
    pass


@subcommand("the models the server offers")
def models(commands: Commands, opts: argparse.Namespace) -> None:
    settings = commands.session.local.resolve(commands.kernel_config.settings())
    models = commands.session.client.models(commands.session.endpoint(settings))
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
    commands.show(
        table_bundle(["model", "context length", "owned by", ""], rows, title=f"Models at {settings.base_url}")
    )


@subcommand(
    "start a small local model (llama.cpp) and ask it; stop it, or show whether it runs",
    lambda p: p.add_argument(
        "action", nargs="?", choices=("start", "stop", "status"), default="start", metavar="stop | status"
    ),
    lambda p: p.add_argument("--model", metavar="PATH.gguf"),
    lambda p: p.add_argument("--port", metavar="N", type=int),
    lambda p: p.add_argument("--ctx", metavar="N", type=int),
)
def local(commands: Commands, opts: argparse.Namespace) -> None:
    server = commands.session.local.server
    if opts.action != "start" and (opts.model is not None or opts.port is not None or opts.ctx is not None):
        raise UsageError(f"%mistral local {opts.action} takes no flags; --model, --port and --ctx are for starting.")
    if opts.action == "stop":
        server = commands.session.local.stop()
        if server is None:
            commands._say("No local model server runs in this kernel.")
            return
        settings = commands.kernel_config.settings()
        if settings.base_url == "local":
            commands._say(
                f"Stopped the local model server (pid {server.pid}); base_url is still 'local', so the next cell starts it again."
            )
        else:
            commands._say(
                f"Stopped the local model server (pid {server.pid}); cells go to {settings.base_url} again "
                f"(model {settings.model})."
            )
    elif opts.action == "status":
        if server is None:
            commands._say("No local model server runs in this kernel; %mistral local starts one.")
        elif not server.running():
            commands._say(f"The local model server (pid {server.pid}) has stopped; %mistral local starts it again.")
        else:
            commands._say(
                f"Local model server running: {server.model_path} at {server.base_url} "
                f"(pid {server.pid}, context {server.n_ctx} tokens)."
            )
    else:
        server, reused = commands.session.local.start(opts.model, opts.port, opts.ctx)
        commands._say(server.banner(reused))


@subcommand(
    "show settings and where each comes from, or set them (name= unsets)",
    lambda p: p.add_argument("assignments", nargs="*", metavar="name=value"),
)
def config(commands: Commands, opts: argparse.Namespace) -> None:
    args: list[str] = opts.assignments
    for assignment in args:
        name, sep, value = assignment.partition("=")
        if not sep:
            raise UsageError(f"Write settings as name=value (got {assignment!r}); name= with nothing unsets one.")
        if name in ("api_key", "key"):
            raise UsageError("The key is never set in a cell (it would be saved in the notebook): run %mistral key.")
        commands.kernel_config.set_from_text(name.strip(), value)
    settings = commands.kernel_config.settings()
    shown = [n for n in SETTING_NAMES if not args or any(a.partition("=")[0].strip() == n for a in args)]
    rows = [(name, format_value(settings.value(name)), settings.sources[name]) for name in shown]
    if not args:
        key = commands.kernel_config.api_key()
        rows.insert(0, ("api_key", key.masked() if key else "(not set)", commands.kernel_config.api_key_source()))
    commands.show(table_bundle(["setting", "value", "source"], rows))


@subcommand(
    "type the API key privately (getpass), or forget it",
    lambda p: p.add_argument("--clear", action="store_true"),
)
def key(commands: Commands, opts: argparse.Namespace) -> None:
    if opts.clear:
        commands.kernel_config.set_api_key("")
        commands._say("Forgot the key typed with %mistral key (MISTRAL_API_KEY, if set, applies again).")
        return
    key = getpass.getpass("Mistral API key (hidden): ")
    if not key.strip():
        raise UsageError("No key entered; nothing changed.")
    commands.kernel_config.set_api_key(key)
    masked = commands.kernel_config.api_key()
    commands._say(f"Key set for this kernel ({masked.masked() if masked else ''}); it is kept in memory only.")


@subcommand("this help")
def help(commands: Commands, opts: argparse.Namespace) -> None:
    commands._say(commands.help_text)
