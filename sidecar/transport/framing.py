"""Bytes ↔ frames: newline-delimited JSON by default, LSP `Content-Length` framing when the first bytes say so.

Pure and incremental: `FrameDecoder.feed(bytes)` returns the complete frames seen so far. A frame
that breaks a limit becomes a `BadFrame` item, so the reader reads on and dispatch answers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_JSON_DEPTH = 64
MAX_HEADER_BYTES = 8 * 1024

Framing = Literal["ndjson", "lsp"]

_LSP_PREFIX = b"content-length:"
_HEADER_END = b"\r\n\r\n"


@dataclass(frozen=True)
class BadFrame:
    """A frame that could not be taken: `kind` is `too_large` or `bad_header`."""

    kind: str
    reason: str


Frame = bytes | BadFrame


class FrameDecoder:
    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.framing: Framing | None = None  # decided by the first non-blank bytes
        self._max = max_frame_bytes
        self._buffer = bytearray()
        self._discarding = 0  # LSP: body bytes of an oversized frame still to skip
        self._skip_line = False  # NDJSON: inside an oversized line, skip to its newline

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        if self.framing is None and not self._detect():
            return []
        if self.framing == "lsp":
            return self._lsp_frames()
        return self._ndjson_frames()

    def finish(self) -> list[Frame]:
        """At EOF: a last NDJSON line without its newline still counts; a torn LSP frame does not."""
        if self.framing != "lsp" and self._buffer.strip() and not self._skip_line:
            frame = bytes(self._buffer).rstrip(b"\r")
            self._buffer.clear()
            return [frame]
        self._buffer.clear()
        return []

    def _detect(self) -> bool:
        head = bytes(self._buffer.lstrip()[: len(_LSP_PREFIX)]).lower()
        if not head:
            return False
        if _LSP_PREFIX.startswith(head) and len(head) < len(_LSP_PREFIX):
            return False  # could still become a Content-Length header
        self.framing = "lsp" if head == _LSP_PREFIX else "ndjson"
        if self.framing == "lsp":
            del self._buffer[: len(self._buffer) - len(self._buffer.lstrip())]
        return True

    def _ndjson_frames(self) -> list[Frame]:
        frames: list[Frame] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > self._max:
                    self._buffer.clear()
                    if not self._skip_line:
                        self._skip_line = True
                        frames.append(BadFrame("too_large", f"a frame may be at most {self._max} bytes"))
                return frames
            line = bytes(self._buffer[:newline]).rstrip(b"\r")
            del self._buffer[: newline + 1]
            if self._skip_line:
                self._skip_line = False
                continue
            if len(line) > self._max:
                frames.append(BadFrame("too_large", f"a frame may be at most {self._max} bytes"))
            elif line.strip():
                frames.append(line)

    def _lsp_frames(self) -> list[Frame]:
        frames: list[Frame] = []
        while True:
            if self._discarding:
                skipped = min(self._discarding, len(self._buffer))
                del self._buffer[:skipped]
                self._discarding -= skipped
                if self._discarding:
                    return frames
            end = self._buffer.find(_HEADER_END)
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    frames.append(BadFrame("bad_header", "the frame header is too long"))
                    self._resync(1)
                    continue
                return frames
            length = _content_length(bytes(self._buffer[:end]))
            if length is None:
                frames.append(BadFrame("bad_header", "the frame header has no valid Content-Length"))
                # From the next byte, not past this header: the tail of a frame whose length was too short
                # sits in front of the next real header, and skipping the whole "header" would eat that frame.
                self._resync(1)
                continue
            body_start = end + len(_HEADER_END)
            if length > self._max:
                frames.append(BadFrame("too_large", f"a frame may be at most {self._max} bytes"))
                del self._buffer[:body_start]
                self._discarding = length
                continue
            if len(self._buffer) < body_start + length:
                return frames
            frames.append(bytes(self._buffer[body_start : body_start + length]))
            del self._buffer[: body_start + length]

    def _resync(self, start: int) -> None:
        """Drop bytes up to the next thing that looks like a header, after a header we could not read."""
        found = bytes(self._buffer).lower().find(_LSP_PREFIX, start)
        del self._buffer[: found if found >= 0 else len(self._buffer)]


def _content_length(header: bytes) -> int | None:
    length = None
    for line in header.split(b"\r\n"):
        name, sep, value = line.partition(b":")
        if not sep:
            return None
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
    return length if length is not None and length >= 0 else None


def encode_frame(body: bytes, framing: Framing | None) -> bytes:
    if framing == "lsp":
        return b"Content-Length: %d\r\n\r\n" % len(body) + body
    return body + b"\n"


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")


def json_depth_exceeds(payload: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when the JSON text nests deeper than `limit` (the top-level value is level 1).

    Runs in C-speed passes (strip strings, keep brackets, peel innermost pairs) so a 16 MiB frame
    costs milliseconds and a hostile one cannot reach the parser's recursion limit.
    """
    if payload.count(b"[") + payload.count(b"{") <= limit:
        return False  # the common case: too few openers to nest that deep
    brackets = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", payload))
    depth = 0
    while brackets:
        peeled = _INNERMOST_PAIR.sub(b"", brackets)
        if peeled == brackets:
            return False  # unbalanced: the JSON parser will report it
        depth += 1
        if depth > limit:
            return True
        brackets = peeled
    return False
