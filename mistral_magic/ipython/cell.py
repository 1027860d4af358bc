"""One ``%%mistral`` cell: its flags checked, its text interpolated, then asked, shown, recorded and
stored. Imported by the first cell, so that loading the extension stays instant."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from ..annotation.items import Items, as_items, fill_template
from ..annotation.jsonmode import parse_json_reply
from ..annotation.result import AnnotationRun
from ..annotation.schema import resolve as resolve_schema
from ..annotation.store import store_results, store_typed, written_columns
from ..annotation.trial import dry_run, subset, trial_positions
from ..cells import CellTracker
from ..errors import AnnotationInterrupted, BatchNotReady, LocalNoVisionError, UsageError
from ..images.sources import ItemImages, attachments_for
from ..interpolate import interpolate
from ..render.select import make_renderer, progress_factory, publish
from ..session import Session, TurnOptions
from ..settings import Settings
from .cellflags import cell_parser, check_variable_name, setting_overrides
from .trials import show_dry_run, show_trial


class CellHost(Protocol):
    """What a cell needs of the magics that run it (:class:`.magics.MistralMagics`)."""

    shell: Any
    cells: CellTracker

    @property
    def session(self) -> Session: ...

    def settings(self) -> Settings: ...

    def key_mask(self) -> Callable[[str], str]: ...

    def show_local_banner(self) -> None: ...


def ask_cell(magics: CellHost, line: str, cell: str) -> None:
    """Run one ``%%mistral`` cell: parse flags, interpolate, ask, show, record, store."""
    args = cell_parser().parse(line)
    namespace = magics.shell.user_ns if magics.shell is not None else {}
    prompt = cell.strip()
    if not prompt:
        raise UsageError("The cell is empty: write your question below the %%mistral line.")
    settings = magics.settings().with_overrides(**setting_overrides(args))
    system = args.system
    if not args.raw:
        limit, mask = settings.max_insert_chars, magics.key_mask()
        if not args.each:  # with --each the template is filled once per item, below
            prompt = interpolate(prompt, namespace, limit, mask)
        system = interpolate(system, namespace, limit, mask) if system is not None else None
    reserved = magics.shell.user_ns_hidden if magics.shell is not None else ()
    out = check_variable_name(args.out, reserved) if args.out else None
    options = TurnOptions(
        chat=args.chat,
        system=system,
        new=args.new,
        once=args.once,
        json=args.json,
        cache=bool(args.cache),
        schema=resolve_schema(args.schema, namespace) if args.schema is not None else None,
        votes=args.votes or 1,
        cell=magics.cells.current(),
    )
    if args.image and not args.each:
        options = replace(options, images=tuple(attachments_for(args.image, namespace)))
    if args.each:
        each_cell(magics, args, cell.strip(), settings, options, namespace, out)
        return
    settings = magics.session.local.resolve(settings)
    try:
        if options.schema is not None:
            value = magics.session.ask_with_schema(
                prompt, settings, options, lambda: make_renderer(magics.shell, settings.display)
            )
            magics.show_local_banner()
            if out is not None:
                namespace[out] = value
            return
        completion = magics.session.ask(prompt, settings, options, make_renderer(magics.shell, settings.display))
    except LocalNoVisionError as note:  # a notebook run on the local model goes on past an image cell
        print(note)
        return
    magics.show_local_banner()
    result: Any = parse_json_reply(completion.text) if args.json else completion.text
    if out is not None:
        namespace[out] = result


def each_cell(
    magics: CellHost,
    args: argparse.Namespace,
    template: str,
    settings: Settings,
    options: TurnOptions,
    namespace: dict[str, Any],
    out: str | None,
) -> None:
    """``--each NAME``: the cell is a template filled once per item; answers go to ``--out``."""
    if args.each not in namespace:
        raise UsageError(f"--each: there is no variable named {args.each!r} in the notebook.")
    if out == args.each:
        raise UsageError(
            f"--out {out} would replace the items of --each {out} by the answers (and a re-run would ask "
            "about the answers): choose another name for --out."
        )
    written = written_columns(out, options.schema, options.votes) if out is not None else []
    items = as_items(namespace[args.each], f"--each {args.each}", written)
    everything = items
    positions = trial_positions(len(items.values), args.limit, args.sample, settings.sampling.random_seed)
    if positions is not None:
        items = subset(items, positions)
    mask = magics.key_mask()
    prompts = [template] * len(items.values) if args.raw else fill_template(template, items, namespace, mask)
    if args.dry_run:
        show_dry_run(publish, dry_run(prompts, options.system or settings.system), len(items.values), options.votes)
        return
    settings = magics.session.local.resolve(settings)
    try:
        run = magics.session.ask_each(
            items,
            prompts,
            settings,
            options,
            workers=args.workers or 8,
            cache=settings.cache if args.cache is None else args.cache,
            rpm=args.rpm,
            progress=progress_factory(magics.shell, settings.display),
            usage_label=f"--each {args.each}",
            images_for=ItemImages(args.image, items, namespace) if args.image else None,
            batch=args.batch,
            wait=args.wait,
        )
    except BatchNotReady as pending:  # --no-wait: not an error, the jobs run on
        print(pending)
        return
    except AnnotationInterrupted as stopped:
        if out is not None and positions is None:
            _store(namespace, out, items, stopped.run, options)
        raise
    if positions is not None:  # a trial: shown, not stored
        first = prompts[0] if len(prompts) else ""
        show_trial(publish, first, items, positions, everything.index, run, options.schema)
    elif out is not None:
        _store(namespace, out, items, run, options)
    print(run.summary())
    magics.show_local_banner()


def _store(namespace: dict[str, Any], out: str, items: Items, run: AnnotationRun, options: TurnOptions) -> None:
    """``--out``: the answers, or with ``--schema`` one typed column per field."""
    if options.schema is not None:
        store_typed(namespace, out, items, run, options.schema, options.votes)
    else:
        store_results(namespace, out, items, run)
