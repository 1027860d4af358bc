"""``%mistral local`` against the real thing: llama.cpp's server with the bundled SmolLM2-135M model.

Not the fake server: these tests start llama-cpp-python's server through the magic, stream real
replies from it, and check that no server process outlives ``%mistral local stop``, the kernel's
shutdown or a killed kernel. Without the ``local`` extra they are skipped, unless
``MISTRAL_MAGIC_REQUIRE_LOCAL=1`` (then they fail).

A busy machine (two shared cores, a CI runner) can make the model slow by many times: every wait
here is for an event (an answer, a message, a process gone) with a generous bound, never a sleep,
and nothing asserts how long something took.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import time

import httpx
import pytest
from IPython.core.interactiveshell import InteractiveShell

from mistral_magic import MissingKeyError, UsageError
from mistral_magic.errors import LocalServerError
from mistral_magic.ipython.extension import forget
from mistral_magic.local import server as local
from tests.support import Shell, messages_until_idle, run_and_collect, shown

ASK = "%%mistral --max-tokens 24 -t 0\n"
PATIENCE = 600.0  # seconds: the bound of every wait for the model, a kernel or a process on a busy machine
SLOW_MODEL = httpx.Timeout(PATIENCE, connect=60.0)
Q1 = "What is the capital of France? Answer in one word."
Q2 = "And the capital of Italy?"


def _local_missing() -> str | None:
    try:
        local.check_installed()
        local.bundled_model()
    except LocalServerError as error:
        return str(error)
    return None


@pytest.fixture(scope="module")
def needs_llama():
    missing = _local_missing()
    if missing is not None:
        if os.environ.get("MISTRAL_MAGIC_REQUIRE_LOCAL") == "1":
            pytest.fail(f"MISTRAL_MAGIC_REQUIRE_LOCAL=1 but local mode cannot run: {missing}")
        pytest.skip(f"local mode is not installed (pip install -e '.[local]'): {missing}")


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return os.path.exists(f"/proc/{pid}") if os.path.isdir("/proc") else True


def wait_gone(pid: int, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def local_env():
    """No key and no base URL from the environment: local mode must not need them."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("MISTRAL_API_KEY", "MISTRAL_BASE_URL", "MISTRAL_MODEL"):
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield mp


@pytest.fixture(scope="module")
def module_shell(local_env):
    """A real IPython shell with the extension loaded; one local server for the whole module."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("unload_ext", "mistral_magic")
    forget(ip)
    ip.config.pop("MistralMagics", None)
    ip.run_line_magic("load_ext", "mistral_magic")
    shell = Shell(ip)
    shell.magics.read_timeout = PATIENCE  # a starved model may pause long between two tokens
    shell.magics.connect_timeout = 60.0
    servers: list[int] = []
    yield shell, servers
    session = shell.magics.session
    if session.local.server is not None:
        servers.append(session.local.server.pid)
    ip.run_line_magic("unload_ext", "mistral_magic")
    assert all(wait_gone(pid) for pid in servers), "unloading the extension left a server running"


@pytest.fixture
def shell(needs_llama, module_shell):
    """The module's shell with its local server running and empty chats."""
    shell, servers = module_shell
    run = shell.ok("%mistral local")
    servers.append(shell.magics.session.local.server.pid)
    shell.ok("%mistral reset --all")
    shell.magics.session.store.usage.clear()
    assert "not from the Mistral API" in "".join(run.plain)
    return shell


class CountingRenderer:
    """Wraps the renderer the magic picked and notes each delta it is fed."""

    def __init__(self, inner):
        self.inner = inner
        self.fed: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def feed(self, text):
        self.fed.append(text)
        self.inner.feed(text)


def test_two_questions_stream_in_one_conversation(shell, monkeypatch):
    import mistral_magic.ipython.cell as magics_module

    renderers: list[CountingRenderer] = []
    real_make = magics_module.make_renderer

    def make_renderer(ip, display):
        renderers.append(CountingRenderer(real_make(ip, display)))
        return renderers[-1]

    monkeypatch.setattr(magics_module, "make_renderer", make_renderer)
    session = shell.magics.session
    bodies: list[dict] = []
    real_stream = session.client.stream
    monkeypatch.setattr(
        session.client,
        "stream",
        lambda endpoint, body, *rest: bodies.append(body) or real_stream(endpoint, body, *rest),
    )

    first = shell.ok(ASK + Q1)
    second = shell.ok(ASK + Q2)

    chat = session.store.chats["default"]
    assert [turn.user for turn in chat.turns] == [Q1, Q2]
    a1, a2 = (turn.assistant for turn in chat.turns)
    for renderer, run, answer in [(renderers[0], first, a1), (renderers[1], second, a2)]:
        assert len(renderer.fed) > 1, f"the reply arrived in one piece: {renderer.fed}"
        assert "".join(renderer.fed) == answer and answer.strip()
        assert run.markdown[0].startswith(answer.strip()[:10])
        assert "<|im_" not in answer  # the GGUF's chat template was applied and its end token stopped the reply
    assert "Paris" in a1  # temperature 0: greedy decoding
    assert all(turn.model == "SmolLM2-135M-Instruct.Q4_1" for turn in chat.turns)
    assert all(turn.finish_reason in ("stop", "length") for turn in chat.turns)

    # The second request carried the first turn.
    assert [m["role"] for m in bodies[1]["messages"]] == ["user", "assistant", "user"]
    assert bodies[1]["messages"][0]["content"] == Q1 and bodies[1]["messages"][1]["content"] == a1
    history = "".join(shell.ok("%mistral history").plain)
    assert f"[1] user: {Q1}" in history and f"[2] user: {Q2}" in history and a1 in history

    # Usage: llama-cpp-python sends no token counts in a stream, so streamed replies count as
    # requests; a --no-stream reply carries its counts.
    assert session.store.usage["default"].requests == 2
    shell.ok("%%mistral --no-stream --max-tokens 8 -t 0\nName a fruit.")
    usage = session.store.usage["default"]
    assert usage.requests == 3 and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    table = "".join(shell.ok("%mistral usage").plain)
    assert "default" in table and str(usage.prompt_tokens) in table


def test_the_stream_ends_with_done_and_sends_one_token_per_chunk(shell):
    server = shell.magics.session.local.server
    body = {
        "model": server.alias,
        "messages": [{"role": "user", "content": "Say hello."}],
        "stream": True,
        "max_tokens": 8,
        "temperature": 0,
    }
    with (
        httpx.Client(trust_env=False, timeout=SLOW_MODEL) as http,
        http.stream("POST", f"{server.base_url}/chat/completions", json=body) as response,
    ):
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    assert len(lines) > 3


def test_the_footer_and_provenance_name_the_local_model_that_answered(shell):
    run = shell.ok("%%mistral --once -m mistral-large-latest -t 0 --max-tokens 8\nSay hi.")
    assert "SmolLM2-135M-Instruct.Q4_1 (asked: mistral-large-latest) · " in run.outputs[-1]["text/html"]
    provenance = run.metadata[-1]["mistral_magic"]
    assert provenance["model_answered"] == "SmolLM2-135M-Instruct.Q4_1"
    assert provenance["model_asked"] == "mistral-large-latest" and provenance["source"] == "live"
    assert provenance["server"].startswith("127.0.0.1:")


def test_seed_makes_sampled_answers_repeatable(shell):
    ask = "%%mistral --once -t 1.0 --seed 11 --max-tokens 16\nInvent a name for a cat."
    first, second = shell.ok(ask), shell.ok(ask)
    assert first.markdown[0] == second.markdown[0]  # llama.cpp honours the seed (sent as "seed")


def test_config_shows_the_local_server_and_a_second_local_reuses_it(shell):
    server = shell.magics.session.local.server
    table = "".join(shell.ok("%mistral config").plain)
    assert server.base_url in table and "%mistral local" in table and "SmolLM2-135M-Instruct.Q4_1" in table
    again = "".join(shell.ok("%mistral local").plain)
    assert "reusing" in again and f"pid {server.pid}" in again
    assert shell.magics.session.local.server is server and server.running()
    status = "".join(shell.ok("%mistral local status").plain)
    assert "running" in status and str(server.port) in status


def test_a_missing_gguf_file_is_a_clear_error_and_keeps_the_server(shell, tmp_path):
    server = shell.magics.session.local.server
    run = shell.run(f"%mistral local --model {tmp_path / 'nowhere.gguf'}")
    assert isinstance(run.error, LocalServerError)
    assert "No model file at" in str(run.error) and "nowhere.gguf" in str(run.error) and "\n" not in str(run.error)
    (tmp_path / "notes.gguf").write_text("not a model")
    run = shell.run(f"%mistral local --model {tmp_path / 'notes.gguf'}")
    assert isinstance(run.error, LocalServerError) and "is not a GGUF model file" in str(run.error)
    assert shell.magics.session.local.server is server and server.running()


def test_a_port_in_use_is_a_clear_error(shell):
    server = shell.magics.session.local.server
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = shell.run(f"%mistral local --port {port}")
    assert isinstance(run.error, LocalServerError)
    assert f"Port {port} on 127.0.0.1 is not free" in str(run.error) and "--port" in str(run.error)
    assert isinstance(shell.run("%mistral local --port 70000").error, LocalServerError)
    assert type(shell.run("%mistral local --ctx 0").error) is UsageError
    assert shell.magics.session.local.server is server and server.running()


def test_a_server_that_dies_gives_a_clear_error_then_starts_again(shell):
    server = shell.magics.session.local.server
    os.kill(server.pid, signal.SIGKILL)
    server.process.wait(PATIENCE)
    run = shell.run(ASK + "Hello?")
    assert isinstance(run.error, LocalServerError)
    assert f"(pid {server.pid}) has stopped" in str(run.error) and "%mistral local" in str(run.error)
    shell.ok("%mistral local")
    assert shell.magics.session.local.server.pid != server.pid
    shell.ok(ASK + "Hello?")


def test_a_broken_gguf_shows_the_servers_last_lines(shell, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    run = shell.run(f"%mistral local --model {broken}")
    assert isinstance(run.error, LocalServerError)
    message = str(run.error)
    assert "stopped before it was ready" in message and "its last lines:" in message and "broken.gguf" in message
    assert shell.magics.session.local.server is None  # the old server was replaced, the new one failed
    assert "%mistral local" not in "".join(shell.ok("%mistral config").plain)


def test_base_url_local_starts_the_server_on_first_use_and_stop_restores_it(shell):
    shell.ok("%mistral local stop")
    shell.ok("%mistral config base_url=local")
    try:
        run = shell.ok(ASK + Q1)
        assert "Paris" in run.markdown[0]
        assert "not from the Mistral API" in run.stdout  # the banner, under the first answer
        server = shell.magics.session.local.server
        assert server is not None and server.running()
        table = "".join(shell.ok("%mistral config").plain)
        assert server.base_url in table and "%mistral local" in table
        stopped = "".join(shell.ok("%mistral local stop").plain)
        assert "still 'local'" in stopped and wait_gone(server.pid)
        settings = shell.magics.settings()
        assert settings.base_url == "local" and settings.sources["base_url"] == "%mistral config"
        assert settings.sources["model"] == "default"
    finally:
        shell.ok("%mistral config base_url=")


def test_no_key_and_the_default_url_offer_local_mode(module_shell):
    shell, _ = module_shell
    shell.ok("%mistral local stop")
    run = shell.run("%%mistral\nHello?")
    assert type(run.error) is MissingKeyError
    assert "%mistral local" in str(run.error) and "%mistral key" in str(run.error)


def test_without_the_extra_the_error_names_the_install_command(module_shell, monkeypatch):
    import importlib.util

    shell, _ = module_shell
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real_find_spec(name, *a)
    )
    run = shell.run("%mistral local")
    assert isinstance(run.error, LocalServerError)
    message = str(run.error)
    assert "missing: llama_cpp" in message and 'pip install "mistral-magic[local]"' in message
    assert 'pip install -e ".[local]"' in message and "\n" not in message


# ------------------------------------------------------------------------ in a real kernel


def gone_or_killed(pid: int) -> bool:
    """Whether ``pid`` ends within a minute; if not, it is killed (no test leaves a server behind)."""
    if wait_gone(pid):
        return True
    os.kill(pid, signal.SIGKILL)
    return False


PID_CODE = "import os, mistral_magic.ipython.extension; print('pids', os.getpid(), next(iter(mistral_magic.ipython.extension._loaded.values())).session.local.server.pid)"


def start_local_in_kernel(client) -> tuple[int, int]:
    """``%mistral local`` in the kernel; returns (kernel pid, server pid)."""
    out = shown(run_and_collect(client, "%mistral local", PATIENCE))
    assert "not from the Mistral API" in out, out
    words = shown(run_and_collect(client, PID_CODE, PATIENCE)).split()
    kernel_pid, server_pid = (int(w) for w in words[words.index("pids") + 1 : words.index("pids") + 3])
    assert alive(server_pid)
    return kernel_pid, server_pid


@pytest.fixture
def kernel(needs_llama, local_env):
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", startup_timeout=PATIENCE)
    run_and_collect(client, "%load_ext mistral_magic", PATIENCE)
    run_and_collect(client, f"%config MistralMagics.read_timeout = {PATIENCE}", PATIENCE)
    yield manager, client
    client.stop_channels()
    if manager.is_alive():
        manager.shutdown_kernel(now=True)
    manager.cleanup_resources()


def test_stop_interrupt_and_kernel_shutdown_leave_no_server(kernel):
    manager, client = kernel
    _, first = start_local_in_kernel(client)
    out = shown(run_and_collect(client, "%mistral local stop", PATIENCE))
    assert f"pid {first}" in out and wait_gone(first)

    _, server = start_local_in_kernel(client)
    # A kernel interrupt (SIGINT to the kernel's process group) does not stop the server.
    msg_id = client.execute("import time; print('sleeping', flush=True); time.sleep(3600)")
    wait_for_output(client, msg_id, "sleeping")  # the cell runs: the interrupt lands in it
    manager.interrupt_kernel()
    assert "KeyboardInterrupt" in shown(messages_until_idle(client, msg_id, PATIENCE))
    answer = shown(run_and_collect(client, ASK + Q1, PATIENCE))
    assert "Paris" in answer
    assert alive(server), "the kernel interrupt stopped the local server"

    manager.shutdown_kernel(now=False)  # a clean shutdown: atexit stops the server
    assert gone_or_killed(server), "the kernel's shutdown left the local server running"


def wait_for_output(client, msg_id: str, text: str) -> None:
    """Wait until the execution ``msg_id`` prints ``text``."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        try:
            msg = client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id and text in msg["content"].get("text", ""):
            return
    raise AssertionError(f"execution {msg_id} never printed {text!r}")


def test_a_killed_kernel_takes_its_server_along(kernel):
    _manager, client = kernel
    kernel_pid, server = start_local_in_kernel(client)
    os.kill(kernel_pid, signal.SIGKILL)  # the kernel alone: no atexit, no process-group kill
    assert gone_or_killed(server), "the local server outlived a killed kernel"


def test_the_key_stays_out_of_the_local_server(module_shell, shell, monkeypatch):
    """The key is for the configured server: the local one gets it neither in its environment nor
    in a request, even when MISTRAL_API_KEY is set."""
    import httpx

    from tests.support import TEST_KEY

    monkeypatch.setenv("MISTRAL_API_KEY", TEST_KEY)
    shell.ok("%mistral local stop")
    shell.ok("%mistral local")
    server = shell.magics.session.local.server
    module_shell[1].append(server.pid)
    with open(f"/proc/{server.pid}/environ", "rb") as handle:
        environ = handle.read()
    assert b"MISTRAL_API_KEY=" not in environ and TEST_KEY.encode() not in environ
    assert b"PATH=" in environ  # the rest of the environment is passed on
    sent: list[httpx.Request] = []
    real = httpx.HTTPTransport.handle_request
    monkeypatch.setattr(
        httpx.HTTPTransport, "handle_request", lambda self, request: sent.append(request) or real(self, request)
    )
    shell.ok(ASK + Q1)
    shell.ok("%%mistral --no-stream --max-tokens 4\nhi")
    shell.ok("%mistral models")
    assert [r.url.path for r in sent] == ["/v1/chat/completions", "/v1/chat/completions", "/v1/models"]
    assert all("authorization" not in r.headers for r in sent)
