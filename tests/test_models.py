from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from station.models import (
    BloodPressure,
    Flag,
    Kind,
    Temperature,
    TemperatureSite,
    reading_from_json,
    reading_to_json,
)
from station.units import Unit


def bp(**kw: object) -> BloodPressure:
    base: dict[str, object] = dict(systolic_mmhg=120.0, diastolic_mmhg=80.0, unit_as_sent=Unit.MMHG,
                                   codec="ble:2a35", codec_version="1")
    base.update(kw)
    return BloodPressure(**base)  # type: ignore[arg-type]


def test_reading_round_trips_through_json_exactly() -> None:
    reading = bp(measured_at=datetime(2026, 11, 23, 9, 15, 2), pulse_rate_bpm=61.0,
                 flags=(Flag.IRREGULAR_PULSE, Flag.BODY_MOVEMENT), user_id=2, raw_hex="1E 7800")
    assert reading_from_json(reading_to_json(reading)) == reading


def test_flags_are_sorted_and_unique_so_equal_readings_compare_equal() -> None:
    a = bp(flags=(Flag.IRREGULAR_PULSE, Flag.BODY_MOVEMENT, Flag.IRREGULAR_PULSE))
    assert a.flags == (Flag.BODY_MOVEMENT, Flag.IRREGULAR_PULSE)
    assert a == bp(flags=(Flag.BODY_MOVEMENT, Flag.IRREGULAR_PULSE))


def test_raw_hex_is_normalised_to_lower_case_without_spaces() -> None:
    assert bp(raw_hex="1E 78 00").raw_hex == "1e7800"
    with pytest.raises(ValidationError, match="two per byte"):
        bp(raw_hex="1e7")


def test_reading_is_frozen_and_refuses_unknown_fields() -> None:
    reading = bp()
    with pytest.raises(ValidationError):
        reading.systolic_mmhg = 130.0  # type: ignore[misc]
    with pytest.raises(ValidationError, match="systolic"):
        bp(systolic=120)


def test_not_available_is_null_never_nan() -> None:
    assert bp(systolic_mmhg=None).systolic_mmhg is None
    with pytest.raises(ValidationError):
        bp(systolic_mmhg=float("nan"))


def test_flags_outside_the_closed_vocabulary_are_refused() -> None:
    with pytest.raises(ValidationError):
        bp(flags=("made_up_flag",))


def test_kind_selects_the_model_and_its_value_fields() -> None:
    reading = reading_from_json(
        '{"kind":"temperature","temperature_c":36.4,"site":"ear","unit_as_sent":"[degF]",'
        '"codec":"ble:2a1c","codec_version":"1"}'
    )
    assert reading == Temperature(temperature_c=36.4, site=TemperatureSite.EAR,
                                  unit_as_sent=Unit.FAHRENHEIT, codec="ble:2a1c",
                                  codec_version="1")
    assert reading.kind == Kind.TEMPERATURE
