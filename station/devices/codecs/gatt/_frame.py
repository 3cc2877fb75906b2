"""Shared pieces of the GATT codecs: a bounds-checked field reader, bit tables, reading finish."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TypeVar

from station.devices.codecs.ieee11073 import (
    DATE_TIME_SIZE,
    DateTimeError,
    decode_date_time,
    decode_float,
    decode_sfloat,
)
from station.errors import FrameError
from station.models import AnyReading, Flag
from station.validation import with_plausibility_flag

R = TypeVar("R", bound=AnyReading)


class FrameReader:
    """Reads little-endian fields in order; every shortfall names the field that needed it."""

    def __init__(self, raw: bytes, codec: str) -> None:
        self.raw = bytes(raw)
        self.codec = codec
        self.pos = 0

    def fail(self, problem: str, expected: str = "") -> FrameError:
        return FrameError(problem, self.raw, codec=self.codec, expected=expected)

    def take(self, size: int, why: str) -> bytes:
        end = self.pos + size
        if end > len(self.raw):
            raise self.fail(f"{why}: need {end} bytes, got {len(self.raw)}")
        chunk = self.raw[self.pos : end]
        self.pos = end
        return chunk

    def uint(self, size: int, why: str, *, byteorder: str = "little") -> int:
        return int.from_bytes(self.take(size, why), "big" if byteorder == "big" else "little")

    def u8(self, why: str) -> int:
        return self.uint(1, why)

    def u16(self, why: str) -> int:
        return self.uint(2, why)

    def u24(self, why: str) -> int:
        return self.uint(3, why)

    def u32(self, why: str) -> int:
        return self.uint(4, why)

    def sfloat(self, why: str) -> float | None:
        return decode_sfloat(self.u16(why))

    def float32(self, why: str) -> float | None:
        return decode_float(self.u32(why))

    def date_time(self, why: str) -> datetime | None:
        chunk = self.take(DATE_TIME_SIZE, why)
        try:
            return decode_date_time(chunk)
        except DateTimeError as exc:
            raise self.fail(str(exc)) from None

    def finish(self, layout: str) -> None:
        """Refuse bytes beyond the layout the flags announced: they belong to no known field."""
        extra = len(self.raw) - self.pos
        if extra:
            raise self.fail(
                f"{extra} byte(s) left over: {layout} give {self.pos} bytes, got {len(self.raw)}",
                expected=f"exactly {self.pos} bytes",
            )


def reserved_bits_check(
    reader: FrameReader, value: int, known_mask: int, field: str, width: int = 2
) -> None:
    """Reserved flag bits change the layout in ways we cannot know: the frame is refused."""
    reserved = value & ~known_mask
    if reserved:
        raise reader.fail(
            f"{field} 0x{value:0{width}x} has reserved bits 0x{reserved:0{width}x} set",
            expected=f"only bits of mask 0x{known_mask:0{width}x}",
        )


def bits_to_flags(value: int, table: Mapping[int, Flag]) -> tuple[Flag, ...]:
    return tuple(flag for bit, flag in table.items() if value >> bit & 1)


def flags_to_bits(flags: Iterable[Flag], table: Mapping[int, Flag], field: str) -> int:
    """The inverse of `bits_to_flags`, for encoders; a flag with no bit here is refused."""
    by_flag = {flag: bit for bit, flag in table.items()}
    bits = 0
    for flag in flags:
        if flag not in by_flag:
            known = ", ".join(by_flag)
            raise ValueError(f"{flag} has no bit in {field}: expected one of {known}")
        bits |= 1 << by_flag[flag]
    return bits


def finish(reading: R) -> R:
    """Every reading leaves through the plausibility check: impossible values get flagged."""
    checked = with_plausibility_flag(reading)
    assert isinstance(checked, type(reading))
    return checked
