"""``%%mistral`` and ``%mistral``: thin glue from a cell to a request, a renderer and a turn."""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from .batch import AnnotationInterrupted, as_items, fill_template, run_batch, store_results
from .cellflags import cell_parser, check_variable_name
from .commands import SUBCOMMAND_HELP, Commands
from .errors import UsageError
from .interpolate import interpolate
from .jsonmode import parse_json_reply
from .render.select import make_renderer, publish
from .session import Session, TurnOptions
from .settings import MistralConfig

_PARSER = cell_parser()


@magics_class
class MistralMagics(Magics, MistralConfig):
    """Ask a Mistral (or any OpenAI-compatible) chat model from a notebook cell."""

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        self.session = Session(self)

    @no_var_expand
    @line_cell_magic
    def mistral(self, line: str, cell: str | None = None) -> None:
        if cell is None:
            Commands(self, publish).run(line)
            return
        self.ask_cell(line, cell)

    def ask_cell(self, line: str, cell: str) -> None:
        """Run one ``%%mistral`` cell: parse flags, interpolate, ask, show, record, store."""
        args = _PARSER.parse(line)
        namespace = self.shell.user_ns if self.shell is not None else {}
        prompt = cell.strip()
        if not prompt:
            raise UsageError("The cell is empty: write your question below the %%mistral line.")
        system = args.system
        if not args.raw:
            if not args.each:  # with --each the template is filled once per item, below
                prompt = interpolate(prompt, namespace)
            system = interpolate(system, namespace) if system is not None else None
        out = check_variable_name(args.out) if args.out else None
        settings = self.settings().with_overrides(
            model=args.model,
            temperature=args.temperature,
            top_p=args.top_p,
            max_tokens=args.max_tokens,
            random_seed=args.random_seed,
            safe_prompt=args.safe_prompt,
            reasoning_effort=args.reasoning_effort,
            stream=args.stream,
        )
        if args.each:
            self.each_cell(args, cell.strip(), settings, system, namespace, out)
            return
        if args.workers is not None or args.rpm is not None:
            raise UsageError("--workers and --rpm go with --each NAME (one request per item).")
        options = TurnOptions(
            chat=args.chat,
            system=system,
            new=args.new,
            once=args.once,
            json=args.json,
            stop=tuple(args.stop),
            cache=bool(args.cache),
        )
        renderer = make_renderer(self.shell, settings)
        completion = self.session.ask(prompt, settings, options, renderer)
        result: Any = parse_json_reply(completion.text) if args.json else completion.text
        if out is not None:
            namespace[out] = result

    def each_cell(
        self, args: Any, template: str, settings: Any, system: str | None, namespace: dict, out: str | None
    ) -> None:
        """``--each NAME``: the cell is a template filled once per item; answers go to ``--out``."""
        if args.each not in namespace:
            raise UsageError(f"--each: there is no variable named {args.each!r} in the notebook.")
        items = as_items(namespace[args.each], f"--each {args.each}")
        prompts = [template] * len(items.values) if args.raw else fill_template(template, items, namespace)
        options = TurnOptions(chat=args.chat, system=system, json=args.json, stop=tuple(args.stop))
        use_cache = settings.cache if args.cache is None else args.cache
        try:
            run = run_batch(
                self.session,
                items,
                prompts,
                settings,
                options,
                workers=args.workers or 8,
                cache=use_cache,
                rpm=args.rpm,
                usage_label=f"--each {args.each}",
            )
        except AnnotationInterrupted as stopped:
            if out is not None:
                store_results(namespace, out, items, stopped.run)
            raise
        if out is not None:
            store_results(namespace, out, items, run)
        print(run.summary())

    def help_text(self) -> str:
        return f"{_PARSER.format_help()}\n{SUBCOMMAND_HELP}"


MistralMagics.mistral.__doc__ = f"""Ask a Mistral chat model; each %%mistral cell is one turn of a conversation.

{_PARSER.format_help()}
{SUBCOMMAND_HELP}

Cell text: {{name}}, {{name.attr}} and {{name[key]}} are replaced by notebook variables (once);
anything else in braces stays as written; {{{{text}}}} gives a literal {{text}}; --raw turns it off.
Settings (later wins): defaults < MISTRAL_API_KEY, MISTRAL_BASE_URL, MISTRAL_MODEL
< %config MistralMagics.<name> / %mistral config name=value < the cell's flags.
"""
