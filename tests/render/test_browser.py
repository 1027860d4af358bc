"""End to end in a real browser: JupyterLab, headless Chromium and the fake chat server.

One JupyterLab (a subprocess, its kernel pointed at the in-process fake server through
``MISTRAL_BASE_URL``) opens a notebook of three cells in headless Chromium, driven by Playwright:
``%load_ext mistral_magic``, a ``%%mistral`` cell whose reply streams slowly (a markdown table and a
fenced code block) and a ``%%mistral`` cell whose reply is hostile (script, event handlers,
``javascript:`` links, iframes...). The ``notebook_run`` fixture runs the cells by the keyboard,
watching the page as a user would, then saves; the tests check what it saw:

* the live view grows while the cell is busy, and ends as a static display (real ``<table>``,
  ``<pre><code>``), never "Loading widget";
* the hostile reply runs nothing: no dialog, ``window.__pwned`` unset, no dangerous element or
  attribute ever appears in an output (a MutationObserver watches while it streams), links are
  http(s)/mailto only and clicking them neither runs script nor navigates away;
* the saved ``.ipynb`` holds each answer as static outputs (``text/html`` + ``text/markdown``),
  no widget view.

Needs ``/usr/bin/chromium`` and the ``playwright`` package (never ``playwright install``); skipped
when either is missing, unless ``MISTRAL_MAGIC_REQUIRE_BROWSER=1`` (then it fails). Screenshots go
to ``tests/render/screenshots/`` (ignored by git).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.fakeapi import FakeChatServer, Reply
from tests.support.hostile import ALLOWED_SCHEMES, FORBIDDEN_TAGS, HOSTILE_REPLIES, problems

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_ENV = "MISTRAL_MAGIC_REQUIRE_BROWSER"
DUMMY_KEY = "sk-browser-test-dummy"
SCREENSHOTS = Path(__file__).parent / "screenshots"
NOTEBOOK = "browser-test.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# --- the scripted replies -------------------------------------------------------------------------

TABLE_MARK = "browser-test-table"
HOSTILE_MARK = "browser-test-hostile"

CODE = 'MOONS = {"Mercury": 0, "Venus": 0, "Earth": 1, "Mars": 2}\nprint(sum(MOONS.values()))\n'
TABLE_ROWS = [["Mercury", "0"], ["Venus", "0"], ["Earth", "1"], ["Mars", "2"]]
TABLE_REPLY = (
    "Here are the inner planets and how many moons each has.\n\n"
    "| planet | moons |\n"
    "|---|---:|\n" + "".join(f"| {name} | {moons} |\n" for name, moons in TABLE_ROWS) + "\nCount them in Python:\n\n"
    "```python\n" + CODE + "```\n\n"
    "That makes three moons in all."
)
TABLE_CHUNKS = 25
TABLE_CHUNK_DELAY = 0.15

# Entries of tests/support/hostile.py, made to leave a trace if they ever run: every alert( also sets
# window.__pwned (alert itself would open a dialog, which is recorded too).
HOSTILE_KEYS = [
    "script tag",
    "script block",
    "img onerror",
    "svg onload",
    "markdown javascript link",
    "markdown javascript link, encoded",
    "html javascript link",
    "data url link",
    "iframe",
    "iframe srcdoc",
    "object and embed",
    "form and input",
    "meta refresh",
    "style url",
    "event handler in markdown table",
    "attribute-breaking image title",
    "image exfiltration",
    "relative link into the server",
    "script in inline math",
    "html in display math",
    "html in bracket math",
    "math links",
    "html in highlighted code",
    "html between prices",
]
HOSTILE_REPLY = "\n\n".join(HOSTILE_REPLIES[key].replace("alert(", "window.__pwned=1;alert(") for key in HOSTILE_KEYS)
HOSTILE_CHUNKS = 6
HOSTILE_THINKING_CHUNKS = 8  # the hostile reply comes from a "reasoning model": its thinking is hostile too


def split_evenly(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` pieces of about the same length (mid-word, mid-tag: as streams do)."""
    return [text[len(text) * i // count : len(text) * (i + 1) // count] for i in range(count)]


# --- what runs in the page ------------------------------------------------------------------------

# Watches every output for anything that could run script, from the first streamed byte on.
WATCH_OUTPUTS_JS = """
(forbidden) => {
  window.__mmViolations = [];
  const bad = new Set(forbidden);
  const check = (el) => {
    if (!(el instanceof Element) || !el.closest('.jp-OutputArea-output')) return;
    for (const node of [el, ...el.querySelectorAll('*')]) {
      const tag = node.tagName.toLowerCase();
      if (bad.has(tag)) window.__mmViolations.push('<' + tag + '>');
      for (const attr of node.attributes) {
        const value = attr.value.trim().toLowerCase();
        if (attr.name.startsWith('on')) window.__mmViolations.push(tag + '[' + attr.name + ']');
        if (attr.name === 'href' && value.startsWith('javascript:'))
          window.__mmViolations.push(tag + '[href=' + value + ']');
      }
    }
  };
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === 'attributes') check(record.target);
      for (const node of record.addedNodes) check(node);
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true });
}
"""

# One poll of a cell: its prompt, and the text of its live view (blocks and growing tail).
CELL_STATE_JS = """
(cell) => {
  const prompt = (cell.querySelector('.jp-InputArea-prompt') || {}).textContent || '';
  const live = cell.querySelector('.jp-OutputArea-output .mistral-live');
  const text = live
    ? [...live.querySelectorAll('.mistral-live-body, .mistral-live-tail')].map((e) => e.textContent).join('\\n')
    : null;
  const status = live ? (live.querySelector('.mistral-live-status') || {}).textContent || '' : null;
  return { prompt: prompt.trim(), text, status };
}
"""

# The live view's thinking section: shown, open, and how much text it holds.
THINKING_STATE_JS = """
(cell) => {
  const details = cell.querySelector('.jp-OutputArea-output .mistral-live .mistral-live-thinking');
  if (!details) return null;
  const thoughts = details.querySelector('.mistral-live-thoughts');
  return { hidden: details.hidden, open: details.open, text: thoughts.textContent, html: thoughts.innerHTML };
}
"""

# What a finished cell's outputs hold.
OUTPUTS_JS = """
(cell) => {
  const outputs = [...cell.querySelectorAll('.jp-OutputArea-output')];
  const area = cell.querySelector('.jp-OutputArea');
  const all = (sel) => outputs.flatMap((o) => [...o.querySelectorAll(sel)]);
  return {
    mimes: outputs.map((o) => o.getAttribute('data-mime-type')),
    text: area ? area.innerText : '',
    html: outputs.map((o) => o.innerHTML).join('\\n'),
    live: all('.mistral-live').length,
    tables: all('table').map((t) => ({
      head: [...t.querySelectorAll('thead th')].map((c) => c.textContent.trim()),
      rows: [...t.querySelectorAll('tbody tr')].map((r) => [...r.children].map((c) => c.textContent.trim())),
    })),
    codes: all('pre > code').map((c) => c.textContent),
    forbidden: all('script, iframe, img, svg, object, embed, form, input, meta, style, link, base, frame')
      .map((e) => e.tagName.toLowerCase()),
    handlers: all('*').flatMap((e) =>
      [...e.attributes].filter((a) => a.name.startsWith('on')).map((a) => e.tagName.toLowerCase() + '[' + a.name + ']')),
    jsLinks: all('[href]').map((e) => e.getAttribute('href')).filter((h) => /^\\s*javascript:/i.test(h)),
    hrefs: all('a[href]').map((a) => a.getAttribute('href')),
  };
}
"""


# --- the fixtures ---------------------------------------------------------------------------------


def _need_browser() -> None:
    """Skip (or fail, when the environment demands the browser test) without Chromium/Playwright."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install playwright; never `playwright install`)")
    try:
        import jupyterlab  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError:
        missing.append("jupyterlab/nbformat (pip install -e '.[lab]')")
    if missing:
        reason = "browser test needs " + " and ".join(missing)
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get_json(url: str, timeout: float = 5.0) -> Any:
    with _NO_PROXY.open(url, timeout=timeout) as response:
        return json.loads(response.read())


@dataclass
class Lab:
    """A running JupyterLab and the fake server its kernels talk to."""

    url: str
    token: str
    root: Path
    server: FakeChatServer
    process: subprocess.Popen
    log: Path
    settings: Path  # JUPYTERLAB_SETTINGS_DIR
    data: Path  # JUPYTER_DATA_DIR (notebook signatures)

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def _stop_process(process: subprocess.Popen) -> None:
    """Terminate JupyterLab (it shuts its kernels down), then kill whatever is left of its group."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    try:  # a kernel left behind by a killed server is in the same (new) session
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    yield from running_lab(
        tmp_path_factory,
        {
            TABLE_MARK: Reply(chunks=split_evenly(TABLE_REPLY, TABLE_CHUNKS), chunk_delay=TABLE_CHUNK_DELAY),
            HOSTILE_MARK: Reply(
                chunks=split_evenly(HOSTILE_REPLY, HOSTILE_CHUNKS),
                thinking=split_evenly(HOSTILE_REPLY, HOSTILE_THINKING_CHUNKS),
                chunk_delay=0.1,
            ),
        },
    )


def running_lab(tmp_path_factory, replies: dict[str, Reply]):
    """A JupyterLab server (Notebook 7's pages too) whose kernels ask a fake server that answers a
    prompt containing a key of ``replies`` with its reply; yields a ``Lab``, stops it after."""
    _need_browser()
    base = tmp_path_factory.mktemp("browser")
    root = base / "root"
    settings = base / "lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    root.mkdir()
    # No news or update checks (this network is closed), and no toast over the notebook.
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MISTRAL_", "JUPYTER", "IPYTHON"))}
    port, token = _free_port(), secrets.token_hex(16)
    log = base / "jupyterlab.log"
    with FakeChatServer() as server, log.open("wb") as log_file:
        for mark, reply in replies.items():
            server.add_rule(mark, reply)
        env.update(
            MISTRAL_BASE_URL=server.url + "/v1",
            MISTRAL_API_KEY=DUMMY_KEY,
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(base / "lab-workspaces"),
            JUPYTER_RUNTIME_DIR=str(base / "runtime"),
            JUPYTER_CONFIG_DIR=str(base / "config"),
            JUPYTER_DATA_DIR=str(base / "data"),
            IPYTHONDIR=str(base / "ipython"),
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter",
                "lab",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
                "--ServerApp.port_retries=0",
                "--LabApp.extension_manager=readonly",
                *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            ],
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        lab = Lab(f"http://127.0.0.1:{port}", token, root, server, process, log, settings, base / "data")
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    pytest.fail(f"JupyterLab exited with {process.returncode}:\n{lab.log_tail()}")
                try:
                    _get_json(f"{lab.url}/api/status?token={token}", timeout=2)
                    break
                except (OSError, ValueError):
                    if time.monotonic() > deadline:
                        pytest.fail(f"JupyterLab did not answer /api/status within 60 s:\n{lab.log_tail()}")
                    time.sleep(0.25)
            yield lab
        finally:
            _stop_process(process)


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext mistral_magic"),
        nbformat.v4.new_code_cell(
            f"%%mistral\nShow the inner planets' moons as a table, with Python code. ({TABLE_MARK})"
        ),
        nbformat.v4.new_code_cell(f"%%mistral\nRepeat this text exactly. ({HOSTILE_MARK})"),
    ]
    nbformat.write(nb, str(path))


@dataclass
class Run:
    """What the notebook run saw, for the tests to check."""

    samples: list[dict] = field(default_factory=list)  # polls of cell 2 while it ran
    thinking_samples: list[dict] = field(default_factory=list)  # polls of cell 3's thinking section
    table_out: dict = field(default_factory=dict)
    hostile_out: dict = field(default_factory=dict)
    hostile_violations: list[str] = field(default_factory=list)
    pwned_after_reply: Any = None
    pwned_after_clicks: Any = None
    requests_before_clicks: list[str] = field(default_factory=list)
    url_before_clicks: str = ""
    url_after_clicks: str = ""
    clicked: list[str] = field(default_factory=list)
    popups: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    saved: dict = field(default_factory=dict)
    chat_requests: list[dict] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def debug(self) -> str:
        return "\n".join(["browser console:", *self.console[-40:], "page errors:", *self.errors[-20:]])


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


def _alnum(text: str | None) -> int:
    """How much reply text is visible; markup characters (table pipes, fences) do not count."""
    return len(re.sub(r"[^0-9A-Za-z]", "", text or ""))


class Notebook:
    """The open notebook page: run cells by the keyboard and wait for them like a user would."""

    def __init__(self, page, lab: Lab, run: Run):
        self.page, self.lab, self.run = page, lab, run
        self.executions = 0

    def cell(self, index: int):
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def state(self, index: int) -> dict:
        return self.cell(index).evaluate(CELL_STATE_JS)

    def start(self, index: int) -> None:
        """Put the cursor in the cell and press Ctrl+Enter (run in place)."""
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Control+Enter")
        self.executions += 1

    def wait_done(self, index: int, timeout: float = 30.0) -> dict:
        expected = f"[{self.executions}]:"
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(index)
            if state["prompt"] == expected:
                return state
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"cell {index} did not finish within {timeout} s (prompt {state['prompt']!r}, "
                    f"expected {expected!r})\n{self.run.debug()}\nJupyterLab log:\n{self.lab.log_tail()}"
                )
            time.sleep(0.1)

    def outputs(self, index: int) -> dict:
        return self.cell(index).evaluate(OUTPUTS_JS)

    def wait_static(self, index: int, timeout: float = 10.0) -> dict:
        """The outputs once the live view is gone and a static display replaced it."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.outputs(index)
            if not out["live"] and "text/html" in out["mimes"]:
                return out
            if time.monotonic() > deadline:
                return out  # the tests say what is wrong with it
            time.sleep(0.1)


@pytest.fixture(scope="module")
def notebook_run(lab):
    """Open the notebook in headless Chromium, run its three cells, save; return what was seen."""
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(exist_ok=True)
    for old in SCREENSHOTS.glob("browser-*.png"):  # no stale picture from an earlier run
        old.unlink()
    notebook = lab.root / NOTEBOOK
    _write_notebook(notebook)
    run = Run()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = local_only_context(browser, run.external_requests)
            page = context.new_page()

            def on_dialog(dialog):
                run.dialogs.append(f"{dialog.type}: {dialog.message}")
                dialog.dismiss()

            page.on("dialog", on_dialog)
            page.on("console", lambda msg: run.console.append(f"[{msg.type}] {msg.text}"))
            page.on("pageerror", lambda error: run.errors.append(str(error)))
            try:
                _drive(page, context, lab, run, notebook)
            except BaseException:
                try:
                    _shot(page, "browser-failure.png")
                except Exception:
                    pass
                raise
        finally:
            browser.close()
    chats = [r for r in lab.server.requests if r.path.endswith("/chat/completions")]
    run.chat_requests = [r.json() for r in chats]
    run.authorizations = [r.headers.get("authorization", "") for r in chats]
    return run


def local_only_context(browser, refused: list[str]):
    """A browser context in which nothing leaves this machine: any request off 127.0.0.1 is refused,
    and its URL recorded in ``refused``."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(30_000)

    def refuse(route):
        refused.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*"), refuse)
    return context


KERNEL_READY_JS = """() => {
    const name = document.querySelector('.jp-Toolbar-kernelName');
    const idle = document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]');
    return Boolean(name && idle && name.textContent.trim() && !/no kernel/i.test(name.textContent));
}"""


def wait_kernel_ready(page, timeout_ms: float) -> None:
    """Wait until the notebook has its kernel and it is idle. The execution indicator alone says
    "idle" while the page still shows "No Kernel", and a cell run then is silently dropped."""
    page.wait_for_function(KERNEL_READY_JS, timeout=timeout_ms)


def _drive(page, context, lab: Lab, run: Run, notebook: Path) -> None:
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}", wait_until="domcontentloaded")
    page.locator(".jp-Notebook .jp-Cell").nth(2).wait_for()
    wait_kernel_ready(page, timeout_ms=45_000)
    page.evaluate(WATCH_OUTPUTS_JS, sorted(FORBIDDEN_TAGS | {"frame"}))
    _shot(page, "browser-1-kernel-idle.png")
    nb = Notebook(page, lab, run)

    # 1. %load_ext
    nb.start(0)
    nb.wait_done(0)

    # 2. The slow reply: poll the live view while the cell is busy.
    nb.start(1)
    deadline = time.monotonic() + 30
    shot_taken = False
    while time.monotonic() < deadline:
        state = nb.state(1)
        state["t"] = time.monotonic()
        run.samples.append(state)
        if state["prompt"] == f"[{nb.executions}]:":
            break
        if not shot_taken and _alnum(state["text"]) > _alnum(TABLE_REPLY) // 2:
            _shot(page, "browser-2-streaming.png")
            shot_taken = True
        time.sleep(0.2)
    nb.wait_done(1)
    run.table_out = nb.wait_static(1)
    nb.cell(1).scroll_into_view_if_needed()
    _shot(page, "browser-3-table-answer.png")

    # 3. The hostile reply, thinking first: poll the thinking section while the cell is busy.
    nb.start(2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and nb.state(2)["prompt"] != f"[{nb.executions}]:":
        thinking = nb.cell(2).evaluate(THINKING_STATE_JS)
        if thinking is not None:
            run.thinking_samples.append(thinking)
        time.sleep(0.05)
    nb.wait_done(2)
    run.hostile_out = nb.wait_static(2)
    page.wait_for_timeout(500)  # give anything that was injected a moment to fire
    run.hostile_violations = page.evaluate("window.__mmViolations")
    run.pwned_after_reply = page.evaluate("typeof window.__pwned === 'undefined' ? null : String(window.__pwned)")
    nb.cell(2).scroll_into_view_if_needed()
    _shot(page, "browser-4-hostile-answer.png")

    # Click every link of the hostile answer with a modifier (a new tab, never this one), the
    # links of its thinking too (the section is opened first, as a reader would).
    run.url_before_clicks = page.url
    run.requests_before_clicks = list(run.external_requests)
    nb.cell(2).locator(".jp-OutputArea-output details > summary").first.click()
    links = nb.cell(2).locator(".jp-OutputArea-output a")
    for i in range(links.count()):
        link = links.nth(i)
        run.clicked.append(link.get_attribute("href") or "")
        link.click(modifiers=["Control"])
    page.wait_for_timeout(500)
    run.url_after_clicks = page.url
    run.pwned_after_clicks = page.evaluate("typeof window.__pwned === 'undefined' ? null : String(window.__pwned)")
    for other in context.pages:
        if other is not page:
            run.popups.append(other.url)
            other.close()

    # Save with Ctrl+S and wait for the file to change on disk.
    before = notebook.stat().st_mtime_ns
    nb.cell(2).locator(".jp-InputPrompt").click()  # command mode, focus in the notebook
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 15
    while True:
        if notebook.stat().st_mtime_ns != before:
            try:
                run.saved = json.loads(notebook.read_text(encoding="utf-8"))
                break
            except ValueError:  # caught mid-write
                pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the notebook was not saved within 15 s\n{run.debug()}")
        time.sleep(0.1)
    _shot(page, "browser-5-saved.png")


# --- the tests ------------------------------------------------------------------------------------


def test_reply_streams_visibly_into_the_live_view(notebook_run):
    busy = [s for s in notebook_run.samples if s["prompt"] == "[*]:"]
    shown = [s for s in busy if s["text"] is not None]
    assert shown, (
        "the live view (.mistral-live) never showed while the cell was busy; polls: "
        f"{notebook_run.samples}\n{notebook_run.debug()}"
    )
    sizes = [_alnum(s["text"]) for s in shown]
    longest = run_ = 0
    for previous, current in itertools.pairwise(sizes):
        run_ = run_ + 1 if current > previous else 0
        longest = max(longest, run_)
    assert longest >= 3, f"the text did not grow over 3 successive polls while busy: {sizes}"
    assert sizes[0] < _alnum(TABLE_REPLY) // 2, f"the first visible text was already most of the reply: {sizes}"
    assert any(s["status"] for s in shown), "the live view showed no status line"


def test_finished_reply_is_a_static_table_and_code_block(notebook_run):
    out = notebook_run.table_out
    assert out["live"] == 0, f"the live view was not replaced: {out['html'][:2000]}"
    assert out["mimes"] == ["text/html"], f"outputs: {out['mimes']}\n{out['text']}"
    assert {"head": ["planet", "moons"], "rows": TABLE_ROWS} in out["tables"], out["html"]
    assert CODE in out["codes"], out["codes"]
    for word in ("Here are the inner planets", "Count them in Python:", "That makes three moons in all."):
        assert word in out["text"]
    assert "Loading widget" not in out["text"]
    assert "Error" not in out["text"], out["text"]
    assert not problems(out["html"]), problems(out["html"])


def test_hostile_reply_runs_no_script(notebook_run):
    run = notebook_run
    out = run.hostile_out
    assert out["mimes"] == ["text/html"], f"outputs: {out['mimes']}\n{out['text']}"
    assert run.dialogs == [], f"dialogs opened: {run.dialogs}"
    assert run.pwned_after_reply is None, f"window.__pwned = {run.pwned_after_reply!r}"
    assert run.hostile_violations == [], f"seen in an output while it streamed: {run.hostile_violations}"
    assert out["forbidden"] == [], out["html"]
    assert out["handlers"] == [], out["html"]
    assert out["jsLinks"] == [], out["html"]
    assert all((href or "").lower().startswith(ALLOWED_SCHEMES) for href in out["hrefs"]), out["hrefs"]
    assert not [url for url in run.requests_before_clicks if "evil.example" in url], run.requests_before_clicks
    # The hostile HTML is shown as text, inert.
    assert "<script>window.__pwned=1;alert(document.cookie)</script>" in out["text"], out["text"]
    # Its hostile thinking too: a collapsed section above the answer.
    assert out["html"].startswith("<details><summary>Thinking…</summary><blockquote>"), out["html"][:300]


def test_thinking_streams_into_an_open_section_that_closes_when_the_answer_begins(notebook_run):
    samples = notebook_run.thinking_samples
    shown = [s for s in samples if not s["hidden"] and s["text"]]
    assert shown, f"the thinking section never showed: {samples}"
    assert shown[0]["open"] and len(shown[0]["text"]) < len(HOSTILE_REPLY), shown[0]
    assert not shown[-1]["open"], "the thinking section stayed open after the answer began"
    assert HOSTILE_REPLY.startswith(max((s["text"] for s in shown), key=len))
    assert all("<" not in s["html"].replace("&lt;", "") for s in shown), "thinking was inserted as HTML"


def test_clicking_hostile_links_runs_nothing_and_stays(notebook_run):
    run = notebook_run
    assert run.clicked, "the hostile answer has no link to click (its markdown links should stay, made safe)"
    assert run.url_after_clicks == run.url_before_clicks
    assert run.pwned_after_clicks is None, f"window.__pwned = {run.pwned_after_clicks!r} after clicking links"
    assert run.dialogs == [], f"dialogs opened: {run.dialogs}"


def test_saved_notebook_holds_static_answers(notebook_run):
    cells = notebook_run.saved["cells"]
    assert len(cells) == 3, [c["source"] for c in cells]
    for index in (1, 2):
        outputs = cells[index]["outputs"]
        for output in outputs:
            assert WIDGET_MIME not in output.get("data", {}), f"cell {index} saved a widget view: {output}"
        bundles = [o["data"] for o in outputs if o.get("output_type") == "display_data"]
        assert len(bundles) == 1, f"cell {index} outputs: {outputs}"
        assert {"text/html", "text/markdown", "text/plain"} <= bundles[0].keys()
        assert not [o for o in outputs if o.get("output_type") in ("error", "stream")], outputs
        assert not problems("".join(bundles[0]["text/html"])), problems("".join(bundles[0]["text/html"]))
    table = cells[1]["outputs"][0]["data"]
    html, markdown = "".join(table["text/html"]), "".join(table["text/markdown"])
    assert "<table>" in html and re.search(r"<pre[^>]*><code", html), html
    assert markdown == TABLE_REPLY
    assert "".join(cells[2]["outputs"][0]["data"]["text/markdown"]) == HOSTILE_REPLY


def test_kernel_asked_the_fake_server(notebook_run):
    prompts = [r["messages"][-1]["content"] for r in notebook_run.chat_requests]
    assert len(prompts) == 2, prompts
    assert TABLE_MARK in prompts[0] and HOSTILE_MARK in prompts[1]
    assert all(r.get("stream") is True for r in notebook_run.chat_requests)
    assert notebook_run.authorizations == [f"Bearer {DUMMY_KEY}"] * 2  # the kernel inherited the env


RERUN_NOTEBOOK = "rerun-test.ipynb"
RERUN_MARK = "browser-test-rerun"


def test_an_edited_cell_run_again_sends_only_what_is_on_screen(lab, notebook_run):
    """Edit a %%mistral cell in JupyterLab and run it again: the next cell's request carries the
    edited turn only (JupyterLab sends each cell's id; the magic replaces that cell's turn)."""
    import nbformat
    from playwright.sync_api import sync_playwright

    nb_file = nbformat.v4.new_notebook()
    nb_file.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb_file.cells = [
        nbformat.v4.new_code_cell("%load_ext mistral_magic"),
        nbformat.v4.new_code_cell(f"%%mistral\nMy name is Ann. ({RERUN_MARK})"),
        nbformat.v4.new_code_cell(f"%%mistral\nWhat is my name? ({RERUN_MARK})"),
    ]
    nbformat.write(nb_file, str(lab.root / RERUN_NOTEBOOK))
    run = Run()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = local_only_context(browser, run.external_requests).new_page()
            url = f"{lab.url}/lab/workspaces/rerun/tree/{RERUN_NOTEBOOK}?reset&token={lab.token}"  # only this notebook
            page.goto(url, wait_until="domcontentloaded")
            page.locator(".jp-Notebook .jp-Cell").nth(2).wait_for()
            wait_kernel_ready(page, timeout_ms=45_000)
            nb = Notebook(page, lab, run)
            for index in (0, 1, 2):
                nb.start(index)
                nb.wait_done(index)
            editor = nb.cell(1).locator(".jp-InputArea-editor")
            editor.click()
            page.keyboard.press("Control+a")
            page.keyboard.insert_text(f"%%mistral\nMy name is Bob. ({RERUN_MARK})")
            nb.start(1)
            nb.wait_done(1)
            nb.start(2)
            nb.wait_done(2)
            _shot(page, "browser-6-rerun.png")
        finally:
            browser.close()
    asked = [r.json()["messages"] for r in lab.server.requests if RERUN_MARK in r.body.decode("utf-8", "replace")]
    assert [m[-1]["content"] for m in asked] == [
        f"My name is Ann. ({RERUN_MARK})",
        f"What is my name? ({RERUN_MARK})",
        f"My name is Bob. ({RERUN_MARK})",
        f"What is my name? ({RERUN_MARK})",
    ]
    assert [m["content"] for m in asked[-1]] == [
        f"My name is Bob. ({RERUN_MARK})",
        f"Echo: My name is Bob. ({RERUN_MARK})",
        f"What is my name? ({RERUN_MARK})",
    ]
