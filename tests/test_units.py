"""Unit conversions: exact factors, and every conversion round-trips."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from station import units

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def test_known_values() -> None:
    assert units.kpa_to_mmhg(16.0) == 16000.0 / 133.322387415
    assert math.isclose(units.kpa_to_mmhg(16.0), 120.00985, rel_tol=1e-7)
    assert units.fahrenheit_to_celsius(98.6) == (98.6 - 32.0) * 5.0 / 9.0
    assert math.isclose(units.fahrenheit_to_celsius(98.6), 37.0, rel_tol=1e-12)
    assert units.fahrenheit_to_celsius(32.0) == 0.0
    assert units.lb_to_kg(1.0) == 0.45359237
    assert units.inch_to_cm(1.0) == 2.54
    assert units.kelvin_to_celsius(310.15) == 310.15 - 273.15
    assert math.isclose(units.bmi_kg_m2(72.5, 178.0), 22.8822118, rel_tol=1e-7)


@given(finite)
def test_pressure_round_trip(value: float) -> None:
    assert math.isclose(units.mmhg_to_kpa(units.kpa_to_mmhg(value)), value, rel_tol=1e-12,
                        abs_tol=1e-9)


@given(finite)
def test_temperature_round_trip(value: float) -> None:
    assert math.isclose(units.celsius_to_fahrenheit(units.fahrenheit_to_celsius(value)), value,
                        rel_tol=1e-12, abs_tol=1e-9)


@given(finite)
def test_weight_round_trip(value: float) -> None:
    assert math.isclose(units.kg_to_lb(units.lb_to_kg(value)), value, rel_tol=1e-12,
                        abs_tol=1e-9)


@given(finite)
def test_length_round_trip(value: float) -> None:
    assert math.isclose(units.cm_to_inch(units.inch_to_cm(value)), value, rel_tol=1e-12,
                        abs_tol=1e-9)
