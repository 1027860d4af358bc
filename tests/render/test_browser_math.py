"""Math and highlighted code in a real browser: JupyterLab and Notebook 7, live, at the end, and
after the saved notebook is reloaded untrusted.

One server (``jupyter lab`` also serves Notebook 7's pages) and the fake chat server, which streams
a reply with the four math delimiters, a dollar amount and a Python block. In each frontend the
notebook is run by the keyboard: while the cell is busy the live view must show the finished code
block highlighted and the math as its source; at the end the static display must hold MathJax's
``mjx-container`` elements (none for the prices) and coloured code on a background. The saved
notebook is then changed on disk (so its signature no longer matches: untrusted, and JupyterLab
sanitizes its HTML outputs) and reopened in the dark theme, where math and colours must survive.
Screenshots of the answer in both themes go to ``notebooks/screenshots/`` (shown in the README).

Needs what ``tests/render/test_browser.py`` needs; skipped (or failed) the same way.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakeapi import Reply
from tests.render.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Lab,
    Notebook,
    Run,
    running_lab,
    split_evenly,
    wait_kernel_ready,
)

MATH_MARK = "browser-test-math"
MATH_REPLY = (
    "A circle of radius $r$ has area $A = \\pi r_1^2$, and the mean of the $x_i$ is "
    "\\(\\bar{x} = \\frac{1}{n}\\sum_i x_i\\).\n\n"
    "$$\\int_0^1 x^2 \\, dx = \\frac{1}{3}$$\n\n"
    "\\[\n\\sigma^2 = \\frac{1}{n} \\sum_{i=1}^{n} (x_i - \\bar{x})^2 * w_*\n\\]\n\n"
    "In Python:\n\n"
    "```python\n"
    "def variance(xs):\n"
    '    """Population variance."""\n'
    "    mean = sum(xs) / len(xs)\n"
    "    return sum((x - mean) ** 2 for x in xs) / len(xs)  # by n\n"
    "```\n\n"
    "A coffee costs $3 and a cake $4: no formula there.\n\n"
    "That is all."
)
INLINE_MATH = 4  # $r$, $A = ...$, $x_i$, \(...\)
DISPLAY_MATH = 2  # $$...$$, \[...\]
MATH_SOURCE = "$A = \\pi r_1^2$"
CHUNKS, CHUNK_DELAY = 30, 0.15
SCREENSHOTS = Path(__file__).resolve().parents[2] / "notebooks" / "screenshots"
NOTEBOOK, UNTRUSTED = "math-code.ipynb", "math-code-reloaded.ipynb"
DARK_THEME = "JupyterLab Dark"
FAILURE_SHOT = Path(__file__).parent / "screenshots" / "browser-math-failure.png"  # ignored by git

# The live view of a cell while it streams.
LIVE_JS = """
(cell) => {
  const live = cell.querySelector('.jp-OutputArea-output .mistral-live');
  const prompt = ((cell.querySelector('.jp-InputArea-prompt') || {}).textContent || '').trim();
  if (!live) return { prompt, live: false };
  return {
    prompt,
    live: true,
    coloured: live.querySelectorAll('.mistral-live-body pre span[style*="color"]').length,
    mjx: live.querySelectorAll('mjx-container').length,
    text: live.textContent,
  };
}
"""

# What a finished answer looks like: typeset math, coloured code on a background.
RENDERED_JS = """
(cell) => {
  const outputs = [...cell.querySelectorAll('.jp-OutputArea-output')];
  const all = (sel) => outputs.flatMap((o) => [...o.querySelectorAll(sel)]);
  const pre = all('pre')[0];
  const base = pre ? getComputedStyle(pre).color : '';
  const prices = all('p').find((p) => p.textContent.includes('A coffee costs'));
  return {
    mimes: outputs.map((o) => o.getAttribute('data-mime-type')),
    live: all('.mistral-live').length,
    mjx: all('mjx-container').length,
    mjxDisplay: all('mjx-container[display="true"]').length,
    mathSource: all('.math').map((m) => m.textContent),
    coloured: pre ? [...pre.querySelectorAll('span')].filter((s) => getComputedStyle(s).color !== base).length : 0,
    code: pre ? pre.textContent : null,
    background: pre ? getComputedStyle(pre).backgroundColor : null,
    prices: prices ? { text: prices.textContent, mjx: prices.querySelectorAll('mjx-container').length } : null,
    pageBackground: getComputedStyle(document.body).backgroundColor,
  };
}
"""


@dataclass
class Frontend:
    """What one frontend showed: live polls, the finished answer, the untrusted reload."""

    live: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)
    reloaded: dict = field(default_factory=dict)
    saved: dict = field(default_factory=dict)
    untrusted_signature_valid: bool | None = None
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def math_lab(tmp_path_factory):
    yield from running_lab(
        tmp_path_factory, {MATH_MARK: Reply(chunks=split_evenly(MATH_REPLY, CHUNKS), chunk_delay=CHUNK_DELAY)}
    )


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext mistral_magic"),
        nbformat.v4.new_code_cell(f"%%mistral\nThe variance, with formulas and Python code. ({MATH_MARK})"),
    ]
    nbformat.write(nb, str(path))


def _url(lab: Lab, frontend: str, name: str) -> str:
    # ?reset: JupyterLab would otherwise restore the notebook opened before, in a hidden tab.
    path = f"lab/tree/{name}?reset&" if frontend == "lab" else f"notebooks/{name}?"
    return f"{lab.url}/{path}token={lab.token}"


def _open(context, lab: Lab, frontend: str, name: str, errors: list[str]):
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(_url(lab, frontend, name), wait_until="domcontentloaded")
    _visible_cell(page, 1).wait_for()
    return page


def _visible_cell(page, index: int):
    """A cell of the notebook on show (JupyterLab may restore an earlier notebook in a hidden tab)."""
    return page.locator(".jp-Notebook .jp-Cell:visible").nth(index)


def _screenshot(page, index: int, name: str) -> None:
    """A picture of one cell (its box on the page: an element screenshot waits for stability,
    which an animated notebook may never reach)."""
    cell = _visible_cell(page, index)
    cell.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = cell.bounding_box()
    assert box, f"cell {index} has no box on the page"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), clip=box)


def _start(nb: Notebook, index: int) -> None:
    """Run a cell; press again if the first keypress went nowhere (a kernel still connecting)."""
    nb.start(index)
    for _ in range(3):
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            if nb.state(index)["prompt"] != "[ ]:":
                return
            time.sleep(0.2)
        nb.cell(index).locator(".jp-InputArea-editor").click()
        nb.page.keyboard.press("Control+Enter")


def _wait_done(nb: Notebook, index: int, timeout: float = 60.0) -> None:
    """Wait for the cell's prompt to show an execution count (whichever: a keypress may have been
    repeated by ``_start``)."""
    deadline = time.monotonic() + timeout
    while not re.fullmatch(r"\[\d+\]:", nb.state(index)["prompt"]):
        if time.monotonic() > deadline:
            raise AssertionError(f"cell {index} did not finish within {timeout} s: {nb.state(index)}")
        time.sleep(0.1)


def _wait_rendered(page, index: int, timeout: float = 20.0) -> dict:
    """The answer once MathJax has typeset it (or the timeout passed: the tests say what is wrong)."""
    cell = _visible_cell(page, index)
    cell.scroll_into_view_if_needed()
    deadline = time.monotonic() + timeout
    while True:
        state = cell.evaluate(RENDERED_JS)
        if state["mjx"] >= INLINE_MATH + DISPLAY_MATH or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def _run_and_save(page, lab: Lab, frontend: str, notebook: Path, seen: Frontend) -> None:
    nb = Notebook(page, lab, Run())
    wait_kernel_ready(page, timeout_ms=60_000)
    _start(nb, 0)
    _wait_done(nb, 0)
    _start(nb, 1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = nb.cell(1).evaluate(LIVE_JS)
        seen.live.append(state)
        if re.fullmatch(r"\[\d+\]:", state["prompt"]):
            break
        time.sleep(0.15)
    _wait_done(nb, 1)
    nb.wait_static(1)
    seen.final = _wait_rendered(page, 1)
    if frontend == "lab":
        _screenshot(page, 1, "reply-math-code.png")
    _visible_cell(page, 1).locator(".jp-InputPrompt").click()
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 15
    while not (seen.saved and seen.saved["cells"][1]["outputs"]):  # the save with the answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{frontend}: the answer was not saved within 15 s: {seen.saved}")
        try:
            seen.saved = json.loads(notebook.read_text(encoding="utf-8"))
        except ValueError:  # caught mid-write
            pass
        time.sleep(0.1)


def _untrusted_copy(lab: Lab, source: Path, name: str) -> bool:
    """Copy the saved notebook with a changed metadata field: its signature no longer matches, so
    it opens untrusted. Returns whether the notary still trusts it (it must not)."""
    import nbformat
    from nbformat.sign import NotebookNotary

    nb = nbformat.read(str(source), as_version=4)
    nb.metadata["reloaded"] = True
    nbformat.write(nb, str(lab.root / name))
    return NotebookNotary(data_dir=str(lab.data)).check_signature(nbformat.read(str(lab.root / name), as_version=4))


@pytest.fixture(scope="module")
def frontends(math_lab) -> dict[str, Frontend]:
    from playwright.sync_api import sync_playwright

    lab = math_lab
    results: dict[str, Frontend] = {}
    FAILURE_SHOT.unlink(missing_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 1100})
        context.set_default_timeout(45_000)
        context.route(re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*"), lambda route: route.abort())
        try:
            for frontend in ("lab", "notebook"):
                name = f"{frontend}-{NOTEBOOK}"
                _write_notebook(lab.root / name)
                results[frontend] = Frontend()
                page = _open(context, lab, frontend, name, results[frontend].errors)
                _run_and_save(page, lab, frontend, lab.root / name, results[frontend])
                page.close()
            # The dark theme for every page opened from now on (the settings are read on load).
            themes = lab.settings / "@jupyterlab" / "apputils-extension" / "themes.jupyterlab-settings"
            themes.write_text(json.dumps({"theme": DARK_THEME}))
            for frontend in ("lab", "notebook"):
                name = f"{frontend}-{UNTRUSTED}"
                trusted = _untrusted_copy(lab, lab.root / f"{frontend}-{NOTEBOOK}", name)
                results[frontend].untrusted_signature_valid = trusted
                page = _open(context, lab, frontend, name, results[frontend].errors)
                results[frontend].reloaded = _wait_rendered(page, 1)
                if frontend == "lab":
                    _screenshot(page, 1, "reply-math-code-dark.png")
                page.close()
        except BaseException:
            for open_page in context.pages:
                FAILURE_SHOT.parent.mkdir(exist_ok=True)
                open_page.screenshot(path=str(FAILURE_SHOT))
            raise
        finally:
            browser.close()
    return results


FRONTENDS = ["lab", "notebook"]


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_live_view_shows_highlighted_code_and_math_source_while_streaming(frontends, frontend):
    busy = [s for s in frontends[frontend].live if s["prompt"] == "[*]:" and s["live"]]
    assert busy, f"{frontend}: the live view never showed while the cell was busy: {frontends[frontend].live}"
    highlighted = [s for s in busy if s["coloured"] > 0]
    assert highlighted, f"{frontend}: no highlighted code in the live view while busy: {busy}"
    with_math = [s for s in busy if MATH_SOURCE in s["text"]]
    assert with_math and all(s["mjx"] == 0 for s in with_math), busy  # the source, as promised


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_final_display_typesets_math_and_highlights_code(frontends, frontend):
    final = frontends[frontend].final
    assert final["live"] == 0 and final["mimes"] == ["text/html"], final
    assert final["mjx"] == INLINE_MATH + DISPLAY_MATH, final
    assert final["mjxDisplay"] == DISPLAY_MATH, final
    assert final["prices"] == {"text": "A coffee costs $3 and a cake $4: no formula there.", "mjx": 0}
    assert final["coloured"] >= 5 and "    mean = sum(xs) / len(xs)\n" in final["code"], final
    assert final["background"] not in ("rgba(0, 0, 0, 0)", "transparent"), final


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_untrusted_reload_keeps_math_and_colours(frontends, frontend):
    seen = frontends[frontend]
    assert seen.untrusted_signature_valid is False
    reloaded = seen.reloaded
    assert reloaded["mjx"] == INLINE_MATH + DISPLAY_MATH, reloaded
    assert reloaded["prices"]["mjx"] == 0, reloaded
    assert reloaded["coloured"] >= 5, reloaded  # inline colours survive JupyterLab's sanitizer
    assert reloaded["background"] not in ("rgba(0, 0, 0, 0)", "transparent"), reloaded
    assert reloaded["pageBackground"] != seen.final["pageBackground"], "the reload was meant to be in the dark theme"


@pytest.mark.parametrize("frontend", FRONTENDS)
def test_saved_answer_keeps_math_verbatim(frontends, frontend):
    (output,) = frontends[frontend].saved["cells"][1]["outputs"]
    html = "".join(output["data"]["text/html"])
    assert "\\(\\bar{x} = \\frac{1}{n}\\sum_i x_i\\)" in html and "$A = \\pi r_1^2$" in html
    assert "".join(output["data"]["text/markdown"]) == MATH_REPLY
