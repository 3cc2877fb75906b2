"""Blood Pressure Measurement 0x2A35, Intermediate Cuff Pressure 0x2A36, Feature 0x2A49."""

from __future__ import annotations

from datetime import datetime

import pytest

from station.devices.codecs.gatt import blood_pressure as bp
from station.errors import FrameError
from station.models import BloodPressure, CuffPressure, Flag
from station.units import Unit, kpa_to_mmhg


def expected(raw: str, **fields: object) -> BloodPressure:
    values: dict[str, object] = {
        "unit_as_sent": Unit.MMHG,
        "codec": "ble:2a35",
        "codec_version": "1.0",
        "raw_hex": raw.replace(" ", "").lower(),
        "mean_arterial_mmhg": None,
    }
    values.update(fields)
    return BloodPressure.model_validate(values)


def decode(raw: str) -> list[BloodPressure]:
    return bp.decode_measurement(bytes.fromhex(raw))


# ---- the reference's worked examples (regression) --------------------------------------------


def test_reference_example_exponent_minus_one_is_implausible_but_exact() -> None:
    raw = "00 BDF0 0B00 9FF0"
    assert decode(raw) == [
        expected(
            raw,
            systolic_mmhg=18.9,
            diastolic_mmhg=11.0,
            mean_arterial_mmhg=15.9,
            flags=(Flag.IMPLAUSIBLE,),  # 18.9 mmHg systolic: no such patient
        )
    ]


def test_reference_example_114_all_three() -> None:
    raw = "00 7200 7200 7200"
    assert decode(raw) == [
        expected(
            raw,
            systolic_mmhg=114.0,
            diastolic_mmhg=114.0,
            mean_arterial_mmhg=114.0,
            flags=(Flag.IMPLAUSIBLE,),  # systolic not above diastolic
        )
    ]


# ---- minimal and maximal frames ---------------------------------------------------------------


def test_minimal_frame_mmhg() -> None:
    raw = "00 7800 5000 5D00"  # 120 / 80 / 93
    assert decode(raw) == [
        expected(raw, systolic_mmhg=120.0, diastolic_mmhg=80.0, mean_arterial_mmhg=93.0)
    ]


def test_maximal_frame_every_field_every_status_bit() -> None:
    # flags 0x1E: timestamp, pulse, user, status; status 0x0027 = b0 b1 b2 b5, range 0
    raw = "1E 7800 5000 5D00 E907 0B 17 09 1E 05 4800 03 2700"
    assert decode(raw) == [
        expected(
            raw,
            systolic_mmhg=120.0,
            diastolic_mmhg=80.0,
            mean_arterial_mmhg=93.0,
            measured_at=datetime(2025, 11, 23, 9, 30, 5),
            pulse_rate_bpm=72.0,
            user_id=3,
            flags=(
                Flag.BODY_MOVEMENT,
                Flag.CUFF_TOO_LOOSE,
                Flag.IRREGULAR_PULSE,
                Flag.IMPROPER_POSITION,
            ),
        )
    ]


def test_kpa_frame_converts_to_mmhg_with_the_exact_factor() -> None:
    # 16.0 / 10.7 / 12.5 kPa with exponent -1, flags b0
    raw = "01 A0F0 6BF0 7DF0"
    assert decode(raw) == [
        expected(
            raw,
            unit_as_sent=Unit.KPA,
            systolic_mmhg=kpa_to_mmhg(16.0),
            diastolic_mmhg=kpa_to_mmhg(10.7),
            mean_arterial_mmhg=kpa_to_mmhg(12.5),
        )
    ]
    assert decode(raw)[0].systolic_mmhg == pytest.approx(120.00985, abs=1e-5)


@pytest.mark.parametrize(
    ("status", "flags"),
    [
        ("0100", (Flag.BODY_MOVEMENT,)),
        ("0200", (Flag.CUFF_TOO_LOOSE,)),
        ("0400", (Flag.IRREGULAR_PULSE,)),
        ("0800", (Flag.PULSE_RATE_ABOVE_RANGE,)),
        ("1000", (Flag.PULSE_RATE_BELOW_RANGE,)),
        ("1800", ()),  # pulse range 3 is reserved: no meaning, no flag
        ("2000", (Flag.IMPROPER_POSITION,)),
        ("C0FF", ()),  # reserved bits 6–15 carry no meaning
        ("0000", ()),
    ],
)
def test_every_status_bit(status: str, flags: tuple[Flag, ...]) -> None:
    raw = f"10 7800 5000 5D00 {status}"
    assert decode(raw) == [
        expected(
            raw, systolic_mmhg=120.0, diastolic_mmhg=80.0, mean_arterial_mmhg=93.0, flags=flags
        )
    ]


def test_nan_values_are_null_and_user_255_is_unknown() -> None:
    raw = "0C FF07 FF07 0008 FF07 FF"  # pulse + user; NaN, NaN, NRes; pulse NaN; user unknown
    assert decode(raw) == [
        expected(
            raw,
            systolic_mmhg=None,
            diastolic_mmhg=None,
            mean_arterial_mmhg=None,
            pulse_rate_bpm=None,
            user_id=None,
        )
    ]


def test_timestamp_with_unknown_date_is_null() -> None:
    raw = "02 7800 5000 5D00 0000 00 00 0A 00 00"
    assert decode(raw)[0].measured_at is None


# ---- malformed frames ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "flags byte: need 1 bytes, got 0"),
        (
            "00 7800 5000",
            "systolic, diastolic and mean arterial pressure (always present): need 7 bytes, got 5",
        ),
        ("02 7800 5000 5D00", "timestamp flag set: need 14 bytes, got 7"),
        ("04 7800 5000 5D00 48", "pulse rate flag set: need 9 bytes, got 8"),
        ("08 7800 5000 5D00", "user id flag set: need 8 bytes, got 7"),
        ("10 7800 5000 5D00 27", "measurement status flag set: need 9 bytes, got 8"),
        ("20 7800 5000 5D00", "flags 0x20 has reserved bits 0x20 set"),
        ("00 7800 5000 5D00 00", "1 byte(s) left over: flags 0x00 give 7 bytes, got 8"),
        (
            "02 7800 5000 5D00 E907 0D 01 00 00 00",
            "date time month 13: expected 1–12 or 0 (not known)",
        ),
    ],
)
def test_malformed_frames_say_what_and_where(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode(raw)
    assert caught.value.problem == problem
    assert caught.value.codec == "ble:2a35"
    assert caught.value.raw == bytes.fromhex(raw)


# ---- intermediate cuff pressure -------------------------------------------------------------


def test_intermediate_reference_example() -> None:
    raw = "00 D7F0 0000 0000"
    assert bp.decode_intermediate(bytes.fromhex(raw)) == [
        CuffPressure(
            cuff_pressure_mmhg=21.5,
            unit_as_sent=Unit.MMHG,
            codec="ble:2a36",
            codec_version="1.0",
            raw_hex="00d7f000000000",
        )
    ]


def test_intermediate_kpa_with_status_and_user() -> None:
    raw = "19 28F0 FF07 FF07 02 0100"  # kPa + user + status: 4.0 kPa, user 2, body movement
    frame = bytes.fromhex(raw)
    assert bp.decode_intermediate(frame) == [
        CuffPressure(
            cuff_pressure_mmhg=kpa_to_mmhg(4.0),
            unit_as_sent=Unit.KPA,
            user_id=2,
            flags=(Flag.BODY_MOVEMENT,),
            codec="ble:2a36",
            codec_version="1.0",
            raw_hex=frame.hex(),
        )
    ]  # cuff pressure is never checked for plausibility: it is not a vital sign


def test_intermediate_needs_its_own_codec_name_in_errors() -> None:
    with pytest.raises(FrameError) as caught:
        bp.decode_intermediate(bytes.fromhex("02 D7F0 0000 0000"))
    assert caught.value.codec == "ble:2a36"
    assert caught.value.problem == "timestamp flag set: need 14 bytes, got 7"


# ---- encoders (the simulator's side) --------------------------------------------------------


def test_encoder_builds_the_maximal_frame() -> None:
    frame = bp.encode_measurement(
        120,
        80,
        93,
        timestamp=datetime(2025, 11, 23, 9, 30, 5),
        pulse_rate_bpm=72,
        user_id=3,
        status=(
            Flag.BODY_MOVEMENT,
            Flag.CUFF_TOO_LOOSE,
            Flag.IRREGULAR_PULSE,
            Flag.IMPROPER_POSITION,
        ),
    )
    assert frame == bytes.fromhex("1E 7800 5000 5D00 E907 0B 17 09 1E 05 4800 03 2700")


@pytest.mark.parametrize(
    "flag", [Flag.PULSE_RATE_ABOVE_RANGE, Flag.PULSE_RATE_BELOW_RANGE, Flag.IMPROPER_POSITION]
)
def test_encoder_status_round_trips(flag: Flag) -> None:
    frame = bp.encode_measurement(130.5, 85, None, kpa=False, status=[flag])
    (reading,) = bp.decode_measurement(frame)
    assert reading.flags == (flag,)
    assert (reading.systolic_mmhg, reading.diastolic_mmhg, reading.mean_arterial_mmhg) == (
        130.5,
        85.0,
        None,
    )


def test_encoder_kpa_and_unknown_timestamp() -> None:
    frame = bp.encode_measurement(16.0, 10.7, 12.5, kpa=True, timestamp="unknown")
    assert frame == bytes.fromhex("03 1000 6BF0 7DF0 00000000000000")
    assert bp.decode_measurement(frame)[0].measured_at is None


def test_encoder_refuses_a_flag_with_no_status_bit() -> None:
    with pytest.raises(ValueError, match="has no bit in blood pressure measurement status"):
        bp.encode_measurement(120, 80, 93, status=[Flag.FROM_STORAGE])


def test_intermediate_encoder_sends_nan_for_unused_fields() -> None:
    assert bp.encode_intermediate(21.5) == bytes.fromhex("00 D7F0 FF07 FF07")


# ---- Blood Pressure Feature 0x2A49 ----------------------------------------------------------


def test_feature_every_bit() -> None:
    assert bp.decode_feature(bytes.fromhex("3F00")) == bp.BloodPressureFeature(
        raw_features=0x3F,
        body_movement_detection=True,
        cuff_fit_detection=True,
        irregular_pulse_detection=True,
        pulse_rate_range_detection=True,
        measurement_position_detection=True,
        multiple_bonds=True,
        raw_hex="3f00",
    )


def test_feature_none_and_encoder() -> None:
    assert bp.decode_feature(bytes.fromhex("0400")) == bp.BloodPressureFeature(
        raw_features=0x04,
        body_movement_detection=False,
        cuff_fit_detection=False,
        irregular_pulse_detection=True,
        pulse_rate_range_detection=False,
        measurement_position_detection=False,
        multiple_bonds=False,
        raw_hex="0400",
    )
    assert bp.encode_feature(irregular_pulse_detection=True) == bytes.fromhex("0400")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("04", "feature bits (uint16): need 2 bytes, got 1"),
        ("040000", "1 byte(s) left over: the feature field give 2 bytes, got 3"),
    ],
)
def test_feature_wrong_length(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        bp.decode_feature(bytes.fromhex(raw))
    assert caught.value.problem == problem
