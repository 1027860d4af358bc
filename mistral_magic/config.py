"""The configurable side of the settings: traits derived from :mod:`.settings`, and the key.

``%config MistralMagics.<name> = value``, ``ipython_config.py`` and ``%mistral config name=value``
set the same traits, so one check refuses a bad value whichever way it comes: at set time,
with a one-line :class:`InvalidSettingError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from traitlets import Bool, CFloat, CInt, Enum, TraitError, TraitType, Unicode, validate
from traitlets.config import Configurable

from . import settings as table
from .errors import InvalidSettingError, MissingKeyError, UsageError, hint
from .secret import Secret, key_problem
from .settings import CONFIGURABLE, DEFAULT_BASE_URL, DEFAULTS, KEY_ENV, SETTING_NAMES, Setting, Settings

_TRAIT_TYPES: dict[type, type[TraitType[Any, Any]]] = {str: Unicode, float: CFloat, int: CInt, bool: Bool}
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _trait(item: Setting) -> TraitType[Any, Any]:
    """A trait for ``item``; ``None`` (its default) means "not set here", so environment and defaults apply."""
    help = table.trait_help(item)
    if item.spec.choices:
        return Enum(list(item.spec.choices), None, allow_none=True, help=help).tag(config=True)
    return _TRAIT_TYPES[item.kind](None, allow_none=True, help=help).tag(config=True)


def _check_proposal(self: Configurable, proposal: Any) -> Any:
    table.check(proposal["trait"].name, proposal["value"])
    return proposal["value"]


def _traits() -> dict[str, Any]:
    traits: dict[str, Any] = {item.name: _trait(item) for item in CONFIGURABLE}
    traits["_check_proposal"] = validate(*SETTING_NAMES)(_check_proposal)
    traits["__doc__"] = "The traits of every setting, derived from mistral_magic.settings."
    return traits


if TYPE_CHECKING:
    SettingTraits = Configurable
else:
    SettingTraits = type(Configurable)("SettingTraits", (Configurable,), _traits())


@dataclass(frozen=True)
class ConfigState:
    """What a reload of the extension carries over: the values set in this kernel, where they came
    from, and the key typed with ``%mistral key``."""

    values: dict[str, Any]
    set_by_magic: frozenset[str]
    set_by_code: dict[str, tuple[str, Any, Any]]
    api_key: Secret | None


class MistralConfig(SettingTraits):
    """The settings set in this kernel, where they came from, and the API key."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._api_key: Secret | None = None
        self._set_by_magic: set[str] = set()
        self._set_by_code: dict[str, tuple[str, Any, Any]] = {}  # name -> (source, value set, value before)

    def settings(self) -> Settings:
        """The effective settings: traits that are set, else environment variables, else defaults."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for item in CONFIGURABLE:
            name = item.name
            value = getattr(self, name)
            from_env = table.from_environment(item)
            if value is not None:
                values[name] = value
                sources[name] = "%mistral config" if name in self._set_by_magic else "%config"
                by_code = self._set_by_code.get(name)
                if by_code is not None and by_code[1] == value:
                    sources[name] = by_code[0]
            elif from_env is not None:
                try:
                    table.check(name, from_env)  # the same rule as a value set here
                except InvalidSettingError as error:
                    raise InvalidSettingError(f"{item.spec.env}: {error}") from None
                values[name] = from_env
                sources[name] = f"env {item.spec.env}"
            else:
                sources[name] = "default"
        return table.with_values(DEFAULTS, values, sources)

    def state(self) -> ConfigState:
        """The settings set here and the typed key, for :meth:`restore` in the next instance."""
        values = {item.name: getattr(self, item.name) for item in CONFIGURABLE if getattr(self, item.name) is not None}
        return ConfigState(values, frozenset(self._set_by_magic), dict(self._set_by_code), self._api_key)

    def restore(self, state: ConfigState) -> None:
        """Take over the settings and key of an earlier instance (see :meth:`state`)."""
        for name, value in state.values.items():
            setattr(self, name, value)
        self._set_by_magic = set(state.set_by_magic)
        self._set_by_code = dict(state.set_by_code)
        self._api_key = state.api_key

    def set_from_text(self, name: str, text: str) -> None:
        """``%mistral config name=value``: parse ``text`` as the setting's type; empty text unsets it."""
        if name not in SETTING_NAMES:
            raise UsageError(f"Unknown setting {name!r}; settings are: {', '.join(SETTING_NAMES)}.")
        if text == "":
            setattr(self, name, None)
            self._set_by_magic.discard(name)
            self._set_by_code.pop(name, None)
            return
        item = table.BY_NAME[name]
        try:
            if item.kind is bool:
                if text.lower() not in _TRUE + _FALSE:
                    raise ValueError(text)
                value: Any = text.lower() in _TRUE
            else:
                value = self.traits()[name].from_string(text)
            setattr(self, name, value)  # the trait's check refuses a value out of range
        except InvalidSettingError:
            raise
        except (ValueError, TraitError):
            raise UsageError(f"{name}={text!r} is not a valid value ({table.type_name(item)} expected).") from None
        self._set_by_magic.add(name)
        self._set_by_code.pop(name, None)

    def set_by(self, source: str, **values: Any) -> None:
        """Set settings from code (``%mistral local``); ``%mistral config`` shows ``source`` for
        them, and :meth:`unset_by` puts back what they replaced."""
        for name, value in values.items():
            table.check(name, value)
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
        """Set (or, with an empty ``key``, forget) the key; a key with whitespace inside or a
        non-ASCII character is refused, and the one set before is kept."""
        key = key.strip()
        problem = key_problem(key)
        if problem is not None:
            raise UsageError(f"That key was not set: {problem}. Copy it again.")
        self._api_key = Secret(key) if key else None

    def api_key(self) -> Secret | None:
        """The key from ``%mistral key``, else from ``MISTRAL_API_KEY``; ``None`` when neither is set."""
        if self._api_key:
            return self._api_key
        value = os.environ.get(KEY_ENV, "").strip()
        problem = key_problem(value)
        if problem is not None:
            raise UsageError(f"{KEY_ENV} cannot be used: {problem}. Set it again.")
        return Secret(value) if value else None

    def known_keys(self) -> tuple[Secret, ...]:
        """Every key this kernel knows of: the typed one and ``MISTRAL_API_KEY``'s (even one that
        cannot be used), which no text taken from the kernel may carry into a prompt."""
        typed = (self._api_key,) if self._api_key else ()
        from_env = os.environ.get(KEY_ENV, "").strip()
        return (*typed, Secret(from_env)) if from_env else typed

    def key_mask(self) -> Callable[[str], str]:
        """A function that masks every one of :meth:`known_keys` in a text."""
        keys = self.known_keys()

        def mask(text: str) -> str:
            for key in keys:
                text = key.redact(text)
            return text

        return mask

    def api_key_source(self) -> str:
        if self._api_key:
            return "%mistral key"
        return f"env {KEY_ENV}" if os.environ.get(KEY_ENV, "").strip() else "not set"

    def require_api_key(self) -> Secret:
        key = self.api_key()
        if key is None:
            offline = f" {hint('local')}" if self.settings().base_url == DEFAULT_BASE_URL else ""
            raise MissingKeyError(f"No API key: {hint('key')}.{offline}")
        return key
