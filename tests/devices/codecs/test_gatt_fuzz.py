"""Seeded fuzz of every GATT codec: only FrameError escapes, nothing impossible goes unflagged."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from station.devices.codecs import gatt
from station.devices.codecs.base import FrameCodec, FrameResult
from station.devices.codecs.gatt import (
    blood_pressure,
    current_time,
    nonin,
    plx,
    racp,
    thermometer,
    weight,
)
from station.devices.codecs.quirks import CodecQuirks, QuirkName
from station.devices.profiles import find_profile
from station.errors import FrameError
from station.models import Flag, Kind, TemperatureSite, reading_from_json, reading_to_json
from station.validation import PLAUSIBLE_LIMITS

WHEN = datetime(2025, 11, 23, 9, 30, 5)

# Valid frames per codec (minimal and maximal), the starting points for mutation.
SEEDS: dict[str, list[bytes]] = {
    "ble:2a35": [
        blood_pressure.encode_measurement(120, 80, 93),
        blood_pressure.encode_measurement(
            16.0,
            10.7,
            12.5,
            kpa=True,
            timestamp=WHEN,
            pulse_rate_bpm=72,
            user_id=3,
            status=[Flag.BODY_MOVEMENT, Flag.PULSE_RATE_BELOW_RANGE],
        ),
    ],
    "ble:2a36": [
        blood_pressure.encode_intermediate(21.5),
        blood_pressure.encode_intermediate(
            4.0, kpa=True, timestamp=WHEN, user_id=1, status=[Flag.CUFF_TOO_LOOSE]
        ),
    ],
    "ble:2a49": [blood_pressure.encode_feature(body_movement_detection=True)],
    "ble:2a1c": [
        thermometer.encode_measurement(36.4),
        thermometer.encode_measurement(
            98.6, fahrenheit=True, timestamp=WHEN, site=TemperatureSite.EAR
        ),
    ],
    "ble:2a1d": [thermometer.encode_type(TemperatureSite.MOUTH)],
    "ble:2a9d": [
        weight.encode_measurement(72.5),
        weight.encode_measurement(
            159.84, imperial=True, timestamp=WHEN, user_id=2, bmi=23.6, height=68.9
        ),
    ],
    "ble:2a9e": [weight.encode_feature(bmi_supported=True, weight_resolution_code=7)],
    "ble:2a5e": [
        plx.encode_spot_check(97, 72),
        plx.encode_spot_check(
            97,
            72,
            timestamp=WHEN,
            measurement_status=[Flag.FROM_STORAGE],
            device_status=[Flag.LOW_PERFUSION],
            pai=2.5,
            clock_not_set=True,
        ),
    ],
    "ble:2a5f": [
        plx.encode_continuous(97, 72),
        plx.encode_continuous(
            97,
            72,
            fast=(96, 74),
            slow=(98, 71),
            measurement_status=[Flag.QUESTIONABLE],
            device_status=[Flag.POOR_SIGNAL],
            pai=1.2,
        ),
    ],
    "ble:2a60": [
        plx.encode_features(
            0xFC,
            measurement_status_support=[Flag.EARLY_ESTIMATE],
            device_status_support=[Flag.POOR_SIGNAL],
        )
    ],
    "ble:2a52": [
        racp.encode_request(racp.OpCode.REPORT_RECORDS),
        racp.encode_request(
            racp.OpCode.DELETE_RECORDS,
            racp.Operator.RANGE,
            filter_type=racp.FilterType.SEQUENCE_NUMBER,
            low=1,
            high=9,
        ),
        racp.encode_response(racp.OpCode.REPORT_RECORDS, racp.ResponseCode.SUCCESS),
        racp.encode_count_response(3),
    ],
    "ble:2a2b": [current_time.encode(WHEN, manual_time_update=True)],
    "ble:nonin-3230": [nonin.encode(98, 64, pai_percent=3.15, counter=7)],
}

FRAME_CODECS = {spec.name: spec for spec in gatt.CODECS if isinstance(spec, FrameCodec)}


def test_every_codec_has_seeds_and_every_seed_decodes() -> None:
    assert set(SEEDS) == set(FRAME_CODECS)
    for name, frames in SEEDS.items():
        for frame in frames:
            FRAME_CODECS[name].decode(frame)  # raises if a seed is not a valid frame


def check(
    spec: FrameCodec, frame: bytes, decode: Callable[[bytes], FrameResult] | None = None
) -> bool:
    """Decode one frame; returns whether it decoded. Asserts the codec's promises."""
    try:
        result = (decode or spec.decode)(frame)
    except FrameError as exc:
        assert exc.raw == frame
        assert exc.codec == spec.name
        assert exc.problem
        return False
    if isinstance(result, BaseModel):
        assert getattr(result, "raw_hex") == frame.hex()  # noqa: B009 - any result model
        assert getattr(result, "codec") == spec.name  # noqa: B009
        return True
    assert result, "a codec that decodes returns at least one reading"
    for reading in result:
        assert reading.codec == spec.name
        assert reading.codec_version == spec.version
        assert reading.raw_hex == frame.hex()
        if decode is None:
            assert reading.quirks == ()  # strict decoding never claims a quirk
        for quirk in reading.quirks:
            assert quirk.split(":")[0] in set(QuirkName), quirk
        assert reading_from_json(reading_to_json(reading)) == reading
        if reading.kind == Kind.CUFF_PRESSURE:
            continue  # live cuff pressure is not a vital sign and is never rejected
        for name, limit in PLAUSIBLE_LIMITS.items():
            value = getattr(reading, name, None)
            if value is not None and not limit.contains(value):
                assert Flag.IMPLAUSIBLE in reading.flags, (name, value, frame.hex())
    return True


def mutate(rng: random.Random, frame: bytes) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        action = rng.randrange(5)
        if action == 0 and data:  # flip one byte
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif action == 1 and data:  # truncate
            del data[rng.randrange(len(data)) :]
        elif action == 2:  # extend
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif action == 3 and data:  # new flags / op code byte
            data[0] = rng.randrange(256)
        elif data:  # flip one bit
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seeded_fuzz_random_and_mutated(name: str) -> None:
    spec = FRAME_CODECS[name]
    rng = random.Random(f"fuzz-{name}")  # fixed seed per codec: the same frames every run
    decoded = 0
    for _ in range(2000):
        frame = bytes(rng.randrange(256) for _ in range(rng.randint(0, 32)))
        decoded += check(spec, frame)
    for _ in range(3000):
        decoded += check(spec, mutate(rng, rng.choice(SEEDS[name])))
    assert decoded > 0, "the fuzz must reach the decoding paths, not only the errors"


@pytest.mark.parametrize("name", sorted(SEEDS))
@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_hypothesis_fuzz_structured(name: str, data: st.DataObject) -> None:
    # Hypothesis shrinks any failure to a small frame; structure: a seed with edits, or noise.
    spec = FRAME_CODECS[name]
    seed = data.draw(st.sampled_from(SEEDS[name]))
    frame = data.draw(
        st.one_of(
            st.binary(max_size=40),
            st.tuples(
                st.integers(0, 255), st.binary(min_size=len(seed) - 1, max_size=len(seed) + 4)
            ).map(lambda t: bytes((t[0],)) + t[1]),
            st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), max_size=4).map(
                lambda edits: bytes(dict(edits).get(i, b) for i, b in enumerate(seed))
            ),
        )
    )
    check(spec, frame)


# ---- decoding under quirks ------------------------------------------------------------------

# Every quirk each codec supports, all at once: the widest deviation from strict decoding.
EVERY_QUIRK: dict[str, CodecQuirks] = {
    spec.name: CodecQuirks(
        reserved_flag_bits=spec.quirk_support.reserved_flag_mask,
        big_endian=sorted(spec.quirk_support.big_endian) or None,
        present_without_flag=sorted(spec.quirk_support.present_without_flag) or None,
        zero_is_unavailable=sorted(spec.quirk_support.zero_is_unavailable) or None,
        source="fuzz",
    )
    for spec in FRAME_CODECS.values()
    if spec.quirk_support is not None
}
# BM85 captures (derdilla/blood-pressure-monitor-fl, see test_gatt_quirks.py) as extra seeds.
BM85_SEEDS = [
    bytes.fromhex("566a0047000000ea07080b121f00003f000000"),
    bytes.fromhex("56 7600 5000 0000 ea07080b141b00 003c 00 0004"),
]


def quirk_cases() -> list[tuple[str, str]]:
    cases = [(name, "every") for name in sorted(EVERY_QUIRK)]
    return [*cases, ("ble:2a35", "beurer-bm85")]


def test_the_quirk_codecs_are_fuzzed() -> None:
    assert sorted(EVERY_QUIRK) == ["ble:2a35", "ble:2a36"]


@pytest.mark.parametrize(("name", "quirks"), quirk_cases())
def test_seeded_fuzz_under_quirks(name: str, quirks: str) -> None:
    spec = FRAME_CODECS[name]
    decode = (
        find_profile("beurer-bm85").decoder(name)
        if quirks == "beurer-bm85"
        else spec.decoder(EVERY_QUIRK[name])
    )
    rng = random.Random(f"fuzz-quirks-{name}-{quirks}")
    seeds = [*SEEDS[name], *BM85_SEEDS]
    decoded = 0
    for _ in range(2000):
        frame = bytes(rng.randrange(256) for _ in range(rng.randint(0, 32)))
        decoded += check(spec, frame, decode)
    for _ in range(3000):
        decoded += check(spec, mutate(rng, rng.choice(seeds)), decode)
    assert decoded > 0
