"""Chat files on disk: checking a loaded document's shape, and writing a file atomically.

A file is validated whole before anything is loaded, so a bad file changes nothing. Writing
goes to a temporary file in the destination's folder, then renames it into place: a symlink is
written through (its target is replaced, the link stays), an existing file keeps its mode, and
a new file is private (0600).
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

from .errors import UsageError
from .textsafe import encodable, encodable_data


def check_fields(cls: type, data: Any, where: str) -> dict:
    """``data`` as keyword arguments for the dataclass ``cls``, or a :class:`UsageError` naming
    ``where`` and the first field that is missing, unknown or of the wrong type."""
    if not isinstance(data, dict):
        raise UsageError(f"{where} is {_kind(data)}, not an object.")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise UsageError(f"{where} has an unknown field {unknown[0]!r}.")
    for name, spec in known.items():
        required = spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
        if name not in data:
            if required:
                raise UsageError(f"{where} has no {name!r}.")
            continue
        if not _matches(data[name], hints[name]):
            raise UsageError(f"{where}: {name!r} is {_kind(data[name])}, which does not fit {_describe(hints[name])}.")
    return encodable_data(data)  # "\ud83d" in the JSON loads as a lone surrogate


def _matches(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is Any:
        return True
    cls = origin or hint
    if cls in (int, float) and isinstance(value, bool):
        return False
    if cls is float:
        return isinstance(value, (int, float))
    return isinstance(value, cls)


def _describe(hint: Any) -> str:
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    names = {type(None): "null", str: "text", int: "a whole number", float: "a number", bool: "true/false"}
    return " or ".join(names.get(typing.get_origin(a) or a, (typing.get_origin(a) or a).__name__) for a in args)


def _kind(value: Any) -> str:
    return {
        type(None): "null",
        str: "text",
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def write_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` (through a symlink, keeping an existing file's mode); returns the
    path written. Every failure is one :class:`UsageError` line, and no temporary file stays behind."""
    shown = Path(path).expanduser()
    target = Path(os.path.realpath(shown))  # a symlink is written through: its target gets the text
    if target.is_dir():
        raise UsageError(f"Cannot save to {shown}: it is a folder; give a file name, e.g. {shown / 'chats.json'}.")
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"Cannot save to {shown}: {exc.strerror or exc}.") from None
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(encodable(text))
            handle.flush()
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"Cannot save to {shown}: {exc.strerror or exc}.") from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return shown
