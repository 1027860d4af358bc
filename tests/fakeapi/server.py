"""A faithful local fake of the Mistral / OpenAI-compatible chat-completions API.

Real HTTP/1.1 on 127.0.0.1 (threaded, keep-alive, chunked streaming), standard library only, so the
client can be tested end to end: scripted replies, SSE streams, Mistral-shaped errors, malformed
bytes, dropped connections and hangs. Use it in-process::

    with FakeChatServer() as server:
        server.script(Reply(text="Hi there"), ErrorReply(429, headers={"Retry-After": "1"}))
        ...  # point the client at server.url

or from a shell / notebook kernel::

    PYTHONPATH=tests python -m fakeapi --port 8765 --script replies.json   # prints FAKE_SERVER_URL=...
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from .batch import FakeBatch
from .floods import Flood, flood_body
from .shapes import (
    CHAT_PATHS,
    MODELS_PATHS,
    PAD_ALPHABET,
    CapturedRequest,
    ErrorReply,
    FieldDelta,
    Hang,
    RawReply,
    Reply,
    completion_object,
    default_error_body,
    dumps,
    echo_reply,
    last_user_message,
    model_entry,
    reply_from_dict,
    reply_usage,
    validate_chat_request,
)
from .vision import image_error


def _asks_json_schema(request_json: Any) -> bool:
    response_format = request_json.get("response_format") if isinstance(request_json, dict) else None
    return isinstance(response_format, dict) and response_format.get("type") == "json_schema"


class _Aborted(Exception):
    """Raised inside the handler to abandon a connection without finishing the response."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeChatServer/1.0"
    server: _TCPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    # Every method goes through one dispatcher so unknown paths/methods get Mistral's 404.
    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def _dispatch(self) -> None:
        fake = self.server.fake
        body = self._read_body()
        headers = {k.lower(): v for k, v in self._merged_headers()}
        captured = CapturedRequest(self.command, self.path, headers, body, peer=tuple(self.client_address[:2]))
        fake._capture(captured)
        route = self.path.split("?", 1)[0]
        try:
            if self.command == "POST" and route in CHAT_PATHS:
                if self._authorized():
                    self._chat(body)
            elif self.command == "GET" and route in MODELS_PATHS:
                if self._authorized():
                    if fake.models_reply is not None:
                        self._serve_raw(fake.models_reply)
                    else:
                        self._send_json(200, {"object": "list", "data": fake.models})
            elif fake.batch.handles(route):
                if self._authorized():
                    self._serve_batch(body)
            else:
                self._send_json(404, {"detail": "Not Found"})
        except _Aborted:
            self._abort()
        except (ConnectionError, OSError):
            self.close_connection = True

    def _merged_headers(self) -> list[tuple[str, str]]:
        merged: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return list(merged.items())

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _authorized(self) -> bool:
        key = self.server.fake.required_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._send_json(401, default_error_body(401, None))
        return False

    # -- writing -------------------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        """Sleep, but wake (and abandon the response) as soon as the server stops."""
        if seconds > 0 and self.server.fake._stopping.wait(seconds):
            raise _Aborted

    def _send_head(self, status: int, content_type: str, extra: dict[str, str], length: int | None) -> None:
        self.send_response(status)
        overridden = {k.lower() for k in extra}
        if "content-type" not in overridden:
            self.send_header("Content-Type", content_type)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
        else:
            self.send_header("Content-Length", str(length))
        if self.close_connection:  # the client asked for "Connection: close"
            self.send_header("Connection", "close")
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_body(self, status: int, content_type: str, payload: bytes, extra: dict[str, str] | None = None) -> None:
        self._send_head(status, content_type, extra or {}, len(payload))
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _send_json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        self._send_body(status, "application/json", dumps(obj).encode(), extra)

    def _write_chunk(self, data: bytes) -> None:
        if data:  # an empty chunk would end the body
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Close the connection abruptly: no terminating chunk, the client sees a truncated body."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- chat completions ----------------------------------------------------------------------

    def _chat(self, body: bytes) -> None:
        request_json, reply = self.server.fake.answer(body)
        if isinstance(reply, list):  # n choices
            self._serve_reply(reply[0], request_json, reply)
        elif isinstance(reply, Reply):
            self._serve_reply(reply, request_json)
        elif isinstance(reply, ErrorReply):
            self._wait(reply.delay)
            if isinstance(reply.body, str):
                self._send_body(reply.status, "text/html; charset=utf-8", reply.body.encode(), reply.headers)
            else:
                payload = reply.body if reply.body is not None else default_error_body(reply.status, request_json)
                self._send_json(reply.status, payload, reply.headers)
        elif isinstance(reply, RawReply):
            self._serve_raw(reply)
        elif isinstance(reply, Flood):
            self._serve_flood(reply)
        elif isinstance(reply, Hang):
            self._wait(reply.seconds)
            raise _Aborted
        else:
            raise TypeError(f"not a reply: {reply!r}")

    def _serve_batch(self, body: bytes) -> None:
        """The files and batch-jobs endpoints (:mod:`.batch`); a file's content is sent in chunks."""
        answer = self.server.fake.batch.handle(self.command, self.path, self.headers.get("Content-Type", ""), body)
        if answer.lost:
            raise _Aborted
        if answer.raw is None:
            self._send_json(answer.status, answer.payload, answer.headers)
            return
        self._send_head(answer.status, "application/octet-stream", answer.headers, None)
        for piece in answer.pieces():
            if self.server.fake._stopping.is_set():
                raise _Aborted
            self._write_chunk(piece)
        self._end_chunks()

    def _serve_flood(self, reply: Flood) -> None:
        """An oversized body (see :mod:`.floods`), written until done or until the client hangs up."""
        self._send_head(200, reply.content_type, reply.headers, None)
        for piece in flood_body(reply):
            if self.server.fake._stopping.is_set():
                raise _Aborted
            self._write_chunk(piece)
        self._end_chunks()

    def _serve_raw(self, reply: RawReply) -> None:
        self._send_head(reply.status, reply.content_type, reply.headers, None)
        for index, piece in enumerate(reply.pieces):
            if index:
                self._wait(reply.piece_delay)
            self._write_chunk(piece)
        if reply.drop:
            raise _Aborted
        self._end_chunks()

    def _serve_reply(self, reply: Reply, request_json: dict, choices: list[Reply] | None = None) -> None:
        pieces = reply.content_deltas()
        self._wait(reply.delay)
        if request_json.get("stream") is True:
            ident = "cmpl-" + uuid.uuid4().hex
            model = reply.model or request_json.get("model")
            self._stream(reply, pieces, ident, int(time.time()), model, reply_usage(reply, request_json))
            return
        self._wait(reply.chunk_delay * len(pieces))  # a whole reply comes once it is all generated
        self._send_json(200, completion_object(reply, request_json, choices), reply.headers)

    def _stream(self, reply: Reply, pieces: list[Any], ident: str, created: int, model: Any, usage: dict) -> None:
        head = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}

        def event(choices: list, **extra: Any) -> bytes:
            return b"data: %s\n\n" % dumps({**head, "choices": choices, **extra}).encode()

        def choice(delta: dict, finish: Any = None) -> list:
            return [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]

        # Content chunks are built from a prefix/suffix around the delta: cheap for long streams.
        template = dumps({**head, "choices": choice({"content": "\0"}), "p": "\1"})
        prefix, rest = template.split('"\\u0000"')
        middle, suffix = rest.split('"\\u0001"')
        prefix, middle, suffix = "data: " + prefix, middle + '"', '"' + suffix + "\n\n"

        self._send_head(200, "text/event-stream; charset=utf-8", reply.headers, None)
        delay = reply.chunk_delay
        if reply.role_chunk:
            self._write_chunk(event(choice({"role": "assistant", "content": ""})))
            self._wait(delay)
        for count, piece in enumerate(pieces):
            if reply.drop_after is not None and count >= reply.drop_after:
                raise _Aborted
            if count:
                self._wait(delay)
            pad = PAD_ALPHABET[random.randrange(62) :][: random.randint(1, 48)] if reply.padding else None
            if pad and isinstance(piece, str):
                text = prefix + dumps(piece) + middle + pad + suffix
            else:  # a list of parts or a reasoning field (reasoning models), or no padding
                padding = {"p": pad} if pad else {}
                delta = dict(piece) if isinstance(piece, FieldDelta) else {"content": piece}
                text = f"data: {dumps({**head, 'choices': choice(delta), **padding})}\n\n"
            self._write_chunk(text.encode())
        if reply.drop_after is not None:
            raise _Aborted
        if pieces:
            self._wait(delay)
        final = choice({"content": ""}, reply.finish_reason)
        if reply.usage_in_separate_chunk:
            self._write_chunk(event(final))
            self._wait(delay)
            self._write_chunk(event([], usage=usage))
        else:
            self._write_chunk(event(final, usage=usage))
        if reply.done:
            self._wait(delay)
            self._write_chunk(b"data: [DONE]\n\n")
        self._end_chunks()


class _TCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    fake: FakeChatServer

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if not self.fake._track(request):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        self.fake._untrack(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class FakeChatServer:
    """A threaded fake chat-completions server on a real socket.

    Replies come from the FIFO ``script`` queue, then from rules (``add_rule``), then from
    ``default_reply(request_json)``. Every request is recorded in ``requests``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[CapturedRequest] = []
        self._queue: deque = deque()
        self._rules: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._set_defaults()
        self._received = threading.Condition(self._lock)
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _TCPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL without trailing slash, e.g. "http://127.0.0.1:54321"."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeChatServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _TCPServer((self.host, self.port), _Handler, bind_and_activate=False)
        server.fake = self
        try:
            server.server_bind()
            server.server_activate()
        except OSError:
            server.server_close()
            raise
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=self._accept_loop, args=(server,), name=f"FakeChatServer:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection promptly (hung ones included)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        # Wake the blocking accept() with a connection to ourselves, then close the listener.
        try:
            host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
            socket.create_connection((host, self.port), timeout=1).close()
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    def script(self, *replies: Any) -> None:
        """Queue replies; each valid POST to chat/completions pops one (FIFO)."""
        with self._lock:
            self._queue.extend(replies)

    def add_rule(self, match: str, reply: Any) -> None:
        """When the queue is empty, answer with `reply` if `match` occurs in the last user message."""
        with self._lock:
            self._rules.append((match, reply))

    def reset(self) -> None:
        """Back to a fresh server: clear the queue, captured requests and rules; restore
        default_reply, models, required_key and strict (the socket stays open)."""
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self._rules.clear()
            self._set_defaults()

    def _set_defaults(self) -> None:
        self.default_reply: Callable[[Any], Any] = echo_reply
        self.models: list[dict] = [
            model_entry("mistral-small-latest", 32768, vision=True),
            model_entry("Mistral-chat", 131072),
        ]
        self.models_reply: RawReply | None = None  # served instead of the model list when set
        self.required_key: str | None = None
        self.strict: bool = True  # reject unknown top-level fields with 422, like Mistral
        self.json_schema: bool = True  # False: a server without the json_schema response format (422)
        self.honour_n: bool = True  # False: n is accepted but one choice comes back (as llama.cpp does)
        self.batch = FakeBatch(self._batch_answer)  # files and batch jobs, answered as live requests are

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least `count` requests were captured; False on timeout."""
        with self._received:
            return self._received.wait_for(lambda: len(self.requests) >= count, timeout)

    # -- internals used by the handler ---------------------------------------------------------

    def _capture(self, request: CapturedRequest) -> None:
        with self._received:
            self.requests.append(request)
            self._received.notify_all()

    def answer(self, body: bytes) -> tuple[Any, Any]:
        """A chat request's parsed JSON and what answers it: a 422 or 400 :class:`ErrorReply` for a request
        Mistral refuses, a list of :class:`Reply` for ``n`` choices, else the script's next reply."""
        request_json, error = validate_chat_request(body, self.strict)
        if error is None and not self.json_schema and _asks_json_schema(request_json):
            error = {"object": "error", "message": "response_format: json_schema is not supported", "code": None}
        if error is not None:
            return request_json, ErrorReply(422, body=error)
        refused = image_error(request_json, self.models)
        if refused is not None:
            body_400 = {"object": "error", "message": refused, "type": "invalid_request_error", "param": None}
            return request_json, ErrorReply(400, body={**body_400, "code": "3051"})
        reply = self._next_reply(request_json)
        n = request_json.get("n")
        choices = isinstance(n, int) and n > 1 and self.honour_n and not request_json.get("stream")
        if isinstance(reply, Reply) and choices:
            return request_json, [reply, *(self._next_reply(request_json) for _ in range(n - 1))]
        return request_json, reply

    def _batch_answer(self, request_json: dict) -> Any:
        return self.answer(dumps(request_json).encode())[1]

    def _next_reply(self, request_json: Any) -> Any:
        with self._lock:
            if self._queue:
                reply = self._queue.popleft()
            else:
                text = last_user_message(request_json)
                reply = next((r for match, r in self._rules if match in text), None)
        if reply is None:
            reply = self.default_reply(request_json)
        if callable(reply):
            reply = reply(request_json)
        return reply

    def _accept_loop(self, server: _TCPServer) -> None:
        """Accept connections (one daemon thread each) until stop() sets the flag and wakes us."""
        while not self._stopping.is_set():
            try:
                request, address = server.get_request()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            if self._stopping.is_set():
                request.close()
                return
            try:
                server.process_request(request, address)
            except Exception:
                server.shutdown_request(request)

    def _track(self, conn: socket.socket) -> bool:
        with self._lock:
            if self._stopping.is_set():
                return False
            self._connections.add(conn)
            return True

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)


def load_script(server: FakeChatServer, data: Any) -> None:
    """Configure a server from a script: a list of replies, or {"rules": [...], "default": {...}}.

    The object form may also carry "script": [...] (queued first).
    """
    if isinstance(data, list):
        server.script(*(reply_from_dict(item) for item in data))
        return
    if not isinstance(data, dict):
        raise ValueError("script must be a JSON list or an object with 'rules'")
    server.script(*(reply_from_dict(item) for item in data.get("script", [])))
    for rule in data.get("rules", []):
        server.add_rule(rule["match"], reply_from_dict(rule["reply"]))
    if "default" in data:
        default = reply_from_dict(data["default"])
        server.default_reply = lambda request_json: default


def main(argv: list[str] | None = None) -> None:
    """Run the fake server in the foreground until killed; print its URL first."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", help="JSON file: a list of replies, or {rules, default}")
    parser.add_argument("--require-key", help="answer 401 unless 'Authorization: Bearer KEY'")
    parser.add_argument("--ignore-n", action="store_true", help="answer one choice whatever n asks (as llama.cpp)")
    args = parser.parse_args(argv)
    server = FakeChatServer(args.host, args.port)
    server.honour_n = not args.ignore_n
    if args.script:
        with open(args.script, encoding="utf-8") as handle:
            load_script(server, json.load(handle))
    server.required_key = args.require_key
    finished = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: finished.set())
    server.start()
    print(f"FAKE_SERVER_URL={server.url}", flush=True)
    try:
        while not finished.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
