"""Shared machinery of the serial stream decoders: buffering, resynchronising, reporting noise.

A decoder says, for the bytes at the start of its buffer, one of four things (`Scan`): it needs
more bytes to decide, the first bytes are noise, a whole valid frame is there, or a damaged
frame is there. Decisions depend only on the bytes, never on how they were chunked, so a stream
fed whole and one byte at a time gives identical results.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from station.devices.codecs.base import BadFrame, StreamEvent


@dataclass(frozen=True)
class Need:
    """Not enough bytes to decide yet."""


@dataclass(frozen=True)
class Skip:
    """The first `count` bytes start no frame: noise."""

    count: int


@dataclass(frozen=True)
class Frame:
    """A whole frame of `length` bytes passed every structural check and its checksum."""

    length: int


@dataclass(frozen=True)
class Bad:
    """A frame of `length` bytes started here but is damaged; it is reported and skipped."""

    length: int
    problem: str
    expected: str = ""


Scan = Need | Skip | Frame | Bad
NEED = Need()

# Noise is reported in runs; a device babbling garbage yields one report per this many bytes.
MAX_NOISE_RUN = 64


class FramedDecoder(ABC):
    """Base of every serial decoder: `feed(bytes)` runs `_scan` until it needs more bytes."""

    name: ClassVar[str]
    version: ClassVar[str]

    def __init__(self) -> None:
        self._buf = bytearray()
        self._noise = bytearray()

    def feed(self, data: bytes) -> list[StreamEvent]:
        self._buf += data
        out: list[StreamEvent] = []
        while self._buf:
            scan = self._scan(self._buf)
            if isinstance(scan, Need):
                break
            if isinstance(scan, Skip):
                # Never past the end of the current noise run: where runs are cut must not
                # depend on how many bytes a chunk happened to bring.
                count = max(1, min(scan.count, MAX_NOISE_RUN - len(self._noise)))
                self._noise += self._buf[:count]
                del self._buf[:count]
                self._on_damage()
                if len(self._noise) >= MAX_NOISE_RUN:
                    out.extend(self._flush_noise())
                continue
            out.extend(self._flush_noise())
            raw = bytes(self._buf[: scan.length])
            del self._buf[: scan.length]
            if isinstance(scan, Bad):
                self._on_damage()
                out.append(self.bad(scan.problem, raw, scan.expected))
            else:
                out.extend(self._decode(raw))
        return out

    def bad(self, problem: str, raw: bytes, expected: str = "") -> BadFrame:
        return BadFrame(codec=self.name, problem=problem, expected=expected, raw_hex=raw.hex())

    def _flush_noise(self) -> list[StreamEvent]:
        if not self._noise:
            return []
        raw = bytes(self._noise)
        self._noise.clear()
        event = self._unframed_event(raw)
        if event is not None:
            return [event]
        return [self.bad(f"{len(raw)} byte(s) outside any frame (noise) skipped", raw)]

    def _on_damage(self) -> None:  # noqa: B027 -- an optional hook, not abstract
        """Bytes were skipped as noise or reported as a damaged frame."""

    def _unframed_event(self, raw: bytes) -> StreamEvent | None:
        """A run of unframed bytes that means something on its own (e.g. a one-byte ACK)."""
        return None

    def _resync_or_bad(self, buf: bytearray, length: int, problem: str, expected: str) -> Scan:
        """A frame at 0 failed its check: noise before a valid frame, or one damaged frame?

        If a valid frame starts inside the failed one, the bytes before it were noise (or a
        truncated frame) and the frame after them must not be lost; otherwise the whole
        failed frame is reported as damaged.
        """
        for start in range(1, length):
            valid = self._valid_at(buf, start)
            if valid is None:
                return NEED
            if valid:
                return Bad(
                    start,
                    f"frame cut short after {start} byte(s) by the next valid frame "
                    "(truncated frame or noise)",
                    expected,
                )
        return Bad(length, problem, expected)

    def _frame_inside(self, buf: bytearray, length: int, what: str = "frame") -> Scan | None:
        """A whole valid frame starting inside the one claimed at 0: the claim is damage.

        A stray start byte followed by a length-like byte (or a damaged length) would otherwise
        hold back up to the claimed length of bytes that belong to the next frames. Checked
        before the claimed frame's own checksum, whether or not all its bytes are here yet, so
        the outcome never depends on how the bytes arrive.
        """
        for start in range(1, min(len(buf), length)):
            valid = self._valid_at(buf, start)
            if valid is None:
                return NEED
            if valid:
                return Bad(
                    start,
                    f"{what} cut short after {start} byte(s) by the next valid {what} "
                    f"(truncated {what}, damaged size or noise)",
                    f"a {what} as long as its size field says",
                )
        return None

    def _valid_at(self, buf: bytearray, start: int) -> bool | None:
        """Whether a whole valid frame starts at `start`; None when more bytes are needed."""
        return False

    @abstractmethod
    def _scan(self, buf: bytearray) -> Scan: ...

    @abstractmethod
    def _decode(self, raw: bytes) -> Sequence[StreamEvent]: ...


class LineDecoder(FramedDecoder):
    """Decoders of text protocols: a frame is one line ending in LF (a CR before it is dropped)."""

    max_line: ClassVar[int] = 256

    def _scan(self, buf: bytearray) -> Scan:
        end = buf.find(b"\n", 0, self.max_line)
        if end < 0:
            if len(buf) >= self.max_line:
                return Bad(
                    self.max_line,
                    f"no line end within {self.max_line} bytes",
                    "a line ending in CR LF",
                )
            return NEED
        return Frame(end + 1)

    def _decode(self, raw: bytes) -> Sequence[StreamEvent]:
        text = raw.rstrip(b"\r\n")
        if not text.strip(b"\r\n\x00 "):
            return []  # blank lines between records carry nothing
        return self._decode_line(raw, text)

    @abstractmethod
    def _decode_line(self, raw: bytes, text: bytes) -> Sequence[StreamEvent]: ...
