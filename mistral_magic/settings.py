"""Settings and where they come from.

Order, later wins: built-in defaults < environment variables < ``%config MistralMagics.<name>``
(or ``ipython_config.py``) and ``%mistral config name=value`` < the cell's own flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from traitlets import Bool, CFloat, CInt, Enum, Unicode
from traitlets.config import Configurable

from .errors import MissingKeyError, UsageError
from .secret import Secret

DEFAULT_BASE_URL = "https://api.Mistral.com"
DEFAULT_MODEL = "Mistral-chat"
KEY_ENV = "MISTRAL_API_KEY"
ENV_VARS = {"base_url": "MISTRAL_BASE_URL", "model": "MISTRAL_MODEL"}
REASONING_EFFORTS = ("high", "none")  # what Mistral's reasoning models accept


@dataclass(frozen=True)
class Settings:
    """The effective settings for one request."""

    model: str = DEFAULT_MODEL
    base_url: str = DEFAULT_BASE_URL
    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    random_seed: int | None = None
    safe_prompt: bool = False
    reasoning_effort: str | None = None
    stream: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retries: int = 2
    retry_base_delay: float = 0.5
    retry_max_wait: float = 20.0
    max_history_turns: int = 0
    display: str = "auto"
    cache: bool = True
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def with_overrides(self, **overrides: Any) -> Settings:
        """These settings with the cell's flags (``None`` means "not given") applied."""
        given = {k: v for k, v in overrides.items() if v is not None}
        for name, value in given.items():
            validate(name, value)
        sources = {**self.sources, **{name: "cell flag" for name in given}}
        return replace(self, **given, sources=sources)


SETTING_NAMES = tuple(f.name for f in fields(Settings) if f.name != "sources")
DEFAULTS = Settings()


def validate(name: str, value: Any) -> None:
    """Raise a :class:`UsageError` naming the fix when ``value`` is out of range for ``name``."""
    if value is None:
        return
    checks = {
        "temperature": (lambda v: 0 <= v <= 2, "must be between 0 and 2 (Mistral accepts 0 to 1.5)"),
        "top_p": (lambda v: 0 < v <= 1, "must be greater than 0 and at most 1"),
        "max_tokens": (lambda v: v > 0, "must be a positive whole number"),
        "random_seed": (lambda v: v >= 0, "must be a whole number >= 0"),
        "connect_timeout": (lambda v: v > 0, "must be a number of seconds > 0"),
        "read_timeout": (lambda v: v > 0, "must be a number of seconds > 0"),
        "max_retries": (lambda v: 0 <= v <= 10, "must be a whole number from 0 to 10"),
        "retry_base_delay": (lambda v: v >= 0, "must be a number of seconds >= 0"),
        "retry_max_wait": (lambda v: v >= 0, "must be a number of seconds >= 0"),
        "max_history_turns": (lambda v: v >= 0, "must be a whole number >= 0 (0 keeps every turn)"),
        "base_url": (
            lambda v: v == "local" or v.startswith(("http://", "https://")),
            "must start with http:// or https://",
        ),
        "model": (lambda v: bool(v.strip()), "must not be empty"),
        "reasoning_effort": (lambda v: v in REASONING_EFFORTS, "must be high or none"),
    }
    if name in checks:
        ok, rule = checks[name]
        if not ok(value):
            raise UsageError(f"{name}={value!r} is invalid: it {rule}.")


class MistralConfig(Configurable):
    """Configurable settings; ``None`` means "not set here", so environment and defaults apply."""

    model = Unicode(None, allow_none=True, help=f"Model name (default {DEFAULT_MODEL}; env MISTRAL_MODEL).").tag(
        config=True
    )
    base_url = Unicode(
        None,
        allow_none=True,
        help=f"API base URL, with or without /v1 (default {DEFAULT_BASE_URL}; env MISTRAL_BASE_URL).",
    ).tag(config=True)
    system = Unicode(None, allow_none=True, help="Default system prompt for new chats.").tag(config=True)
    temperature = CFloat(None, allow_none=True, help="Default sampling temperature.").tag(config=True)
    top_p = CFloat(None, allow_none=True, help="Default nucleus sampling probability.").tag(config=True)
    max_tokens = CInt(None, allow_none=True, help="Default cap on reply tokens.").tag(config=True)
    random_seed = CInt(None, allow_none=True, help="Default random seed.").tag(config=True)
    safe_prompt = Bool(None, allow_none=True, help="Ask Mistral to prepend its safety prompt.").tag(config=True)
    reasoning_effort = Enum(
        list(REASONING_EFFORTS),
        None,
        allow_none=True,
        help="Reasoning models (magistral): high thinks before answering, none answers at once (sent only when set).",
    ).tag(config=True)
    stream = Bool(None, allow_none=True, help="Stream replies (default True).").tag(config=True)
    connect_timeout = CFloat(None, allow_none=True, help="Seconds to wait for a connection (default 10).").tag(
        config=True
    )
    read_timeout = CFloat(
        None, allow_none=True, help="Seconds to wait for the next piece of a reply (default 60)."
    ).tag(config=True)
    max_retries = CInt(
        None, allow_none=True, help="Retries on connection errors, timeouts, 408, 409, 429, 5xx (default 2)."
    ).tag(config=True)
    retry_base_delay = CFloat(None, allow_none=True, help="First backoff delay in seconds (default 0.5).").tag(
        config=True
    )
    retry_max_wait = CFloat(
        None, allow_none=True, help="Longest wait before a retry, even if the server asks for more (default 20)."
    ).tag(config=True)
    max_history_turns = CInt(
        None, allow_none=True, help="Send at most this many past turns (0: all; the system prompt is always sent)."
    ).tag(config=True)
    display = Enum(
        ["auto", "widget", "text"], None, allow_none=True, help="Live view: auto, widget or text (default auto)."
    ).tag(config=True)
    cache = Bool(None, allow_none=True, help="Cache the answers of --each runs on disk (default True).").tag(
        config=True
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._api_key: Secret | None = None
        self._set_by_magic: set[str] = set()
        self._set_by_code: dict[str, tuple[str, Any, Any]] = {}  # name -> (source, value set, value before)

    def settings(self) -> Settings:
        """The effective settings: traits that are set, else environment variables, else defaults."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in SETTING_NAMES:
            value = getattr(self, name)
            if value is not None:
                values[name] = value
                sources[name] = "%mistral config" if name in self._set_by_magic else "%config"
                by_code = self._set_by_code.get(name)
                if by_code is not None and by_code[1] == value:
                    sources[name] = by_code[0]
            elif name in ENV_VARS and os.environ.get(ENV_VARS[name]):
                values[name] = os.environ[ENV_VARS[name]].strip()
                sources[name] = f"env {ENV_VARS[name]}"
            else:
                sources[name] = "default"
        return replace(DEFAULTS, **values, sources=sources)

    def set_from_text(self, name: str, text: str) -> None:
        """``%mistral config name=value``: parse ``text`` as the trait's type; empty text unsets it."""
        if name not in SETTING_NAMES:
            raise UsageError(f"Unknown setting {name!r}; settings are: {', '.join(SETTING_NAMES)}.")
        if text == "":
            setattr(self, name, None)
            self._set_by_magic.discard(name)
            self._set_by_code.pop(name, None)
            return
        trait = self.traits()[name]
        try:
            value = trait.from_string(text)
            if isinstance(trait, Bool) and text.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(text)
            if isinstance(trait, Bool):
                value = text.lower() in ("true", "1", "yes", "on")
            validate(name, value)
            setattr(self, name, value)
        except UsageError:
            raise
        except Exception:
            raise UsageError(f"{name}={text!r} is not a valid value ({_type_name(trait)} expected).") from None
        self._set_by_magic.add(name)
        self._set_by_code.pop(name, None)

    def set_by(self, source: str, **values: Any) -> None:
        """Set settings from code (``%mistral local``); ``%mistral config`` shows ``source`` for
        them, and :meth:`unset_by` puts back what they replaced."""
        for name, value in values.items():
            validate(name, value)
        for name, value in values.items():
            before = self._set_by_code[name][2] if name in self._set_by_code else getattr(self, name)
            setattr(self, name, value)
            self._set_by_code[name] = (source, value, before)

    def unset_by(self, source: str) -> None:
        """Put back the values that :meth:`set_by` with ``source`` replaced, unless changed since."""
        for name, (label, value, before) in list(self._set_by_code.items()):
            if label == source:
                del self._set_by_code[name]
                if getattr(self, name) == value:
                    setattr(self, name, before)

    # The key lives here and only here.
    def set_api_key(self, key: str) -> None:
        self._api_key = Secret(key.strip()) if key.strip() else None

    def api_key(self) -> Secret | None:
        """The key from ``%mistral key``, else from ``MISTRAL_API_KEY``; ``None`` when neither is set."""
        if self._api_key:
            return self._api_key
        value = os.environ.get(KEY_ENV, "").strip()
        return Secret(value) if value else None

    def api_key_source(self) -> str:
        if self._api_key:
            return "%mistral key"
        return f"env {KEY_ENV}" if os.environ.get(KEY_ENV, "").strip() else "not set"

    def require_api_key(self) -> Secret:
        key = self.api_key()
        if key is None:
            raise MissingKeyError(
                f"No API key: set the {KEY_ENV} environment variable before starting Jupyter, "
                "or run %mistral key to type it in privately (it is never stored in the notebook)."
                + (
                    " To try the magic offline with a small local model instead, run %mistral local."
                    if self.settings().base_url == DEFAULT_BASE_URL
                    else ""
                )
            )
        return key


def _type_name(trait: Any) -> str:
    if isinstance(trait, Enum):
        return " | ".join(map(str, trait.values))
    return {CFloat: "a number", CInt: "a whole number", Bool: "true or false"}.get(type(trait), "text")
