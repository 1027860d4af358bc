"""What follows a stream's ``data: [DONE]``: read it, so the connection goes back to the pool.

A server ends the chunked body right after ``[DONE]``. Closing the response before its end is read
makes httpcore drop the connection, so every streamed request (each ``--each`` item) paid for a new
connection (and, on https, a TLS handshake). The reply is complete at ``[DONE]``: the rest is read
within :data:`GRACE_SECONDS` and :data:`MAX_TRAILING_BYTES`, any failure ignored; a server that holds
the body open longer has its socket shut down by one watchdog thread (that connection is then not reused).
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator

import httpx

GRACE_SECONDS = 0.5
MAX_TRAILING_BYTES = 64 * 1024


def read_rest(response: httpx.Response, chunks: Iterator[bytes]) -> None:
    """Read what is left of ``chunks`` (the body of ``response``) within the grace time; never raises
    an error of the server's making. Without a socket (a test's transport) nothing is read."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if not isinstance(sock, socket.socket):
        return
    token = _WATCHDOG.arm(sock, GRACE_SECONDS)
    try:
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_TRAILING_BYTES:
                return
    except Exception:  # the reply is complete: a failure after it only costs the connection
        pass
    finally:
        _WATCHDOG.disarm(token)


class _Watchdog:
    """One daemon thread that shuts down the socket of each read that overran its deadline."""

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._due: dict[int, tuple[float, socket.socket]] = {}  # in deadline order: one grace time for all
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._idle = False  # the thread waits for an arm, without a deadline

    def arm(self, sock: socket.socket, seconds: float) -> int:
        token = next(self._tokens)
        with self._wake:
            self._due[token] = (time.monotonic() + seconds, sock)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="mistral-drain-watchdog", daemon=True)
                self._thread.start()
            elif self._idle:
                self._wake.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._wake:
            self._due.pop(token, None)

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for token, (deadline, sock) in list(self._due.items()):
                    if deadline > now:
                        break
                    del self._due[token]
                    try:  # the base class's shutdown: an SSL socket's own would touch its TLS state mid-read
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    except OSError:
                        pass
                self._idle = not self._due
                self._wake.wait(None if self._idle else next(iter(self._due.values()))[0] - now)


_WATCHDOG = _Watchdog()
