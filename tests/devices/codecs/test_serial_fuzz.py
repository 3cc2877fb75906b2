"""Seeded fuzz of every serial codec: random and mutated streams raise nothing, any chunking
gives the same result, and every reading that comes out is plausible or flagged."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from station.devices.codecs.base import BadFrame, StreamCodec
from station.devices.codecs.registry import all_codecs
from station.devices.codecs.serial.events import DeviceEvent
from station.models import Flag
from station.validation import plausibility_problems

from .test_serial_captures import CAPTURES, load_capture

SERIAL = sorted(name for name, spec in all_codecs().items() if name.startswith("serial:"))
# Derandomized and without an example database: the same cases on every machine, no files.
FUZZ = settings(
    derandomize=True,
    database=None,
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def seed_stream(name: str) -> bytes:
    protocol = name.removeprefix("serial:")
    return b"".join(load_capture(p) for p in sorted((CAPTURES / protocol).glob("*.hex")))


def check(name: str, data: bytes, cuts: list[int]) -> None:
    spec = all_codecs()[name]
    assert isinstance(spec, StreamCodec)
    whole = spec.new_decoder().feed(data)
    decoder = spec.new_decoder()
    chunked = []
    start = 0
    for cut in [*sorted({min(c, len(data)) for c in cuts}), len(data)]:
        chunked.extend(decoder.feed(data[start:cut]))
        start = cut
    assert chunked == whole
    for event in whole:
        if isinstance(event, BadFrame | DeviceEvent):
            continue
        assert event.codec == name
        assert (
            not plausibility_problems(event)
            or Flag.IMPLAUSIBLE in event.flags
            or (event.kind == "cuff_pressure")
        ), event


@pytest.mark.parametrize("name", SERIAL)
@FUZZ
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_random_bytes_raise_nothing(name: str, data: bytes, cuts: list[int]) -> None:
    check(name, data, cuts)


@pytest.mark.parametrize("name", SERIAL)
@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.sampled_from("xid"), st.integers(0, 10_000), st.integers(0, 255)),
        min_size=1,
        max_size=6,
    ),
    cuts=st.lists(st.integers(0, 4000), max_size=8),
)
def test_mutated_streams_raise_nothing(
    name: str, edits: list[tuple[str, int, int]], cuts: list[int]
) -> None:
    data = bytearray(seed_stream(name))
    for op, where, value in edits:
        at = where % max(1, len(data))
        if op == "x" and data:
            data[at] ^= value or 1
        elif op == "i":
            data.insert(at, value)
        elif data:
            del data[at]
    check(name, bytes(data), cuts)
