"""An incremental server-sent-events decoder that follows the WHATWG parsing rules.

Bytes go in as they arrive from the network; the data of each complete event comes out.
Handled: LF, CR and CRLF line ends (a CR ending one network chunk whose LF starts the next),
a UTF-8 BOM at the very start, multibyte characters split across chunks, ``:`` comments,
multi-line ``data``, and events with no data (not dispatched). ``data`` carries the
chat-completions protocol; an ``error`` field (llama.cpp writes ``error: {"code": ..., "message": ...}``
instead of data, sometimes followed by ``data: [DONE]``) is kept in :attr:`SSEDecoder.errors`;
``event``, ``id`` and ``retry`` fields are read and ignored.
An unfinished line is kept as a list of pieces joined once, when it ends (linear time however
long it grows); :attr:`pending_size` lets the caller cap it.
"""

from __future__ import annotations

import codecs


class SSEDecoder:
    """Feed bytes with :meth:`feed`; it returns the data strings of the events they completed."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial: list[str] = []  # the pieces of the line not yet ended
        self._partial_size = 0
        self._data_lines: list[str] = []
        self.errors: list[str] = []  # the values of ``error`` fields, in order
        self._at_start = True
        self._skip_leading_lf = False

    def feed(self, chunk: bytes) -> list[str]:
        """Decode one network chunk and return the events it completed, in order."""
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            if text[0] == "\ufeff":
                text = text[1:]
        if self._skip_leading_lf:
            # The previous chunk ended in CR: a LF here completes that CRLF, not a new line.
            if text[0] == "\n":
                text = text[1:]
            self._skip_leading_lf = False
        if "\r" in text:
            self._skip_leading_lf = text[-1:] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._partial.append(text)
            self._partial_size += len(text)
            return []
        if self._partial:
            self._partial.append(text)
            text = "".join(self._partial)
            self._partial.clear()
        lines = text.split("\n")
        last = lines.pop()
        self._partial_size = len(last)
        if last:
            self._partial.append(last)
        return self._parse_lines(lines)

    def _parse_lines(self, lines: list[str]) -> list[str]:
        events: list[str] = []
        data = self._data_lines
        for line in lines:
            if line.startswith("data: "):
                data.append(line[6:])
            elif not line:
                if data:
                    events.append(data[0] if len(data) == 1 else "\n".join(data))
                    data.clear()
            elif line[0] == ":":
                continue
            else:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                elif name == "error":
                    self.errors.append(value)
        return events

    @property
    def pending_size(self) -> int:
        """Characters held for the line and the event not yet ended."""
        if self._data_lines:
            return self._partial_size + sum(map(len, self._data_lines))
        return self._partial_size

    @property
    def has_pending_data(self) -> bool:
        """True when the stream ended inside an event (which the rules say to discard)."""
        return bool(self._data_lines or self._partial)
