"""Decoding quirks from firmware profiles: the Beurer BM85 decodes, strict everywhere else.

The BM85 frames and the values asserted are a peer's, recorded from a real BM85:
derdilla/blood-pressure-monitor-fl@17aba3d00f2e995c88f094702344adf494c5f031
app/test/features/bluetooth/logic/characteristics/ble_measurement_data_test.dart
(tests "decodes beurer sample data", "... of the second user", "... with a high pulse",
"decodes the beurer status byte"; PRs #735 and #737, decoded there with
`bigEndian: true, alwaysSendsUserId: true`). Each frame has flags 0x56 (bit 6 reserved by
the Blood Pressure Measurement definition in the GATT Specification Supplement), a user id
byte after the pulse rate although flag bit 3 is clear, and big-endian pulse and status.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from station.cli import main
from station.devices.codecs.gatt import blood_pressure
from station.devices.codecs.quirks import CodecQuirks
from station.devices.codecs.registry import get_codec
from station.devices.profiles import BUNDLED_DIR, DIRS_ENV, find_profile, load_profile
from station.errors import ConfigError, FrameError
from station.models import BloodPressure, Flag, reading_from_json, reading_to_json

PEER = (
    "derdilla/blood-pressure-monitor-fl@17aba3d00f2e995c88f094702344adf494c5f031 "
    "app/test/features/bluetooth/logic/characteristics/ble_measurement_data_test.dart"
)


def frame(*values: int) -> bytes:
    return bytes(values)


# (peer test, bytes as the peer wrote them, systolic, diastolic, pulse, user id, timestamp,
#  the status flags the peer asserts)
BM85 = [
    (
        "decodes beurer sample data",
        frame(86, 106, 0, 71, 0, 0, 0, 234, 7, 8, 11, 18, 31, 0, 0, 63, 0, 0, 0),
        106.0, 71.0, 63.0, 0, datetime(2026, 8, 11, 18, 31), (),
    ),
    (
        "decodes beurer sample data of the second user",
        frame(86, 113, 0, 73, 0, 0, 0, 234, 7, 8, 11, 20, 56, 0, 0, 65, 1, 0, 0),
        113.0, 73.0, 65.0, 1, datetime(2026, 8, 11, 20, 56), (),
    ),
    (
        # Status 0x0040 big-endian: bit 6, reserved in Measurement Status: no flag (the peer
        # asserts only the values).
        "decodes beurer sample data of the second user with a high pulse",
        frame(86, 119, 0, 70, 0, 0, 0, 234, 7, 8, 11, 20, 57, 0, 0, 87, 1, 0, 64),
        119.0, 70.0, 87.0, 1, datetime(2026, 8, 11, 20, 57), (),
    ),
    (
        # Status 0x0004 big-endian: irregular pulse, nothing else (the peer's assertions).
        "decodes the beurer status byte",
        frame(86, 118, 0, 80, 0, 0, 0, 234, 7, 8, 11, 20, 27, 0, 0, 60, 0, 0, 4),
        118.0, 80.0, 60.0, 0, datetime(2026, 8, 11, 20, 27), (Flag.IRREGULAR_PULSE,),
    ),
]  # fmt: skip


@pytest.fixture(autouse=True)
def only_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DIRS_ENV, str(BUNDLED_DIR))


def bm85_decode(raw: bytes) -> list[BloodPressure]:
    result = find_profile("beurer-bm85").decoder("ble:2a35")(raw)
    assert isinstance(result, list)
    return [r for r in result if isinstance(r, BloodPressure)]


@pytest.mark.parametrize(
    ("peer_test", "raw", "sys_", "dia", "pulse", "user", "at", "flags"),
    BM85,
    ids=[case[0] for case in BM85],
)
def test_bm85_frames_decode_under_its_profile_quirks(
    peer_test: str,
    raw: bytes,
    sys_: float,
    dia: float,
    pulse: float,
    user: int,
    at: datetime,
    flags: tuple[Flag, ...],
) -> None:
    (reading,) = bm85_decode(raw)
    assert (reading.systolic_mmhg, reading.diastolic_mmhg) == (sys_, dia)
    assert reading.pulse_rate_bpm == pulse  # little-endian would give 0x3F00: not a pulse
    assert reading.user_id == user
    assert reading.measured_at == at
    assert reading.flags == flags
    # The BM85 shows no mean arterial pressure and sends 0x0000: not available, not 0 mmHg.
    assert reading.mean_arterial_mmhg is None
    # The reading says how it was decoded; the bytes are the device's, unchanged.
    assert reading.quirks == (
        "reserved_flag_bits:0x40",
        "zero_is_unavailable:mean_arterial",
        "big_endian:pulse_rate",
        "present_without_flag:user_id",
        "big_endian:measurement_status",
    )
    assert reading.raw_hex == raw.hex()


@pytest.mark.parametrize("raw", [case[1] for case in BM85], ids=[case[0] for case in BM85])
def test_the_same_frames_are_refused_by_the_strict_codec(raw: bytes) -> None:
    """Strict is the default: without the profile, flag bit 6 is a reserved layout bit."""
    with pytest.raises(FrameError) as caught:
        blood_pressure.decode_measurement(raw)
    assert caught.value.problem == "flags 0x56 has reserved bits 0x40 set"


def test_a_spec_conformant_frame_under_the_bm85_profile_names_only_the_quirks_it_needed() -> None:
    """Nordic's "full" 0x2A35 vector (flags 0x1E: user id flagged, no reserved bit, MAP 120).

    NordicSemiconductor/Android-BLE-Common-Library@c078e2579fe5c0b6d29d70cd9fc9614ac7c0d355
    ble-common/src/test/.../bps/BloodPressureMeasurementDataCallbackTest.java
    onBloodPressureMeasurementReceived_full, with its pulse and status words byte-swapped as
    a BM85 sends them: 60 /min, user 1, status 0x0027.
    """
    raw = bytes.fromhex("1E 8A00 5800 7800 0000 04 11 14 29 3B 003C 01 0027")
    (reading,) = bm85_decode(raw)
    assert (reading.systolic_mmhg, reading.diastolic_mmhg, reading.mean_arterial_mmhg) == (
        138.0,
        88.0,
        120.0,
    )
    assert (reading.pulse_rate_bpm, reading.user_id) == (60.0, 1)
    assert reading.flags == (
        Flag.BODY_MOVEMENT,
        Flag.CUFF_TOO_LOOSE,
        Flag.IMPROPER_POSITION,
        Flag.IRREGULAR_PULSE,
    )
    assert reading.quirks == ("big_endian:pulse_rate", "big_endian:measurement_status")


def test_strict_decoding_names_no_quirk() -> None:
    raw = bytes.fromhex("1E 8A00 5800 7800 0000 04 11 14 29 3B 3C00 01 2700")  # Nordic "full"
    (reading,) = blood_pressure.decode_measurement(raw)
    assert reading.quirks == ()
    assert reading.pulse_rate_bpm == 60.0
    # A strict reading serialises exactly as before quirks existed (no "quirks" key) ...
    assert "quirks" not in reading.model_dump()
    # ... and a quirk reading carries them through JSON.
    (quirky,) = bm85_decode(BM85[0][1])
    assert reading_from_json(reading_to_json(quirky)).quirks == quirky.quirks


def test_a_quirk_frame_too_short_names_the_quirk_field() -> None:
    with pytest.raises(FrameError) as caught:
        bm85_decode(BM85[0][1][:-3])  # the user id and status cut off
    assert caught.value.problem == "user_id (quirk present_without_flag): need 17 bytes, got 16"


def test_reserved_bits_beyond_the_tolerated_ones_are_still_refused() -> None:
    raw = bytes([0xD6]) + BM85[0][1][1:]  # bits 6 and 7: the profile tolerates only 6
    with pytest.raises(FrameError) as caught:
        bm85_decode(raw)
    assert caught.value.problem == "flags 0xd6 has reserved bits 0x80 set"


def test_only_the_blood_pressure_codecs_take_quirks() -> None:
    assert get_codec("ble:2a35").decoder(None) is blood_pressure.decode_measurement  # type: ignore[union-attr]
    thermo = get_codec("ble:2a1c")
    quirks = CodecQuirks(big_endian=["temperature"], source="test")
    assert thermo.decoder(quirks) is thermo.decode  # type: ignore[union-attr]


# ---- profiles check -------------------------------------------------------------------------

BASE = """\
id = "acme-cuff"
vendor = "Acme"
model = "Cuff"
kinds = ["blood_pressure"]
transport = "ble"
codecs = ["ble:2a35", "ble:2a1c"]

[ble.match]
name_pattern = "^Acme"

[ble.measurements]
2a35 = "ble:2a35"
"""


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "acme-cuff.toml"
    path.write_text(BASE + extra)
    return path


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            '[quirks."ble:2a35"]\nbig_endain = ["pulse_rate"]\nsource = "x"\n',
            "quirks.\"ble:2a35\".big_endain: unknown quirk 'big_endain'; expected one of "
            "reserved_flag_bits, big_endian, present_without_flag, zero_is_unavailable "
            "(and source: where the deviation is documented)",
        ),
        (
            '[quirks."ble:2a35"]\nreserved_flag_bits = 0x41\nsource = "x"\n',
            'quirks."ble:2a35".reserved_flag_bits: 0x41 includes bits the specification '
            "defines (0x01); expected bits of the reserved mask 0xe0",
        ),
        (
            '[quirks."ble:2a35"]\npresent_without_flag = ["weight"]\nsource = "x"\n',
            "quirks.\"ble:2a35\".present_without_flag: ble:2a35 has no field 'weight' for this "
            "quirk; expected one of measurement_status, pulse_rate, timestamp, user_id",
        ),
        (
            '[quirks."ble:2a1c"]\nbig_endian = ["temperature"]\nsource = "x"\n',
            'quirks."ble:2a1c": ble:2a1c decodes strictly and takes no quirks; codecs that '
            "take quirks: ble:2a35, ble:2a36",
        ),
        (
            '[quirks."ble:2a36"]\nbig_endian = ["systolic"]\nsource = "x"\n',
            "quirks.\"ble:2a36\": codec 'ble:2a36' is not in codecs; add it there",
        ),
        (
            '[quirks."ble:2a35"]\nsource = "x"\n',
            'quirks."ble:2a35": names no quirk; expected one of reserved_flag_bits, '
            "big_endian, present_without_flag, zero_is_unavailable",
        ),
        (
            '[quirks."ble:2a35"]\nbig_endian = ["pulse_rate"]\n',
            'quirks."ble:2a35".source: missing: this key is required',
        ),
    ],
)
def test_station_profiles_check_refuses_a_bad_quirk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, problem: str
) -> None:
    path = write(tmp_path, extra)
    with pytest.raises(ConfigError) as raised:
        load_profile(path)
    assert raised.value.problems == [problem]
    assert main(["profiles", "check", str(path)]) == 2
    assert f"{path}: {problem}\n" in capsys.readouterr().err


def test_legacy_quirk_notes_are_read_as_known_issues(tmp_path: Path) -> None:
    path = write(tmp_path, '[[quirks]]\nfirmware = "all"\nnote = "Bonds with one host."\n')
    profile = load_profile(path)
    assert profile.quirks == {}
    assert [(i.firmware, i.note) for i in profile.known_issues] == [("all", "Bonds with one host.")]


def test_station_decode_with_a_profile(capsys: pytest.CaptureFixture[str]) -> None:
    raw = BM85[0][1].hex()
    assert main(["decode", "ble:2a35", raw]) == 2
    assert "reserved bits 0x40" in capsys.readouterr().err
    assert main(["decode", "ble:2a35", raw, "--profile", "beurer-bm85"]) == 0
    out = capsys.readouterr().out
    assert '"systolic_mmhg":106.0' in out and '"pulse_rate_bpm":63.0' in out
    assert '"big_endian:pulse_rate"' in out
    assert main(["decode", "serial:sma", "00", "--profile", "beurer-bm85"]) == 2
    assert "only frame codecs take quirks" in capsys.readouterr().err
