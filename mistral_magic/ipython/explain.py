"""``%mistral explain``: the last error of this kernel as a prompt (cell, exception, trimmed traceback).

Nothing secret leaves: the API key and every environment value of 8 or more characters are replaced
by a mask or the variable's name wherever they appear (source, traceback, exception message), also
escaped or URL-encoded, before anything is cut to length (a cut must not leave half a secret).
"""

from __future__ import annotations

import linecache
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import UsageError
from ..interpolate import cut_middle
from ..secret import Secret, can_be_secret, encoded_forms

MAX_FRAMES = 12  # more are cut in the middle: the first HEAD_FRAMES and the last ones stay
HEAD_FRAMES = 4
MAX_SOURCE_CHARS = 6_000
MAX_MESSAGE_CHARS = 2_000
MAX_LINE_CHARS = 300  # one traceback line

DEFAULT_QUESTION = "What does this error mean, what most likely caused it, and how do I fix it?"


def _package_dir(name: str) -> str | None:
    module = sys.modules.get(name)
    location = getattr(module, "__file__", None)
    return str(Path(location).parent) + os.sep if location else None


@dataclass(frozen=True)
class ErrorReport:
    """What is sent about one error: the cell's code, the traceback lines and the exception line."""

    cell_label: str | None
    cell_source: str | None
    frames: list[str]
    exception: str

    def prompt(self, question: str = "") -> str:
        parts = [f"Explain this error from my Jupyter notebook. {question.strip() or DEFAULT_QUESTION}"]
        if self.cell_source is not None:
            parts.append(f"The cell that raised it ({self.cell_label}):\n```python\n{self.cell_source}\n```")
        else:
            parts.append("(The code of the cell that raised it is not available.)")
        trace = "\n".join([*self.frames, self.exception]) if self.frames else self.exception
        parts.append(f"The error (traceback without IPython's own frames):\n```\n{trace}\n```")
        return "\n\n".join(parts)


_OWN = "_mistral_magic_explain_failed"
_last_explained: list[BaseException] = []  # the error a failed explain should not hide


def mark_explain_failure(error: BaseException) -> None:
    """Mark an error raised by ``%mistral explain`` itself: the next explain skips it."""
    try:
        setattr(error, _OWN, True)
    except AttributeError:  # an exception class with __slots__; it stays explainable
        pass


def last_exception() -> tuple[type[BaseException], BaseException, TracebackType | None] | None:
    """The last exception IPython showed in this kernel (it sets ``sys.last_*``), or None; an
    error of ``%mistral explain`` itself is passed over for the one explained before it."""
    value = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if value is not None and getattr(value, _OWN, False):
        value = _last_explained[0] if _last_explained else None
    if value is None:
        return None
    _last_explained[:] = [value]
    tb = value.__traceback__ or getattr(sys, "last_traceback", None)
    return type(value), value, tb


def report_error(
    shell: Any,
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None],
    mask: Callable[[str], str],
) -> ErrorReport:
    """The report of one exception raised in ``shell``'s cells; every text passes through ``mask``
    (see :func:`secret_masker`) before it is cut to length."""
    etype, value, tb = exc_info
    cell_names = _cell_names(shell)
    internal = tuple(d for d in (_package_dir("IPython"), _package_dir("ipykernel")) if d)
    summaries = [f for f in traceback.extract_tb(tb) if not (internal and f.filename.startswith(internal))]
    cell_file = next((f.filename for f in summaries if f.filename in cell_names), None)
    if cell_file is None and isinstance(value, SyntaxError) and value.filename in cell_names:
        cell_file = value.filename  # raised while compiling the cell: no frame runs it
    frames = [_format_frame(f, cell_names, mask) for f in summaries]
    if len(frames) > MAX_FRAMES:
        tail = MAX_FRAMES - HEAD_FRAMES
        cut = len(frames) - MAX_FRAMES
        frames = [*frames[:HEAD_FRAMES], f"  [... {cut} frames cut ...]", *frames[-tail:]]
    exception = "".join(traceback.format_exception_only(etype, value)).rstrip()
    if isinstance(value, SyntaxError) and cell_file is not None:
        exception = exception.replace(f'File "{cell_file}"', cell_names[cell_file])
    source = "".join(linecache.getlines(cell_file)).rstrip("\n") if cell_file else None
    return ErrorReport(
        cell_label=cell_names.get(cell_file) if cell_file else None,
        cell_source=cut_middle(mask(source), MAX_SOURCE_CHARS) if source is not None else None,
        frames=frames,
        exception=cut_middle(mask(exception), MAX_MESSAGE_CHARS),
    )


def _cell_names(shell: Any) -> dict[str, str]:
    """Each cell's compiled file name -> ``Cell In[N]``, as IPython shows it."""
    mapping = getattr(getattr(shell, "compile", None), "_filename_map", None) or {}
    return {name: f"Cell In[{number}]" for name, number in mapping.items()}


def _format_frame(frame: traceback.FrameSummary, cell_names: Mapping[str, str], mask: Callable[[str], str]) -> str:
    where = cell_names.get(frame.filename) or f'File "{frame.filename}"'
    text = mask(f"  {where}, line {frame.lineno}, in {frame.name}")
    if frame.line:
        text += f"\n    {cut_middle(mask(frame.line.strip()), MAX_LINE_CHARS)}"
    return text


def secret_masker(environ: Mapping[str, str], keys: Sequence[Secret]) -> Callable[[str], str]:
    """A function giving a text without the ``keys`` (masked) and without the environment's values
    (replaced by ``$NAME``), as they are, escaped or URL-encoded; longest first, so that a value
    containing another is replaced whole."""
    replacements = sorted(
        (
            (form, f"${name}")
            for name, value in environ.items()
            if can_be_secret(value)
            for form in encoded_forms(value)
        ),
        key=lambda pair: -len(pair[0]),
    )

    def mask(text: str) -> str:
        for key in keys:
            text = key.redact(text)
        for form, name in replacements:
            if form in text:
                text = text.replace(form, name)
        return text

    return mask


def explain_prompt(shell: Any, question: str, keys: Sequence[Secret]) -> str:
    """The prompt asking about the last error in ``shell``, with every secret taken out."""
    exc_info = last_exception()
    if exc_info is None:
        raise UsageError("No error to explain yet: %mistral explain reads the last exception raised in this kernel.")
    mask = secret_masker(os.environ, keys)
    return mask(report_error(shell, exc_info, mask).prompt(mask(question)))


_EXPLAIN_LINE = re.compile(r"^(?P<indent>[ \t]*)%mistral[ \t]+(?P<rest>explain\b.*?\?)[ \t]*$")


def keep_question_marks(lines: list[str]) -> list[str]:
    """An IPython input transformer: ``%mistral explain why?`` calls the magic instead of being read
    as a help request for ``why`` (IPython's rule for a line ending in ``?``)."""
    if lines and lines[0].lstrip().startswith("%%"):
        return lines  # a cell magic's body is not Python
    out = []
    for line in lines:
        match = _EXPLAIN_LINE.match(line.rstrip("\n"))
        if match is None:
            out.append(line)
        else:
            call = f"get_ipython().run_line_magic('mistral', {match.group('rest')!r})"
            out.append(f"{match.group('indent')}{call}" + ("\n" if line.endswith("\n") else ""))
    return out
