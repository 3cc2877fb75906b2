"""PLX Spot-check 0x2A5E, Continuous 0x2A5F and Features 0x2A60."""

from __future__ import annotations

from datetime import datetime

import pytest

from station.devices.codecs.gatt import plx
from station.errors import FrameError
from station.models import Flag, Mode, PulseOximetry
from station.units import Unit


def expected(raw: str, codec: str = "ble:2a5e", **fields: object) -> PulseOximetry:
    values: dict[str, object] = {
        "unit_as_sent": Unit.PERCENT,
        "codec": codec,
        "codec_version": "1.0",
        "raw_hex": raw.replace(" ", "").lower(),
    }
    values.update(fields)
    return PulseOximetry.model_validate(values)


def spot(raw: str) -> list[PulseOximetry]:
    return plx.decode_spot_check(bytes.fromhex(raw))


def continuous(raw: str) -> list[PulseOximetry]:
    return plx.decode_continuous(bytes.fromhex(raw))


# ---- spot-check ------------------------------------------------------------------------------


def test_spot_check_minimal() -> None:
    raw = "00 6100 4800"  # 97 %, 72 /min
    assert spot(raw) == [expected(raw, spo2_percent=97.0, pulse_rate_bpm=72.0)]


def test_spot_check_maximal_stored_reading_with_clock_not_set() -> None:
    # every flag: timestamp, measurement status (b9 from storage), device status (b5), PAI 2.5,
    # device clock not set
    raw = "1F 6100 4800 E907 0B 17 09 00 00 0002 200000 19F0"
    assert spot(raw) == [
        expected(
            raw,
            spo2_percent=97.0,
            pulse_rate_bpm=72.0,
            perfusion_index_percent=2.5,
            measured_at=datetime(2025, 11, 23, 9, 0, 0),
            flags=(Flag.FROM_STORAGE, Flag.LOW_PERFUSION, Flag.CLOCK_NOT_SET),
        )
    ]


MEASUREMENT_BITS = [
    (5, Flag.MEASUREMENT_ONGOING),
    (6, Flag.EARLY_ESTIMATE),
    (7, Flag.VALIDATED),
    (8, Flag.FULLY_QUALIFIED),
    (9, Flag.FROM_STORAGE),
    (10, Flag.DEMO_DATA),
    (11, Flag.TESTING_DATA),
    (12, Flag.CALIBRATION_ONGOING),
    (13, Flag.MEASUREMENT_UNAVAILABLE),
    (14, Flag.QUESTIONABLE),
    (15, Flag.INVALID),
]


@pytest.mark.parametrize(("bit", "flag"), MEASUREMENT_BITS)
def test_every_measurement_status_bit(bit: int, flag: Flag) -> None:
    raw = f"02 6100 4800 {(1 << bit).to_bytes(2, 'little').hex()}"
    mode = {Flag.DEMO_DATA: Mode.DEMO, Flag.TESTING_DATA: Mode.TEST}.get(flag, Mode.REAL)
    assert spot(raw) == [
        expected(raw, spo2_percent=97.0, pulse_rate_bpm=72.0, flags=(flag,), mode=mode)
    ]


def test_reserved_measurement_status_bits_carry_no_flag() -> None:
    raw = "02 6100 4800 1F00"
    assert spot(raw)[0].flags == ()


DEVICE_BITS = [
    (0, Flag.EXTENDED_DISPLAY_UPDATE),
    (1, Flag.EQUIPMENT_MALFUNCTION),
    (2, Flag.SIGNAL_PROCESSING_IRREGULARITY),
    (3, Flag.INADEQUATE_SIGNAL),
    (4, Flag.POOR_SIGNAL),
    (5, Flag.LOW_PERFUSION),
    (6, Flag.ERRATIC_SIGNAL),
    (7, Flag.NON_PULSATILE_SIGNAL),
    (8, Flag.QUESTIONABLE_PULSE),
    (9, Flag.SIGNAL_ANALYSIS_ONGOING),
    (10, Flag.INTERFERENCE),
    (11, Flag.SENSOR_UNCONNECTED_TO_USER),
    (12, Flag.UNKNOWN_SENSOR),
    (13, Flag.SENSOR_DISPLACED),
    (14, Flag.SENSOR_MALFUNCTION),
    (15, Flag.SENSOR_DISCONNECTED),
]


@pytest.mark.parametrize(("bit", "flag"), DEVICE_BITS)
def test_every_device_and_sensor_status_bit(bit: int, flag: Flag) -> None:
    raw = f"04 6100 4800 {(1 << bit).to_bytes(3, 'little').hex()}"
    assert spot(raw) == [expected(raw, spo2_percent=97.0, pulse_rate_bpm=72.0, flags=(flag,))]


def test_both_demo_and_testing_is_test_mode() -> None:
    raw = "02 6100 4800 000C"
    assert spot(raw)[0].mode == Mode.TEST


def test_special_values_are_null() -> None:
    raw = "08 FF07 0008 FE07"  # NaN SpO2, NRes PR, +INF PAI
    assert spot(raw) == [
        expected(raw, spo2_percent=None, pulse_rate_bpm=None, perfusion_index_percent=None)
    ]


def test_spo2_above_100_is_flagged_implausible() -> None:
    raw = "00 6500 4800"  # 101 %
    assert spot(raw) == [
        expected(raw, spo2_percent=101.0, pulse_rate_bpm=72.0, flags=(Flag.IMPLAUSIBLE,))
    ]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "flags byte: need 1 bytes, got 0"),
        ("00 6100", "pulse rate (always present): need 5 bytes, got 3"),
        ("01 6100 4800 E907", "timestamp flag set: need 12 bytes, got 7"),
        ("02 6100 4800 00", "measurement status flag set: need 7 bytes, got 6"),
        ("04 6100 4800 0000", "device and sensor status flag set: need 8 bytes, got 7"),
        ("08 6100 4800", "pulse amplitude index flag set: need 7 bytes, got 5"),
        ("20 6100 4800", "flags 0x20 has reserved bits 0x20 set"),
        ("00 6100 4800 00", "1 byte(s) left over: flags 0x00 give 5 bytes, got 6"),
    ],
)
def test_spot_check_malformed(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        spot(raw)
    assert caught.value.problem == problem
    assert caught.value.codec == "ble:2a5e"


def test_spot_check_encoder() -> None:
    frame = plx.encode_spot_check(
        97,
        72,
        timestamp=datetime(2025, 11, 23, 9, 0, 0),
        measurement_status=[Flag.FROM_STORAGE],
        device_status=[Flag.LOW_PERFUSION],
        pai=2.5,
        clock_not_set=True,
    )
    assert frame == bytes.fromhex("1F 6100 4800 E907 0B 17 09 00 00 0002 200000 19F0")
    assert plx.encode_spot_check(None, None) == bytes.fromhex("00 FF07 FF07")
    with pytest.raises(ValueError, match="has no bit in measurement status"):
        plx.encode_spot_check(97, 72, measurement_status=[Flag.LOW_PERFUSION])


# ---- continuous ----------------------------------------------------------------------------


def test_continuous_reference_example() -> None:
    raw = "00 E8F3 84F3"
    assert continuous(raw) == [
        expected(raw, codec="ble:2a5f", spo2_percent=100.0, pulse_rate_bpm=90.0)
    ]


def test_continuous_maximal_normal_fast_slow() -> None:
    # normal 97/72, fast 96/74, slow 98/71, measurement status b14, device status b4, PAI 1.2
    raw = "1F 6100 4800 6000 4A00 6200 4700 0040 100000 0CF0"
    status = (Flag.QUESTIONABLE, Flag.POOR_SIGNAL)
    assert continuous(raw) == [
        expected(
            raw,
            codec="ble:2a5f",
            spo2_percent=97.0,
            pulse_rate_bpm=72.0,
            perfusion_index_percent=1.2,
            flags=status,
        ),
        expected(
            raw,
            codec="ble:2a5f",
            spo2_percent=96.0,
            pulse_rate_bpm=74.0,
            flags=(*status, Flag.FAST_RESPONSE),
        ),
        expected(
            raw,
            codec="ble:2a5f",
            spo2_percent=98.0,
            pulse_rate_bpm=71.0,
            flags=(*status, Flag.SLOW_RESPONSE),
        ),
    ]


def test_continuous_slow_only() -> None:
    raw = "02 6100 4800 6200 4700"
    assert continuous(raw) == [
        expected(raw, codec="ble:2a5f", spo2_percent=97.0, pulse_rate_bpm=72.0),
        expected(
            raw,
            codec="ble:2a5f",
            spo2_percent=98.0,
            pulse_rate_bpm=71.0,
            flags=(Flag.SLOW_RESPONSE,),
        ),
    ]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("00 6100 48", "SpO2 and pulse rate, normal (always present): need 5 bytes, got 4"),
        ("01 6100 4800", "SpO2PR-fast flag set: need 9 bytes, got 5"),
        ("02 6100 4800 6200", "SpO2PR-slow flag set: need 9 bytes, got 7"),
        ("04 6100 4800", "measurement status flag set: need 7 bytes, got 5"),
        ("08 6100 4800", "device and sensor status flag set: need 8 bytes, got 5"),
        ("10 6100 4800", "pulse amplitude index flag set: need 7 bytes, got 5"),
        ("80 6100 4800", "flags 0x80 has reserved bits 0x80 set"),
        ("00 6100 4800 0000", "2 byte(s) left over: flags 0x00 give 5 bytes, got 7"),
    ],
)
def test_continuous_malformed(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        continuous(raw)
    assert caught.value.problem == problem
    assert caught.value.codec == "ble:2a5f"


def test_continuous_encoder() -> None:
    frame = plx.encode_continuous(
        97,
        72,
        fast=(96, 74),
        slow=(98, 71),
        measurement_status=[Flag.QUESTIONABLE],
        device_status=[Flag.POOR_SIGNAL],
        pai=1.2,
    )
    assert frame == bytes.fromhex("1F 6100 4800 6000 4A00 6200 4700 0040 100000 0CF0")


# ---- features ------------------------------------------------------------------------------


def test_features_reference_example() -> None:
    raw = bytes.fromhex("A3 00 4010 800100")
    assert plx.decode_features(raw) == plx.PlxFeatures(
        raw_features=0x00A3,
        measurement_status_supported=True,
        device_status_supported=True,
        spot_check_storage_supported=False,
        spot_check_timestamp_supported=False,
        fast_response_supported=False,
        slow_response_supported=True,
        pai_supported=False,
        multiple_bonds_supported=True,
        raw_measurement_status_support=0x1040,
        supported_measurement_status=(Flag.EARLY_ESTIMATE, Flag.CALIBRATION_ONGOING),
        raw_device_status_support=0x000180,
        supported_device_status=(Flag.NON_PULSATILE_SIGNAL, Flag.QUESTIONABLE_PULSE),
        raw_hex="a30040108001" + "00",
    )
    assert (
        plx.encode_features(
            0xA0,
            measurement_status_support=[Flag.EARLY_ESTIMATE, Flag.CALIBRATION_ONGOING],
            device_status_support=[Flag.NON_PULSATILE_SIGNAL, Flag.QUESTIONABLE_PULSE],
        )
        == raw
    )


def test_features_minimal_all_optional_bits() -> None:
    assert plx.decode_features(bytes.fromhex("FC00")) == plx.PlxFeatures(
        raw_features=0xFC,
        measurement_status_supported=False,
        device_status_supported=False,
        spot_check_storage_supported=True,
        spot_check_timestamp_supported=True,
        fast_response_supported=True,
        slow_response_supported=True,
        pai_supported=True,
        multiple_bonds_supported=True,
        raw_measurement_status_support=None,
        supported_measurement_status=(),
        raw_device_status_support=None,
        supported_device_status=(),
        raw_hex="fc00",
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("01", "supported features (uint16): need 2 bytes, got 1"),
        ("0100 40", "measurement status support bit set: need 4 bytes, got 3"),
        ("0200 8001", "device and sensor status support bit set: need 5 bytes, got 4"),
        ("0000 00", "1 byte(s) left over: features 0x0000 give 2 bytes, got 3"),
    ],
)
def test_features_malformed(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        plx.decode_features(bytes.fromhex(raw))
    assert caught.value.problem == problem
