"""One kernel's state and its verbs (ask, ask_with_schema, ask_each), without IPython."""

from .each import Session
from .kernel import TurnOptions

__all__ = ["Session", "TurnOptions"]
