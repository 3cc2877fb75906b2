"""IEEE 11073 SFLOAT/FLOAT and Bluetooth Date Time: exact values, special words, round-trips."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from station.devices.codecs.ieee11073 import (
    FLOAT_NAN,
    FLOAT_NEGATIVE_INFINITY,
    FLOAT_NRES,
    FLOAT_POSITIVE_INFINITY,
    FLOAT_RESERVED,
    FLOAT_SPECIAL_WORDS,
    SFLOAT_NAN,
    SFLOAT_NEGATIVE_INFINITY,
    SFLOAT_NRES,
    SFLOAT_POSITIVE_INFINITY,
    SFLOAT_RESERVED,
    SFLOAT_SPECIAL_WORDS,
    DateTimeError,
    Special,
    decode_date_time,
    decode_float,
    decode_sfloat,
    encode_date_time,
    encode_float,
    encode_sfloat,
    float_bytes,
    float_special,
    sfloat_bytes,
    sfloat_special,
)

# ---- decode: exact values ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "value"),
    [
        (0xF423, 105.9),  # the reference's worked example
        (0x0078, 120.0),  # 120 mmHg: exponent 0, NOT biased (a biased decoder reads 0x8078)
        (0xF0BD, 18.9),
        (0x000B, 11.0),
        (0xF09F, 15.9),
        (0xF3E8, 100.0),  # 1000e-1
        (0xF384, 90.0),
        (0xF0D7, 21.5),
        (0x0000, 0.0),
        (0x0FFF, -1.0),  # mantissa -1
        (0x0801 + 0x1000, -20470.0),  # mantissa -2047 with exponent 1 is an ordinary number
        (0x17FF, 20470.0),  # 0x7FF under exponent 1 is not NaN
        (0x77FD, 2045e7),
        (0x8001, 1e-8),
        (0x8FFF, -1e-8),
        (0xE0FA, 2.5),  # 250e-2
        (0x0800 + 0x1000, -20480.0),  # mantissa -2048, exponent 1
    ],
)
def test_sfloat_decodes_exact_values(word: int, value: float) -> None:
    assert decode_sfloat(word) == value


def test_120_mmhg_is_78_00_on_air() -> None:
    assert sfloat_bytes(120) == bytes.fromhex("7800")
    assert decode_sfloat(int.from_bytes(bytes.fromhex("7800"), "little")) == 120.0


@pytest.mark.parametrize(
    ("word", "special"),
    [
        (SFLOAT_NAN, Special.NAN),
        (SFLOAT_NRES, Special.NRES),
        (SFLOAT_POSITIVE_INFINITY, Special.POSITIVE_INFINITY),
        (SFLOAT_NEGATIVE_INFINITY, Special.NEGATIVE_INFINITY),
        (SFLOAT_RESERVED, Special.RESERVED),
    ],
)
def test_sfloat_special_words_are_not_numbers(word: int, special: Special) -> None:
    assert decode_sfloat(word) is None
    assert sfloat_special(word) == special


@pytest.mark.parametrize(
    ("word", "special"),
    [
        (FLOAT_NAN, Special.NAN),
        (FLOAT_NRES, Special.NRES),
        (FLOAT_POSITIVE_INFINITY, Special.POSITIVE_INFINITY),
        (FLOAT_NEGATIVE_INFINITY, Special.NEGATIVE_INFINITY),
        (FLOAT_RESERVED, Special.RESERVED),
    ],
)
def test_float_special_words_are_not_numbers(word: int, special: Special) -> None:
    assert decode_float(word) is None
    assert float_special(word) == special


def test_special_word_sets_are_exactly_the_five() -> None:
    assert {0x07FF, 0x0800, 0x07FE, 0x0802, 0x0801} == SFLOAT_SPECIAL_WORDS
    assert {0x007FFFFF, 0x00800000, 0x007FFFFE, 0x00800002, 0x00800001} == FLOAT_SPECIAL_WORDS
    assert sfloat_special(0x0078) is None


@pytest.mark.parametrize(
    ("word", "value"),
    [
        (0xFF00016C, 36.4),  # the reference's 0x2A1C example: 364e-1
        (0xFF000172, 37.0),
        (0x00000000, 0.0),
        (0x00FFFFFF, -1.0),
        (0xFE000E42, 36.5),  # 3650e-2
        (0x7F7FFFFD, 8388605e127),
        (0x80000001, 1e-128),
        (0x017FFFFF, 83886070.0),  # 0x7FFFFF under exponent 1 is a number
    ],
)
def test_float_decodes_exact_values(word: int, value: float) -> None:
    assert decode_float(word) == value


@pytest.mark.parametrize("word", [-1, 0x10000])
def test_sfloat_word_out_of_range_is_refused(word: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        decode_sfloat(word)


# ---- encode: chosen representation ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "word"),
    [
        (120, 0x0078),
        (105.9, 0xF423),
        (36.4, 0xF16C),
        (0.0, 0x0000),
        (-0.0, 0x0000),
        (-1, 0x0FFF),
        (2045, 0x07FD),
        (20470, 0x17FF),  # needs mantissa 2047 with exponent 1: allowed, not a special word
        (12345, 0x14D2),  # 1234e1: 1234.5 rounds half-even to 1234
        (12355, 0x14D4),  # 1236e1: 1235.5 rounds half-even to 1236
        (1e-9, 0x0000),  # below the finest step: zero
        (None, SFLOAT_NAN),
        (math.nan, SFLOAT_NAN),
        (math.inf, SFLOAT_POSITIVE_INFINITY),
        (-math.inf, SFLOAT_NEGATIVE_INFINITY),
    ],
)
def test_sfloat_encodes(value: float | None, word: int) -> None:
    assert encode_sfloat(value) == word


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # At exponent 0 these would spell a special word; the nearest ordinary value is sent.
        (2046, 2045.0),
        (2047, 2045.0),
        (2048, 2050.0),
        (-2046, -2045.0),
        (-2047, -2045.0),
        (-2048, -2050.0),
        (2045.6, 2045.0),
    ],
)
def test_sfloat_encoder_steps_around_special_words(value: float, expected: float) -> None:
    word = encode_sfloat(value)
    assert word not in SFLOAT_SPECIAL_WORDS
    assert decode_sfloat(word) == expected


def test_float_encoder_steps_around_special_words() -> None:
    for value in (8388606, 8388607, -8388606, -8388607, -8388608):
        word = encode_float(value)
        assert word not in FLOAT_SPECIAL_WORDS
        decoded = decode_float(word)
        assert decoded is not None
        assert abs(decoded - value) <= 3


@pytest.mark.parametrize("value", [2048e7, -2049e7, 1e12])
def test_sfloat_too_large_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="too large for SFLOAT"):
        encode_sfloat(value)


def test_float_bytes_are_little_endian() -> None:
    assert float_bytes(36.4) == bytes.fromhex("6c0100ff")
    assert float_bytes(None) == bytes.fromhex("ffff7f00")


# ---- property tests per value class ---------------------------------------------------------


def test_every_ordinary_sfloat_word_round_trips_its_value() -> None:
    # Exhaustive: all 65,531 ordinary words.
    for word in range(0x10000):
        value = decode_sfloat(word)
        if value is None:
            continue
        again = encode_sfloat(value)
        assert again not in SFLOAT_SPECIAL_WORDS, hex(word)
        assert decode_sfloat(again) == value, hex(word)


@settings(max_examples=2000, derandomize=True)
@given(st.integers(0, 0xFFFFFFFF))
def test_every_ordinary_float_word_round_trips_its_value(word: int) -> None:
    value = decode_float(word)
    if value is None:
        assert word in FLOAT_SPECIAL_WORDS
        return
    again = encode_float(value)
    assert again not in FLOAT_SPECIAL_WORDS
    assert decode_float(again) == value


@settings(max_examples=500, derandomize=True)
@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_sfloat_decimal_values_round_trip_exactly(mantissa: int, exponent: int) -> None:
    value = mantissa / 10**-exponent if exponent < 0 else float(mantissa * 10**exponent)
    assert decode_sfloat(encode_sfloat(value)) == value


@settings(max_examples=500, derandomize=True)
@given(st.integers(-8388605, 8388605), st.integers(-20, 20))
def test_float_decimal_values_round_trip_exactly(mantissa: int, exponent: int) -> None:
    value = mantissa / 10**-exponent if exponent < 0 else float(mantissa * 10**exponent)
    assert decode_float(encode_float(value)) == value


@settings(max_examples=500, derandomize=True)
@given(st.integers(-2045, 2045))
def test_sfloat_integers_go_out_with_exponent_zero(value: int) -> None:
    assert encode_sfloat(value) == value & 0x0FFF


@settings(max_examples=1500, derandomize=True)
@given(st.floats(min_value=-2.04e10, max_value=2.04e10, allow_nan=False))
def test_sfloat_encoder_never_emits_a_special_word_and_rounds_closely(value: float) -> None:
    word = encode_sfloat(value)
    assert word not in SFLOAT_SPECIAL_WORDS
    decoded = decode_sfloat(word)
    assert decoded is not None
    # Rounding only happens when the mantissa has at least 3 digits: relative error < 0.25 %;
    # below the finest step (1e-8) the error is at most half that step.
    assert abs(decoded - value) <= max(abs(value) * 0.0025, 0.5e-8) * (1 + 1e-12)


@settings(max_examples=1500, derandomize=True)
@given(st.floats(min_value=-8.3e133, max_value=8.3e133, allow_nan=False))
def test_float_encoder_never_emits_a_special_word_and_rounds_closely(value: float) -> None:
    word = encode_float(value)
    assert word not in FLOAT_SPECIAL_WORDS
    decoded = decode_float(word)
    assert decoded is not None
    assert abs(decoded - value) <= max(abs(value) * 6e-7, 0.5e-128) * (1 + 1e-12)


# ---- Date Time -------------------------------------------------------------------------------


def test_date_time_worked_example() -> None:
    assert decode_date_time(bytes.fromhex("E20704110F3300")) == datetime(2018, 4, 17, 15, 51, 0)


@pytest.mark.parametrize(
    "data",
    ["0000040F0F3300", "E20700110F3300", "E20704000F3300", "00000000000000"],
)
def test_date_time_with_an_unknown_part_is_none(data: str) -> None:
    assert decode_date_time(bytes.fromhex(data)) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("E2070D110F3300", "date time month 13: expected 1–12 or 0 (not known)"),
        ("E20704200F3300", "date time day 32: expected 1–31 or 0 (not known)"),
        ("E2070411183300", "date time hours 24: expected 0–23"),
        ("E20704110F3C00", "date time minutes 60: expected 0–59"),
        ("E20704110F333C", "date time seconds 60: expected 0–59"),
        ("01000411000000", "date time year 1: expected 1582–9999 or 0 (not known)"),
        (
            "E207021E000000",
            "date time 2018-02-30 does not exist: expected a day within the month",
        ),
        ("E20704110F33", "date time needs 7 bytes, got 6"),
    ],
)
def test_impossible_date_time_is_refused(data: str, message: str) -> None:
    with pytest.raises(DateTimeError) as caught:
        decode_date_time(bytes.fromhex(data))
    assert str(caught.value) == message


@settings(max_examples=300, derandomize=True)
@given(st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31)))
def test_date_time_round_trips_to_the_second(when: datetime) -> None:
    assert decode_date_time(encode_date_time(when)) == when.replace(microsecond=0)


def test_unknown_date_time_encodes_as_zeros() -> None:
    assert encode_date_time("unknown") == bytes(7)


def test_date_time_before_1582_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="expected 1582–9999"):
        encode_date_time(datetime(1200, 1, 1))
