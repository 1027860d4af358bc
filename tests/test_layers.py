"""Dependencies point one way: magics -> session / annotation -> api; render stands alone (on the textsafe
leaf); no cycles."""

from __future__ import annotations

import ast

import pytest

from tests.import_graph import PACKAGE, _imported, cycles, import_graph, layer, layer_graph

GRAPH = import_graph()
M = PACKAGE + "."

# What each layer may import from the package (besides its own modules). textsafe (text made
# encodable and inert in a terminal, standard library only) is a leaf every boundary uses; so is
# provenance (an answer's record), which the renderers show.
ALLOWED = {
    "api": {"errors", "secret", "textsafe"},
    "annotation": {"api", "errors", "interpolate", "textsafe"},
    "render": {"provenance", "textsafe"},
    "provenance": {"textsafe"},
    "cells": set(),
    "replay": {"api", "errors", "provenance", "settings"},
    "errors": {"textsafe"},
    "secret": set(),
    "textsafe": set(),
    "settings": {"errors"},
    "config": {"errors", "secret", "settings"},
    "local": {"errors"},
    "explain": {"errors", "interpolate", "secret"},
    "vision": {"api", "errors"},
    "images": {"annotation", "api", "errors", "interpolate"},
    "localmode": {"config", "errors", "local", "settings"},
    "session": {
        "annotation",
        "api",
        "cells",
        "config",
        "conversation",
        "errors",
        "localmode",
        "provenance",
        "render",
        "replay",
        "secret",
        "settings",
        "textsafe",
        "vision",
    },
}


def test_no_cycle_between_modules_or_layers():
    assert cycles(GRAPH) == []
    assert cycles(layer_graph(GRAPH)) == []


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_layer_imports_only_what_lies_below_it(name):
    imported = layer_graph(GRAPH)[name]
    assert imported <= ALLOWED[name], f"{name} imports {sorted(imported - ALLOWED[name])}"


def test_nothing_reads_the_package_root():
    """Private state such as the loaded magics lives in a module, not in the package's __init__."""
    assert [m for m, targets in GRAPH.items() if PACKAGE in targets] == []


def test_ipython_glue_is_only_imported_from_the_top():
    glue = {M + "magics", M + "commands", M + "extension", M + "script", M + "cellflags"}
    users = {m for m, targets in GRAPH.items() if targets & glue}
    assert {layer(m) for m in users} <= {"magics", "extension", "script", "commands", "(package)"}


def test_the_graph_sees_relative_late_and_type_checking_imports():
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..session import Session\n"
        "def f():\n    from .. import _loaded\n    from . import client\n"
    )
    known = {PACKAGE, M + "session", M + "api", M + "api.client"}
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= _imported(node, M + "api.protocol", False, known)
    assert found == {PACKAGE, M + "session", M + "api", M + "api.client"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
