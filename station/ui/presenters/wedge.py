"""Keyboard-wedge scanners (badge, wristband, QR): told apart from people by timing.

A USB HID barcode or badge reader "types" its code as key events a few milliseconds apart and
ends with Enter; nobody types that fast. So a burst of at least `MIN_CHARS` characters, each
within `MAX_GAP_S` of the one before, ended by Enter within `MAX_GAP_S`, is a scan — whatever
widget has the focus. Pure: the caller passes each key's time (a monotonic clock).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Readers send 1-10 ms apart (a reader's default USB HID report rate is 8 ms / character);
# fast typists manage ~80-120 ms between keys. 40 ms separates the two with margin.
MAX_GAP_S = 0.04
MIN_CHARS = 4  # shorter bursts are keyboard shortcuts or a double tap, not a code


@dataclass
class WedgeReader:
    max_gap_s: float = MAX_GAP_S
    min_chars: int = MIN_CHARS
    _chars: list[str] = field(default_factory=list)
    _last: float | None = None

    def char(self, text: str, at: float) -> None:
        """A character arrived (from the window, whatever has the focus)."""
        if self._last is None or at - self._last > self.max_gap_s:
            self._chars = []  # too slow: a person, or the start of a new burst
        self._chars.append(text)
        self._last = at

    def enter(self, at: float) -> str | None:
        """Enter arrived: the scanned code when the burst was a scan, else None."""
        fast = self._last is not None and at - self._last <= self.max_gap_s
        code = "".join(self._chars)
        self.reset()
        if fast and len(code) >= self.min_chars:
            return code
        return None

    def reset(self) -> None:
        self._chars = []
        self._last = None
