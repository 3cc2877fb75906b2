"""Damage costs only the damaged frame: for every serial codec, a stream of good frames with
one frame corrupted, cut short, or with noise before it, decodes to the good readings minus
(at most) that frame's own reading, and the damage is reported as a BadFrame."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from station.devices.codecs.base import BadFrame, StreamCodec
from station.devices.codecs.registry import get_codec
from station.devices.simulators import frames as f

START = datetime(2026, 3, 2, 10, 0, 0)


@dataclass(frozen=True)
class Case:
    codec: str
    frames: list[bytes]
    corrupt: Callable[[bytes], bytes]  # one frame -> the same frame, damaged
    # The reading that damage to frame i costs (Nonin packets: frames 0–20, up to HR-D LSB).
    reading_of: Callable[[int], int | None] = lambda i: i
    # The reading that noise just before frame i costs (Nonin: frames 1–20 lose their place).
    noise_costs: Callable[[int], int | None] = lambda i: None


def flip_last(frame: bytes) -> bytes:
    return frame[:-1] + bytes([frame[-1] ^ 0x5A])


def nonin_packet_case(codec: str, packet: Callable[[int, int], bytes]) -> Case:
    data = b"".join(packet(70 + i, 95 + i % 4) for i in range(4))
    five = [data[i : i + 5] for i in range(0, len(data), 5)]
    return Case(
        codec,
        five,
        flip_last,
        # The reading is made at frame 21 (HR-D LSB, index 20) from frames 0–20 of its packet
        # (Nonin 9560 specification p. 8 / p. 12: SpO2-D frame 9, HR-D frames 20–21).
        reading_of=lambda i: i // 25 if i % 25 <= 20 else None,
        noise_costs=lambda i: i // 25 if 1 <= i % 25 <= 20 else None,
    )


CASES = [
    nonin_packet_case("serial:nonin-2", f.nonin2_packet),
    nonin_packet_case("serial:nonin-7", f.nonin7_packet),
    Case(
        "serial:nonin-8",
        [f.nonin8_frame(70 + i, 95 + i % 4) for i in range(6)],
        lambda fr: fr[:2] + bytes([120]) + fr[3:],
    ),
    Case(
        "serial:masimo-ascii",
        [f.masimo_line(START + timedelta(seconds=i), 95 + i % 4, 70 + i, 2.5) for i in range(6)],
        lambda fr: fr.replace(b"SPO2=0", b"SPO2=x"),
    ),
    Case(
        "serial:sma", [f.sma_reply(70.0 + i) for i in range(6)], lambda fr: fr[:1] + b"#" + fr[2:]
    ),
    Case(
        "serial:mt-sics",
        [f.mt_sics_reply(70.0 + i) for i in range(6)],
        lambda fr: fr.replace(b"S S", b"S X"),
    ),
    Case("serial:suntech-advantage", [f.suntech_cuff(150 - 10 * i) for i in range(6)], flip_last),
]
NOISE = bytes([0x00, 0x13, 0x7F, 0xFF, 0x20])


def decode(codec: str, data: bytes) -> tuple[list[object], list[BadFrame]]:
    spec = get_codec(codec)
    assert isinstance(spec, StreamCodec)
    events = spec.new_decoder().feed(data)
    readings = [e for e in events if hasattr(e, "kind")]
    return readings, [e for e in events if isinstance(e, BadFrame)]


def positions(case: Case) -> list[int]:
    # Damage inside the stream, with good frames after it (a codec may wait for the next one).
    n = len(case.frames)
    return sorted({1, 2, 3, n // 2, n - 3})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.codec)
def test_a_corrupted_frame_loses_only_its_own_reading(case: Case) -> None:
    good, bad = decode(case.codec, b"".join(case.frames))
    assert not bad
    for k in positions(case):
        damaged = [*case.frames[:k], case.corrupt(case.frames[k]), *case.frames[k + 1 :]]
        readings, reported = decode(case.codec, b"".join(damaged))
        lost = case.reading_of(k)
        assert readings == [r for i, r in enumerate(good) if i != lost], k
        assert len(reported) == 1, (k, reported)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.codec)
def test_a_truncated_frame_loses_only_its_own_reading(case: Case) -> None:
    good, _ = decode(case.codec, b"".join(case.frames))
    for k in positions(case):
        cut = case.frames[k][: max(2, len(case.frames[k]) // 2)]
        readings, reported = decode(
            case.codec, b"".join([*case.frames[:k], cut, *case.frames[k + 1 :]])
        )
        lost = case.reading_of(k)
        assert readings == [r for i, r in enumerate(good) if i != lost], k
        assert reported, k


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.codec)
def test_noise_between_frames_loses_nothing(case: Case) -> None:
    good, _ = decode(case.codec, b"".join(case.frames))
    for k in positions(case):
        readings, reported = decode(
            case.codec, b"".join([*case.frames[:k], NOISE, *case.frames[k:]])
        )
        lost = case.noise_costs(k)
        assert readings == [r for i, r in enumerate(good) if i != lost], k
        assert reported, k
