"""Values typed on the exam station's keypad: shown in the station's display units, stored
canonical. Which kinds can be typed, with which fields, comes from the table of vitals.
"""

from __future__ import annotations

from collections.abc import Mapping

from station.config import DisplaySection
from station.models import READING_ADAPTER, AnyReading, Kind, Method, Mode
from station.rooming_data import Refusal
from station.units import (
    Unit,
    celsius_to_fahrenheit,
    cm_to_inch,
    fahrenheit_to_celsius,
    inch_to_cm,
    kg_to_lb,
    lb_to_kg,
)
from station.vitals import Converts, typed_kinds, vital_field, vital_kind
from station.workflow import RefusedError


def display_value(field: str, canonical: float, display: DisplaySection) -> tuple[float, str]:
    """A canonical value in the unit this station shows, with the unit label."""
    row = vital_field(field)
    if row.converts is Converts.TEMPERATURE and display.temperature_unit == "F":
        return celsius_to_fahrenheit(canonical), "°F"
    if row.converts is Converts.WEIGHT and display.weight_unit == "lb":
        return kg_to_lb(canonical), "lb"
    if row.converts is Converts.LENGTH and display.height_unit == "in":
        return cm_to_inch(canonical), "in"
    return canonical, row.symbol


def _to_canonical(field: str, shown: float, display: DisplaySection) -> tuple[float, Unit]:
    """A value typed in the display unit -> (canonical value, the unit it was typed in)."""
    row = vital_field(field)
    if row.converts is Converts.TEMPERATURE and display.temperature_unit == "F":
        return fahrenheit_to_celsius(shown), Unit.FAHRENHEIT
    if row.converts is Converts.WEIGHT and display.weight_unit == "lb":
        return lb_to_kg(shown), Unit.LB
    if row.converts is Converts.LENGTH and display.height_unit == "in":
        return inch_to_cm(shown), Unit.INCH
    return shown, row.unit


# What the keypad asks for, per kind entered by hand (fields in the display unit).
MANUAL_FIELDS: dict[Kind, tuple[str, ...]] = {k.kind: k.typed for k in typed_kinds()}
MANUAL_CODEC = "manual"


def manual_reading(
    kind: Kind, shown: Mapping[str, float], display: DisplaySection, mode: Mode = Mode.REAL
) -> AnyReading:
    """Build the reading for values typed on the keypad, converted to canonical units."""
    wanted = MANUAL_FIELDS.get(kind)
    if wanted is None:
        raise RefusedError(Refusal.NOT_MANUAL, f"{kind.value} is not entered by hand")
    optional = vital_kind(kind).optional_typed
    missing = [f for f in wanted if f not in shown and f not in optional]
    extra = sorted(set(shown) - set(wanted))
    if missing or extra:
        raise RefusedError(
            Refusal.INVALID_ENTRY,
            f"{kind.value} takes {', '.join(wanted)}",
            tuple(f"missing {m}" for m in missing) + tuple(f"unexpected {x}" for x in extra),
        )
    values: dict[str, float | None] = {}
    unit = Unit.SCORE
    for name, number in shown.items():
        values[name], unit = _to_canonical(name, number, display)
    common: dict[str, object] = {
        "unit_as_sent": unit,
        "codec": MANUAL_CODEC,
        "codec_version": "1",
        "method": Method.MANUAL,
        "mode": mode,
    }
    # The kind's own model: a table out of step is a KeyError, never another kind's model.
    return READING_ADAPTER.validate_python({**common, **values, "kind": kind})


