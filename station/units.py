"""Unit conversions into the canonical units, all in one place, with the exact factors."""

from __future__ import annotations

from enum import StrEnum


class Unit(StrEnum):
    """Units as a device sent them, spelled as UCUM codes (what FHIR and integrators use)."""

    MMHG = "mm[Hg]"
    KPA = "kPa"
    PER_MIN = "/min"
    PERCENT = "%"
    CELSIUS = "Cel"
    FAHRENHEIT = "[degF]"
    KELVIN = "K"
    KG = "kg"
    LB = "[lb_av]"
    CM = "cm"
    INCH = "[in_i]"
    KG_M2 = "kg/m2"
    SCORE = "{score}"  # UCUM annotation for a unitless score (pain 0–10)


# 1 kPa in mmHg: 1 mmHg = 133.322387415 Pa (ISO 80000-4 / BIPM conventional value).
PA_PER_MMHG = 133.322387415
# The international avoirdupois pound and inch are exact by definition (1959 agreement).
KG_PER_LB = 0.45359237
CM_PER_INCH = 2.54
KELVIN_OFFSET = 273.15


def kpa_to_mmhg(kpa: float) -> float:
    return kpa * 1000.0 / PA_PER_MMHG


def mmhg_to_kpa(mmhg: float) -> float:
    return mmhg * PA_PER_MMHG / 1000.0


def fahrenheit_to_celsius(deg_f: float) -> float:
    return (deg_f - 32.0) * 5.0 / 9.0


def celsius_to_fahrenheit(deg_c: float) -> float:
    return deg_c * 9.0 / 5.0 + 32.0


def kelvin_to_celsius(kelvin: float) -> float:
    return kelvin - KELVIN_OFFSET


def lb_to_kg(lb: float) -> float:
    return lb * KG_PER_LB


def kg_to_lb(kg: float) -> float:
    return kg / KG_PER_LB


def inch_to_cm(inch: float) -> float:
    return inch * CM_PER_INCH


def cm_to_inch(cm: float) -> float:
    return cm / CM_PER_INCH


def bmi_kg_m2(weight_kg: float, height_cm: float) -> float:
    """Body-mass index from weight and height (WHO definition: kg / m²)."""
    height_m = height_cm / 100.0
    return weight_kg / (height_m * height_m)
