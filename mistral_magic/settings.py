"""Settings, each declared once, and where they come from.

Order, later wins: built-in defaults < environment variables < ``%config MistralMagics.<name>``
(or ``ipython_config.py``) and ``%mistral config name=value`` < the cell's own flags.

Every setting is one field of :class:`Settings` or :class:`Sampling` made by :func:`setting`: its
type, default, help, check, cell flag and environment variable. The traitlets traits, the checks
(``%config`` and ``%mistral config`` alike), the ``%%mistral`` flags (:mod:`.cellflags`) and the
request fields are derived from these fields: a new sampling option is one field of :class:`Sampling`.
"""

from __future__ import annotations

import math
import os
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import InvalidSettingError

DEFAULT_BASE_URL = "https://api.Mistral.com"
DEFAULT_MODEL = "Mistral-chat"
KEY_ENV = "MISTRAL_API_KEY"
REASONING_EFFORTS = ("high", "none")  # what Mistral's reasoning models accept
RERUN_RULES = ("replace", "append")
REPLAY_MODES = ("off", "on", "strict")
REPLAY_PACES = ("recorded", "fast")


@dataclass(frozen=True)
class Check:
    """A rule a value must follow; ``rule`` completes "it must ..."."""

    test: Callable[[Any], bool]
    rule: str


@dataclass(frozen=True)
class Spec:
    """What a field of :class:`Settings` or :class:`Sampling` declares besides its type and default."""

    help: str
    check: Check | None = None
    flags: tuple[str, ...] = ()  # the %%mistral flags that set it for one cell
    flag_help: str | None = None  # (default: help)
    off_flag: str | None = None  # a bool's flag that turns it off for one cell
    off_help: str = ""
    env: str | None = None
    choices: tuple[str, ...] = ()
    wire: str | None = None  # Sampling: the request field (default: the name)
    configurable: bool = True  # False: a cell flag and annotate() option only


def setting(default: Any, help: str, **spec: Any) -> Any:
    """A settings field: ``default`` plus the :class:`Spec` metadata everything else is derived from."""
    return field(default=default, metadata={"spec": Spec(help, **spec)})


def _between(low: float, high: float, rule: str) -> Check:
    return Check(lambda v: low <= v <= high, rule)


def _is_http_url(text: str) -> bool:
    """An http(s) URL that httpx can send to: a host, a port that exists, no whitespace."""
    if not text.startswith(("http://", "https://")) or any(c.isspace() for c in text):
        return False
    import httpx  # only when a base URL is set: loading the extension stays cheap

    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError):
        return False
    return bool(url.host) and (url.port is None or 0 < url.port < 65536)


def _finite_above_0(value: float) -> bool:
    return 0 < value < float("inf")


POSITIVE_WHOLE = Check(lambda v: v > 0, "be a positive whole number")
WHOLE_AT_LEAST_0 = Check(lambda v: v >= 0, "be a whole number >= 0")
SECONDS_ABOVE_0 = Check(lambda v: v > 0, "be a number of seconds > 0")
SECONDS_AT_LEAST_0 = Check(lambda v: v >= 0, "be a number of seconds >= 0")


@dataclass(frozen=True)
class Sampling:
    """How the model samples a reply; sent in the request body when set (``None``, ``False``, empty: not sent)."""

    temperature: float | None = setting(
        None,
        "sampling temperature (0 to 1.5 on Mistral)",
        check=_between(0, 2, "be between 0 and 2 (Mistral accepts 0 to 1.5)"),
        flags=("-t", "--temperature"),
    )
    top_p: float | None = setting(
        None,
        "nucleus sampling probability (0 < p <= 1)",
        check=Check(lambda v: 0 < v <= 1, "be greater than 0 and at most 1"),
        flags=("--top-p",),
    )
    max_tokens: int | None = setting(None, "cap on reply tokens", check=POSITIVE_WHOLE, flags=("--max-tokens",))
    random_seed: int | None = setting(
        None, "random seed (sent as random_seed)", check=WHOLE_AT_LEAST_0, flags=("--seed",)
    )
    stop: tuple[str, ...] = setting((), "stop sequence (repeat for several)", flags=("--stop",), configurable=False)
    safe_prompt: bool = setting(False, "prepend Mistral's safety prompt", flags=("--safe-prompt",))
    reasoning_effort: str | None = setting(
        None,
        "reasoning models (magistral): high thinks first, none answers at once",
        check=Check(lambda v: v in REASONING_EFFORTS, "be high or none"),
        choices=REASONING_EFFORTS,
        flags=("--reasoning-effort",),
    )

    def body_fields(self) -> dict[str, Any]:
        """The request fields of the options that are set."""
        body: dict[str, Any] = {}
        for item in SAMPLING_SETTINGS:
            value = getattr(self, item.name)
            if value is not None and value is not False and value != ():
                body[item.spec.wire or item.name] = list(value) if isinstance(value, tuple) else value
        return body


@dataclass(frozen=True)
class Settings:
    """The effective settings for one request."""

    model: str = setting(
        DEFAULT_MODEL,
        "model name",
        check=Check(lambda v: bool(v.strip()), "not be empty"),
        flags=("-m", "--model"),
        flag_help="model for this cell (default: the model setting)",
        env="MISTRAL_MODEL",
    )
    base_url: str = setting(
        DEFAULT_BASE_URL,
        "API base URL, with or without /v1 ('local': a local model)",
        check=Check(
            lambda v: v == "local" or _is_http_url(v), "start with http:// or https:// and name a host (a valid URL)"
        ),
        env="MISTRAL_BASE_URL",
    )
    system: str | None = setting(None, "default system prompt for new chats")
    sampling: Sampling = field(default_factory=Sampling)
    stream: bool = setting(
        True,
        "stream replies",
        flags=("--stream",),
        flag_help="stream even if the stream setting is off",
        off_flag="--no-stream",
        off_help="wait for the whole reply (stream: false)",
    )
    connect_timeout: float = setting(10.0, "seconds to wait for a connection", check=SECONDS_ABOVE_0)
    read_timeout: float = setting(60.0, "seconds to wait for the next piece of a reply", check=SECONDS_ABOVE_0)
    max_retries: int = setting(
        2,
        "retries on connection errors, timeouts, 408, 409, 429, 5xx",
        check=_between(0, 10, "be a whole number from 0 to 10"),
    )
    retry_base_delay: float = setting(0.5, "first backoff delay in seconds", check=SECONDS_AT_LEAST_0)
    retry_max_wait: float = setting(
        20.0, "longest wait before a retry, even if the server asks for more", check=SECONDS_AT_LEAST_0
    )
    max_history_turns: int = setting(
        0,
        "send at most this many past turns (0: all; the system prompt is always sent)",
        check=Check(lambda v: v >= 0, "be a whole number >= 0 (0 keeps every turn)"),
    )
    max_insert_chars: int = setting(
        20_000,
        "longest text one {variable} puts in a cell's prompt; a longer value keeps its start and end "
        "around '[... N characters cut]' (0: no limit)",
        check=Check(lambda v: v >= 0, "be a whole number >= 0 (0: no limit)"),
    )
    display: str = setting("auto", "live view: auto, widget or text", choices=("auto", "widget", "text"))
    rerun: str = setting(
        "replace",
        "a cell run again: replace (its earlier turn, and the turns after it, leave the chat) or append",
        check=Check(lambda v: v in RERUN_RULES, "be replace or append"),
        choices=RERUN_RULES,
    )
    replay: str = setting(
        "off",
        "answer cells from the answers saved in the notebook: off, on (others ask the server) or strict (others fail)",
        check=Check(lambda v: v in REPLAY_MODES, "be off, on or strict"),
        choices=REPLAY_MODES,
        env="MISTRAL_MAGIC_REPLAY",
    )
    replay_notebook: str | None = setting(
        None, "the .ipynb file replay reads (default: this notebook, as Jupyter tells the kernel)"
    )
    replay_pace: str = setting(
        "recorded",
        "replayed answers stream at the recorded pace, or fast (at once)",
        check=Check(lambda v: v in REPLAY_PACES, "be recorded or fast"),
        choices=REPLAY_PACES,
    )
    cache: bool = setting(True, "cache the answers of --each runs on disk")
    repair: int = setting(
        1,
        "ask again, with the reason, when a --schema reply does not match (0: never)",
        check=_between(0, 10, "be a whole number from 0 to 10"),
        flags=("--repair",),
    )
    batch_job_requests: int = setting(
        100_000,
        "most requests in one --batch job; a larger run is split into several jobs, tracked as one",
        check=_between(1, 1_000_000, "be a whole number from 1 to 1000000"),
    )
    batch_timeout_hours: int = setting(
        24,
        "hours a --batch job may run before Mistral stops it (TIMEOUT_EXCEEDED keeps what was done)",
        check=_between(1, 168, "be a whole number of hours from 1 to 168"),
    )
    max_event_mb: float = setting(
        16.0, "largest line or event of a streamed reply, in MB", check=Check(_finite_above_0, "be a number of MB > 0")
    )
    max_reply_mb: float = setting(
        128.0, "largest reply body after decompression, in MB", check=Check(_finite_above_0, "be a number of MB > 0")
    )
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def value(self, name: str) -> Any:
        """The value of setting ``name`` (sampling options included)."""
        return getattr(self.sampling if BY_NAME[name].sampling else self, name)

    def with_overrides(self, **overrides: Any) -> Settings:
        """These settings with the cell's flags (``None`` means "not given") applied."""
        given = {k: v for k, v in overrides.items() if v is not None}
        for name, value in given.items():
            check(name, value)
        return with_values(self, given, {**self.sources, **{name: "cell flag" for name in given}})


@dataclass(frozen=True)
class Setting:
    """One declared setting: its name, type, default and :class:`Spec`."""

    name: str
    kind: type  # str, int, float, bool or tuple
    default: Any
    spec: Spec
    sampling: bool  # a field of Sampling


def _declared(cls: type, sampling: bool) -> list[Setting]:
    hints = typing.get_type_hints(cls)
    found: list[Setting] = []
    for item in fields(cls):
        spec = item.metadata.get("spec")
        if spec is not None:
            found.append(Setting(item.name, _base_type(hints[item.name]), item.default, spec, sampling))
        elif hints[item.name] is Sampling:
            found.extend(_declared(Sampling, True))
    return found


def _base_type(hint: Any) -> type:
    """``float | None`` -> float, ``tuple[str, ...]`` -> tuple."""
    if isinstance(hint, types.UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return typing.get_origin(hint) or hint


ALL_SETTINGS: tuple[Setting, ...] = tuple(_declared(Settings, False))
BY_NAME = {item.name: item for item in ALL_SETTINGS}
SAMPLING_SETTINGS = tuple(item for item in ALL_SETTINGS if item.sampling)
CONFIGURABLE = tuple(item for item in ALL_SETTINGS if item.spec.configurable)
SETTING_NAMES = tuple(item.name for item in CONFIGURABLE)
SAMPLING_NAMES = tuple(item.name for item in SAMPLING_SETTINGS)
DEFAULTS = Settings()


def check(name: str, value: Any) -> None:
    """Raise :class:`InvalidSettingError` naming the fix when ``value`` is out of range for ``name``."""
    item = BY_NAME[name]
    if isinstance(value, float) and not math.isfinite(value):  # inf passes "> 0"; nan fails with a wrong reason
        raise InvalidSettingError(f"{name}={value!r} is invalid: it must be a finite number.")
    rule = item.spec.check
    if value is not None and rule is not None and not rule.test(value):
        raise InvalidSettingError(f"{name}={value!r} is invalid: it must {rule.rule}.")


def with_values(settings: Settings, values: dict[str, Any], sources: dict[str, str]) -> Settings:
    """``settings`` with ``values`` (by setting name, sampling options included) and ``sources``."""
    sampling = {k: v for k, v in values.items() if BY_NAME[k].sampling}
    others = {k: v for k, v in values.items() if not BY_NAME[k].sampling}
    return replace(settings, **others, sampling=replace(settings.sampling, **sampling), sources=sources)


def type_name(item: Setting) -> str:
    """What a value of ``item`` must look like, for error messages."""
    if item.spec.choices:
        return " | ".join(item.spec.choices)
    return {float: "a number", int: "a whole number", bool: "true or false"}.get(item.kind, "text")


def trait_help(item: Setting) -> str:
    """The help of a trait: the setting's help, default and environment variable."""
    default = f"{item.default:g}" if isinstance(item.default, float) else item.default
    extra = [f"default {default}"] if item.default not in (None, False, ()) else []
    if item.spec.env:
        extra.append(f"env {item.spec.env}")
    text = item.spec.help[0].upper() + item.spec.help[1:]
    return f"{text} ({'; '.join(extra)})." if extra else f"{text}."


def from_environment(item: Setting) -> str | None:
    """The value of ``item``'s environment variable, if it is set."""
    value = os.environ.get(item.spec.env, "").strip() if item.spec.env else ""
    return value or None
