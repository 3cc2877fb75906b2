"""IEEE 11073-20601 numbers (SFLOAT, FLOAT) and the Bluetooth Date Time field: decode and encode."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Final, Literal


class Special(StrEnum):
    """The reserved words of SFLOAT/FLOAT: none of them is a number a device measured."""

    NAN = "nan"  # not a number: no measurement
    NRES = "nres"  # not at this resolution
    POSITIVE_INFINITY = "+inf"
    NEGATIVE_INFINITY = "-inf"
    RESERVED = "reserved"  # reserved for future use by IEEE 11073


@dataclass(frozen=True)
class _Format:
    """One IEEE 11073 floating-point format: mantissa and exponent widths."""

    name: str
    mantissa_bits: int
    exponent_bits: int

    @property
    def mantissa_mask(self) -> int:
        return (1 << self.mantissa_bits) - 1

    @property
    def word_mask(self) -> int:
        return (1 << (self.mantissa_bits + self.exponent_bits)) - 1

    @property
    def mantissa_max(self) -> int:
        return (1 << (self.mantissa_bits - 1)) - 1

    @property
    def mantissa_min(self) -> int:
        return -(1 << (self.mantissa_bits - 1))

    @property
    def exponent_max(self) -> int:
        return (1 << (self.exponent_bits - 1)) - 1

    @property
    def exponent_min(self) -> int:
        return -(1 << (self.exponent_bits - 1))

    @property
    def specials(self) -> dict[int, Special]:
        # The special values are whole words with exponent 0 (IEEE 11073-20601 §F.7/F.8);
        # the same mantissa under another exponent is an ordinary number.
        top = self.mantissa_max  # 0x07FF / 0x007FFFFF
        return {
            top: Special.NAN,
            top + 1: Special.NRES,
            top - 1: Special.POSITIVE_INFINITY,
            top + 3: Special.NEGATIVE_INFINITY,
            top + 2: Special.RESERVED,
        }

    def split(self, word: int) -> tuple[int, int]:
        """(mantissa, exponent), both two's complement."""
        mantissa = word & self.mantissa_mask
        if mantissa > self.mantissa_max:
            mantissa -= 1 << self.mantissa_bits
        exponent = word >> self.mantissa_bits
        if exponent > self.exponent_max:
            exponent -= 1 << self.exponent_bits
        return mantissa, exponent

    def join(self, mantissa: int, exponent: int) -> int:
        exponent_field = (exponent & ((1 << self.exponent_bits) - 1)) << self.mantissa_bits
        return exponent_field | (mantissa & self.mantissa_mask)


SFLOAT: Final = _Format("SFLOAT", mantissa_bits=12, exponent_bits=4)
FLOAT: Final = _Format("FLOAT", mantissa_bits=24, exponent_bits=8)

SFLOAT_NAN: Final = 0x07FF
SFLOAT_NRES: Final = 0x0800
SFLOAT_POSITIVE_INFINITY: Final = 0x07FE
SFLOAT_NEGATIVE_INFINITY: Final = 0x0802
SFLOAT_RESERVED: Final = 0x0801
FLOAT_NAN: Final = 0x007FFFFF
FLOAT_NRES: Final = 0x00800000
FLOAT_POSITIVE_INFINITY: Final = 0x007FFFFE
FLOAT_NEGATIVE_INFINITY: Final = 0x00800002
FLOAT_RESERVED: Final = 0x00800001

SFLOAT_SPECIAL_WORDS: Final = frozenset(SFLOAT.specials)
FLOAT_SPECIAL_WORDS: Final = frozenset(FLOAT.specials)


def _special(fmt: _Format, word: int) -> Special | None:
    return fmt.specials.get(word)


def _decode(fmt: _Format, word: int) -> float | None:
    if not 0 <= word <= fmt.word_mask:
        raise ValueError(f"{fmt.name} word {word:#x} out of range 0..{fmt.word_mask:#x}")
    if word in fmt.specials:
        return None
    mantissa, exponent = fmt.split(word)
    if exponent >= 0:
        return float(mantissa * 10**exponent)
    # Integer true division is correctly rounded: 1059 / 10 is the double nearest 105.9,
    # where 1059 * 0.1 would not be.
    divisor: int = 10**-exponent
    return mantissa / divisor


def sfloat_special(word: int) -> Special | None:
    """Which special value an SFLOAT word is, or None for an ordinary number."""
    return _special(SFLOAT, word)


def float_special(word: int) -> Special | None:
    """Which special value a FLOAT word is, or None for an ordinary number."""
    return _special(FLOAT, word)


def decode_sfloat(word: int) -> float | None:
    """A 16-bit SFLOAT word to its value; None for NaN, NRes, ±INF and reserved."""
    return _decode(SFLOAT, word)


def decode_float(word: int) -> float | None:
    """A 32-bit FLOAT word to its value; None for NaN, NRes, ±INF and reserved."""
    return _decode(FLOAT, word)


def _encode(fmt: _Format, value: float | None) -> int:
    if value is None or math.isnan(value):
        return fmt.mantissa_max  # the NaN word: not available
    if math.isinf(value):
        return fmt.mantissa_max - 1 if value > 0 else fmt.mantissa_max + 3
    # The shortest decimal that names this double: what the caller meant by 36.4.
    decimal = Decimal(repr(value))
    if decimal.is_zero():
        return 0
    exponent_of_digits = decimal.normalize().as_tuple().exponent
    assert isinstance(exponent_of_digits, int)
    # Integers go out with exponent 0 (120 mmHg is 0x0078) when the mantissa fits;
    # fractions with the fewest decimals that express them exactly.
    exponent = max(min(0, exponent_of_digits), fmt.exponent_min)
    # Skip exponents whose mantissa has more digits than the format holds (at most 2 tries).
    exponent = max(exponent, decimal.adjusted() - len(str(fmt.mantissa_max)) + 1)
    while exponent <= fmt.exponent_max:
        mantissa = int(decimal.scaleb(-exponent).to_integral_value(rounding=ROUND_HALF_EVEN))
        if fmt.mantissa_min <= mantissa <= fmt.mantissa_max:
            if mantissa == 0:
                return 0
            word = fmt.join(mantissa, exponent)
            if word not in fmt.specials:
                return word
            # Exponent 0 and a mantissa that would spell a special word: take the nearest
            # ordinary neighbour, either the largest plain mantissa here or the next exponent.
            return _nearest_plain(fmt, decimal, mantissa, exponent)
        exponent += 1
    raise ValueError(
        f"{value!r} is too large for {fmt.name}: the largest magnitude is "
        f"{fmt.mantissa_max}e{fmt.exponent_max}"
    )


def _nearest_plain(fmt: _Format, decimal: Decimal, mantissa: int, exponent: int) -> int:
    plain = fmt.mantissa_max - 2 if mantissa > 0 else fmt.mantissa_min + 3
    candidates = [(plain, exponent)]
    coarser = int(decimal.scaleb(-(exponent + 1)).to_integral_value(rounding=ROUND_HALF_EVEN))
    candidates.append((coarser, exponent + 1))
    best = min(candidates, key=lambda c: abs(Decimal(c[0]).scaleb(c[1]) - decimal))
    return fmt.join(*best)


def encode_sfloat(value: float | None) -> int:
    """A value to the SFLOAT word that represents it best.

    None and NaN give the NaN word (not available), ±inf the infinity words. A finite value
    never yields a special word; it is rounded half-even to the precision that fits.
    Raises ValueError for a finite value beyond ±2047e7.
    """
    return _encode(SFLOAT, value)


def encode_float(value: float | None) -> int:
    """A value to the FLOAT word that represents it best (see `encode_sfloat`)."""
    return _encode(FLOAT, value)


def sfloat_bytes(value: float | None) -> bytes:
    """The two little-endian bytes of `encode_sfloat(value)`, as sent on air."""
    return encode_sfloat(value).to_bytes(2, "little")


def float_bytes(value: float | None) -> bytes:
    """The four little-endian bytes of `encode_float(value)`, as sent on air."""
    return encode_float(value).to_bytes(4, "little")


# --------------------------------------------------------------------------------------------
# Date Time (org.bluetooth.characteristic.date_time, 0x2A08): 7 bytes
# --------------------------------------------------------------------------------------------

DATE_TIME_SIZE: Final = 7
UNKNOWN_TIME: Final = "unknown"
UnknownTime = Literal["unknown"]


class DateTimeError(ValueError):
    """A Date Time field with an impossible value; codecs turn it into a FrameError."""


def decode_date_time(data: bytes) -> datetime | None:
    """7 bytes to a naive local datetime; None when year, month or day is 0 ("not known").

    Raises DateTimeError (with what was expected) for an impossible field.
    """
    if len(data) != DATE_TIME_SIZE:
        raise DateTimeError(f"date time needs {DATE_TIME_SIZE} bytes, got {len(data)}")
    year = int.from_bytes(data[0:2], "little")
    month, day, hours, minutes, seconds = data[2], data[3], data[4], data[5], data[6]
    checks = (
        ("year", year, year == 0 or 1582 <= year <= 9999, "1582–9999 or 0 (not known)"),
        ("month", month, month <= 12, "1–12 or 0 (not known)"),
        ("day", day, day <= 31, "1–31 or 0 (not known)"),
        ("hours", hours, hours <= 23, "0–23"),
        ("minutes", minutes, minutes <= 59, "0–59"),
        ("seconds", seconds, seconds <= 59, "0–59"),
    )
    for name, got, ok, expected in checks:
        if not ok:
            raise DateTimeError(f"date time {name} {got}: expected {expected}")
    if year == 0 or month == 0 or day == 0:
        return None
    try:
        return datetime(year, month, day, hours, minutes, seconds)  # the device's local time
    except ValueError:
        raise DateTimeError(
            f"date time {year:04d}-{month:02d}-{day:02d} does not exist: "
            "expected a day within the month"
        ) from None


def encode_date_time(when: datetime | UnknownTime) -> bytes:
    """A datetime (its wall-clock fields; any zone is ignored) to 7 bytes; "unknown" -> zeros."""
    if when == UNKNOWN_TIME:
        return bytes(DATE_TIME_SIZE)
    assert isinstance(when, datetime)
    if not 1582 <= when.year <= 9999:
        raise ValueError(f"year {when.year} cannot be sent: expected 1582–9999")
    return when.year.to_bytes(2, "little") + bytes(
        (when.month, when.day, when.hour, when.minute, when.second)
    )
