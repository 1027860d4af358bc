"""``--each`` and :func:`mistral_magic.annotate`: one one-shot request per item, live or through batch
jobs, kept for ``%mistral errors``: the verb :class:`Session` adds to a :class:`.kernel.ChatSession`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from ..annotation.batchrun import BatchRunner
from ..annotation.items import Items
from ..annotation.result import AnnotationRun
from ..annotation.rules import AnswerRules, answer_rules
from ..annotation.runner import ProgressFactory, Runner, SilentProgress, StreamedCompleter
from ..annotation.votes import count_ties
from ..api.protocol import Completion, Endpoint
from ..errors import AnnotationInterrupted, UsageError, hint, option
from ..images.attachment import Attachment
from ..local.mode import is_local
from ..settings import Settings
from .kernel import ChatSession, TurnOptions


class Session(ChatSession):
    """A kernel's session: :class:`.kernel.ChatSession` and ``--each`` (live, or through batch jobs)."""

    def ask_each(
        self,
        items: Items,
        prompts: Sequence[str],
        settings: Settings,
        options: TurnOptions,
        *,
        workers: int = 8,
        cache: bool = True,
        rpm: float | None = None,
        progress: ProgressFactory = SilentProgress,
        usage_label: str = "annotate",
        images_for: Callable[[int], tuple[Attachment, ...]] | None = None,
        batch: bool = False,
        wait: bool = True,
    ) -> AnnotationRun:
        """Ask every prompt as a one-shot request (no history read or written) and keep the run
        for ``%mistral errors``; see :class:`.annotation.runner.Runner`. ``images_for(index)`` gives
        an item's images (``--image`` with ``--each``); they are part of the body, so of its cache key.
        Answers are streamed (see :class:`.annotation.runner.StreamedCompleter`); with ``batch`` the
        requests go through batch jobs instead (see :class:`.annotation.batchrun.BatchRunner`); without
        ``wait``, :class:`.errors.BatchNotReady` says the jobs are submitted or still running."""
        if batch:
            check_batch(settings, options, cache)
        settings = replace(settings, stream=True)
        options = replace(options, once=True, new=False, cache=False, json=options.json or options.schema is not None)
        rules = answer_rules(
            StreamedCompleter(self.client), self.client, options.schema, options.votes, settings.repair
        )
        runner = Runner(
            rules.client,
            self.endpoint(settings),
            workers=workers,
            cache=self.cache if cache else None,
            rpm=rpm,
            progress=progress,
            in_flight=self.in_flight,
            usable=rules.usable,
        )

        def on_answer(completion: Completion) -> None:
            self.store.record_usage(usage_label, completion.usage)

        def body_for(index: int) -> dict[str, Any]:  # built when sent: a large run keeps no list of bodies
            if images_for is None:
                return self.build_request(prompts[index], settings, options)
            return self.build_request(prompts[index], settings, replace(options, images=images_for(index)))

        if images_for is not None and len(items.values):  # every item has images: one check for the model
            self.vision.require(self.client, runner.endpoint, settings.model, is_local(settings))
        run_all = runner.run
        if batch:
            run_all = partial(self._batch_runner(settings, runner.endpoint, rules, progress).run, wait=wait)

        try:
            run = run_all(items, body_for, json=options.json, on_answer=on_answer)
        except AnnotationInterrupted as stopped:
            self.last_run = stopped.run
            raise
        finally:
            self.warn_cache_problem()
        if rules.validating is not None and rules.validating.repaired:
            run.notes.append(f"{rules.validating.repaired} repaired")
        if rules.voting is not None and options.schema is not None:
            ties = count_ties(options.schema.fields, run)
            run.notes.append(f"{ties} with tied votes" if ties else "no tied votes")
        self.last_run = run
        return run

    def _batch_runner(
        self, settings: Settings, endpoint: Endpoint, rules: AnswerRules, progress: ProgressFactory
    ) -> BatchRunner:
        return BatchRunner(
            self.batch_jobs(settings),
            endpoint,
            self.cache,
            self.job_store,
            model=settings.model,
            progress=progress,
            usable=rules.usable,
            answer_of=rules.answer_of,
            finish=rules.finish,
            in_flight=self.in_flight,
            poll=self.batch_poll,
            per_job=settings.batch_job_requests,
            timeout_hours=settings.batch_timeout_hours,
        )


def check_batch(settings: Settings, options: TurnOptions, cache: bool) -> None:
    """Refuse, in one line, what ``--batch`` cannot do."""
    if is_local(settings):
        raise UsageError(f"{option('batch')} needs Mistral's Batch API, which the local model server does not have.")
    if not cache:
        raise UsageError(f"{hint('batch_cache')}.")
