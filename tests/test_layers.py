"""Dependencies point one way: magics -> session / annotation -> api; render stands alone (on the textsafe
leaf); no cycles."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support.import_graph import PACKAGE, _imported, cycles, import_graph, layer, layer_graph

GRAPH = import_graph()
M = PACKAGE + "."

# What each layer may import from the package (besides its own modules). textsafe (text made
# encodable and inert in a terminal, standard library only) is a leaf every boundary uses; so is
# provenance (an answer's record), which the renderers show.
ALLOWED = {
    "textsafe": set(),
    "secret": set(),
    "cells": set(),
    "interpolate": set(),
    "errors": {"textsafe"},
    "provenance": {"textsafe", "usage"},
    "usage": set(),
    "settings": {"errors"},
    "chatfile": {"errors", "textsafe"},
    "config": {"errors", "secret", "settings"},
    "api": {"errors", "secret", "textsafe", "usage"},
    "render": {"provenance", "textsafe", "usage"},
    "annotation": {"api", "errors", "interpolate", "textsafe", "usage"},
    "images": {"annotation", "api", "errors", "interpolate"},
    "local": {"config", "errors", "settings"},
    "replay": {"api", "errors", "provenance", "settings", "usage"},
    "interrater": {"errors", "render"},
    "conversation": {"api", "cells", "chatfile", "errors", "images", "provenance", "usage"},
    "session": {
        "annotation",
        "api",
        "cells",
        "config",
        "conversation",
        "errors",
        "images",
        "local",
        "provenance",
        "render",
        "replay",
        "secret",
        "settings",
        "textsafe",
        "usage",
    },
}
FACES = {"ipython", "script"}  # the IPython face and annotate() for Python code: they may import any room


def test_no_cycle_between_modules_or_layers():
    assert cycles(GRAPH) == []
    assert cycles(layer_graph(GRAPH)) == []


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_layer_imports_only_what_lies_below_it(name):
    imported = layer_graph(GRAPH).get(name, set())
    assert imported <= ALLOWED[name], f"{name} imports {sorted(imported - ALLOWED[name])}"


def test_every_room_of_the_package_has_a_rule():
    """A new module or folder is placed in the layers on purpose, not by accident."""
    assert set(layer_graph(GRAPH)) | {layer(m) for m in GRAPH if m != PACKAGE} <= set(ALLOWED) | FACES


def test_no_room_below_the_faces_imports_a_face():
    for name, imported in layer_graph(GRAPH).items():
        if name not in FACES:
            assert not imported & FACES, f"{name} imports {sorted(imported & FACES)}"


def test_nothing_reads_the_package_root():
    """Private state such as the loaded magics lives in a module, not in the package's __init__."""
    assert [m for m, targets in GRAPH.items() if PACKAGE in targets] == []


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


def test_the_readme_layout_names_every_module():
    """The README's layout list is the map of the package: every module and folder is on it."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("mistral_magic/\n  __init__.py") :]
    block = block[: block.index("```")]
    described = set(re.findall(r"[A-Za-z_][\w.]*", block))
    package = Path(__file__).resolve().parents[1] / PACKAGE
    missing = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if path.name != "__init__.py" or path.parent == package
        if (path.name if path.parent == package else path.stem) not in described
        or (path.parent != package and f"{path.parent.name}/" not in block)
    ]
    assert missing == []


def test_response_formats_are_built_in_the_protocol_module_only():
    package = Path(__file__).resolve().parents[1] / PACKAGE
    builders = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"""["']type["']\s*:\s*["']json_(object|schema)["']""", path.read_text(encoding="utf-8"))
    ]
    assert builders == ["api/protocol.py"]


def _message_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """The text of every message a module raises or prints (string parts of raise/print arguments)."""
    found = []
    for node in ast.walk(tree):
        call = node.exc if isinstance(node, ast.Raise) else node if isinstance(node, ast.Call) else None
        if isinstance(call, ast.Call) and (
            isinstance(node, ast.Raise) or (isinstance(call.func, ast.Name) and call.func.id == "print")
        ):
            for arg in [*call.args, *(k.value for k in call.keywords)]:
                found += [
                    (n.lineno, n.value)
                    for n in ast.walk(arg)
                    if isinstance(n, ast.Constant) and isinstance(n.value, str)
                ]
    return found


def test_no_message_below_the_ipython_face_spells_a_magic_command():
    """A Python caller of annotate() is told about keyword arguments, a notebook user about flags and
    subcommands: below the face, a message names an option through errors.option() or errors.hint()."""
    package = Path(__file__).resolve().parents[1] / PACKAGE
    spelled = [
        f"{path.relative_to(package)}:{line}: {text!r}"
        for path in sorted(package.rglob("*.py"))
        if "ipython" not in path.relative_to(package).parts
        for line, text in _message_strings(ast.parse(path.read_text(encoding="utf-8")))
        if re.search(r"%%?mistral|(^|[\s(])--[a-z][a-z-]+", text)
    ]
    assert spelled == []
