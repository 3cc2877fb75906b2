"""Weight Measurement 0x2A9D and Weight Scale Feature 0x2A9E."""

from __future__ import annotations

from datetime import datetime

import pytest

from station.devices.codecs.gatt import weight as ws
from station.errors import FrameError
from station.models import BodyWeight, Flag
from station.units import Unit, inch_to_cm, lb_to_kg


def expected(raw: str, **fields: object) -> BodyWeight:
    values: dict[str, object] = {
        "unit_as_sent": Unit.KG,
        "codec": "ble:2a9d",
        "codec_version": "1.0",
        "raw_hex": raw.replace(" ", "").lower(),
    }
    values.update(fields)
    return BodyWeight.model_validate(values)


def decode(raw: str) -> list[BodyWeight]:
    return ws.decode_measurement(bytes.fromhex(raw))


def test_reference_example() -> None:
    raw = "00 A438"
    assert decode(raw) == [expected(raw, weight_kg=72.5)]


def test_maximal_si_frame() -> None:
    # 72.5 kg, 2025-11-23 08:00:00, user 1, BMI 23.7, height 1.750 m
    raw = "0E A438 E907 0B 17 08 00 00 01 ED00 D606"
    assert decode(raw) == [
        expected(
            raw,
            weight_kg=72.5,
            measured_at=datetime(2025, 11, 23, 8, 0, 0),
            user_id=1,
            bmi_kg_m2=23.7,
            height_cm=175.0,
        )
    ]


def test_maximal_imperial_frame() -> None:
    # 159.84 lb (0.01 lb steps), user unknown, BMI 23.6, height 68.9 in
    raw = "0D 703E FF EC00 B102"
    assert decode(raw) == [
        expected(
            raw,
            unit_as_sent=Unit.LB,
            weight_kg=lb_to_kg(159.84),
            user_id=None,
            bmi_kg_m2=23.6,
            height_cm=inch_to_cm(68.9),
        )
    ]


def test_unsuccessful_measurement_is_null_and_flagged() -> None:
    raw = "00 FFFF"
    assert decode(raw) == [expected(raw, weight_kg=None, flags=(Flag.MEASUREMENT_UNSUCCESSFUL,))]


def test_zero_weight_is_flagged_implausible() -> None:
    raw = "00 0000"
    assert decode(raw) == [expected(raw, weight_kg=0.0, flags=(Flag.IMPLAUSIBLE,))]


def test_largest_weight_both_unit_systems() -> None:
    assert decode("00 FEFF")[0].weight_kg == 327.67
    assert decode("01 FEFF")[0].weight_kg == lb_to_kg(655.34)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "flags byte: need 1 bytes, got 0"),
        ("00 A4", "weight (uint16, always present): need 3 bytes, got 2"),
        ("02 A438 E907 0B", "timestamp flag set: need 10 bytes, got 6"),
        ("04 A438", "user id flag set: need 4 bytes, got 3"),
        ("08 A438 ED00", "BMI and height flag set: need 7 bytes, got 5"),
        ("10 A438", "flags 0x10 has reserved bits 0x10 set"),
        ("00 A438 0000", "2 byte(s) left over: flags 0x00 give 3 bytes, got 5"),
    ],
)
def test_malformed_frames(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        decode(raw)
    assert caught.value.problem == problem
    assert caught.value.codec == "ble:2a9d"


def test_encoder() -> None:
    frame = ws.encode_measurement(
        72.5, timestamp=datetime(2025, 11, 23, 8, 0, 0), user_id=1, bmi=23.7, height=1.75
    )
    assert frame == bytes.fromhex("0E A438 E907 0B 17 08 00 00 01 ED00 D606")
    assert ws.encode_measurement(159.84, imperial=True, user_id=255, bmi=23.6, height=68.9) == (
        bytes.fromhex("0D 703E FF EC00 B102")
    )
    assert ws.encode_measurement(None) == bytes.fromhex("00 FFFF")
    with pytest.raises(ValueError, match="give both or neither"):
        ws.encode_measurement(70, bmi=22.0)
    with pytest.raises(ValueError, match="weight 400 cannot be sent"):
        ws.encode_measurement(400)


# ---- Weight Scale Feature ------------------------------------------------------------------


def test_feature_all_supported_finest_resolution() -> None:
    # b0 b1 b2, weight code 7 (bits 3–6), height code 3 (bits 7–9): 0x1BF
    assert ws.decode_feature(bytes.fromhex("BF010000")) == ws.WeightScaleFeature(
        raw_features=0x1BF,
        timestamp_supported=True,
        multiple_users_supported=True,
        bmi_supported=True,
        weight_resolution_kg=0.005,
        weight_resolution_lb=0.01,
        height_resolution_m=0.001,
        height_resolution_in=0.1,
        raw_hex="bf010000",
    )
    assert ws.encode_feature(
        timestamp_supported=True,
        multiple_users_supported=True,
        bmi_supported=True,
        weight_resolution_code=7,
        height_resolution_code=3,
    ) == bytes.fromhex("BF010000")


def test_feature_nothing_specified() -> None:
    assert ws.decode_feature(bytes(4)) == ws.WeightScaleFeature(
        raw_features=0,
        timestamp_supported=False,
        multiple_users_supported=False,
        bmi_supported=False,
        weight_resolution_kg=None,
        weight_resolution_lb=None,
        height_resolution_m=None,
        height_resolution_in=None,
        raw_hex="00000000",
    )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("40000000", "weight resolution code 8 is reserved"),
        ("00020000", "height resolution code 4 is reserved"),
        ("000000", "feature bits (uint32): need 4 bytes, got 3"),
        ("0000000000", "1 byte(s) left over: the feature field give 4 bytes, got 5"),
    ],
)
def test_feature_malformed(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        ws.decode_feature(bytes.fromhex(raw))
    assert caught.value.problem == problem
