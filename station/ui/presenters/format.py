"""Formatting for the exam screens: values in the display units, rounded as shown (the
model never rounds), tile titles and layout from the table of vitals, the view models."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from station.config import DisplaySection
from station.locale import N_, Translate, no_translation
from station.manual_entry import display_value
from station.models import AnyReading, Kind
from station.rooming_data import (
    VitalEntry,
)
from station.units import celsius_to_fahrenheit
from station.validation import Severity
from station.vitals import tiles as vital_tiles
from station.vitals import vital_field, vital_kind


@dataclass(frozen=True)
class PatientRow:
    appointment_id: str
    time: str
    name: str
    birth_date: str
    # What the MA must see before tapping (station.names: hidden characters removed, mixed
    # alphabets, another patient of the same name); and the MRN when the names collide.
    notes: tuple[str, ...] = ()
    mrn: str = ""


@dataclass(frozen=True)
class Tile:
    key: str
    title: str
    value: str  # "124/80", "—" when empty
    unit: str
    source: str  # "cuff · 09:02", "typed · 09:03", ""
    notes: tuple[str, ...]  # flags and reasons in plain words
    severity: str  # "empty", "ok", "info", "warning", "critical", "rejected"
    editable: bool
    count: int  # readings of this kind taken (a retake keeps both)


@dataclass(frozen=True)
class TrayCard:
    item_id: int
    text: str
    reason: str


@dataclass(frozen=True)
class ReviewRow:
    entry_id: int
    title: str
    value: str
    source: str
    notes: tuple[str, ...]
    severity: str
    needs_ack: bool
    acknowledged: bool


@dataclass(frozen=True)
class ExamBanner:
    online: bool
    queued: int
    ma: str
    patient: str  # "ZZTEST, Alpha · 05/17/1970" once confirmed, else ""
    message: str


def fmt_number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def fmt_hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def fmt_dob(moment: datetime | object) -> str:
    return moment.strftime("%m/%d/%Y") if hasattr(moment, "strftime") else str(moment)


def _tile_layout() -> dict[str, Kind | None]:
    """The vitals screen's tiles in order: one per kind with a tile in the table of vitals,
    plus the computed ones (pulse after BP, BMI after height; None: no kind of its own)."""
    layout: dict[str, Kind | None] = {}
    for row in vital_tiles():
        assert row.tile is not None
        layout[row.tile] = row.kind
        if row.kind is Kind.BLOOD_PRESSURE:
            layout["pulse"] = None
        elif row.kind is Kind.BODY_HEIGHT:
            layout["bmi"] = None
    return layout


TILE_KIND: dict[str, Kind | None] = _tile_layout()
# Marked English (gettext msgids): the views translate them when they show them.
TILE_TITLES: dict[str, str] = {
    "pulse": N_("Pulse"),
    "bmi": N_("BMI"),
    **{row.tile: row.title for row in vital_tiles() if row.tile is not None},
}


def field_title(name: str, kind: Kind, _: Translate = no_translation) -> str:
    label = _(vital_field(name).label)
    title = label[:1].upper() + label[1:]
    if name in vital_kind(kind).optional_typed:
        return _("{field} (optional)").format(field=title)
    return title


def value_text(reading: AnyReading, display: DisplaySection) -> tuple[str, str]:
    """Screens round; the model never does. BP shows as SYS/DIA; every other kind its first
    required field, in the display unit, with the table's decimals."""
    row = vital_kind(reading.kind)
    if reading.kind is Kind.BLOOD_PRESSURE:
        sys_ = getattr(reading, "systolic_mmhg", None)
        dia = getattr(reading, "diastolic_mmhg", None)
        unit = vital_field("systolic_mmhg").symbol
        return f"{fmt_optional(sys_, 0)}/{fmt_optional(dia, 0)}", unit
    name = row.required[0]
    return fmt_in_display(name, getattr(reading, name, None), display, vital_field(name).decimals)


def fmt_optional(value: float | None, decimals: int) -> str:
    return "—" if value is None else fmt_number(value, decimals)


def fmt_in_display(
    name: str, value: float | None, display: DisplaySection, dp: int
) -> tuple[str, str]:
    if value is None:
        return "—", display_value(name, 0.0, display)[1]
    shown, unit = display_value(name, value, display)
    return fmt_number(shown, dp), unit


def entry_severity(entry: VitalEntry) -> str:
    if not entry.verdict.accepted:
        return "rejected"
    severities = [f.severity for f in entry.verdict.flags]
    for level in (Severity.CRITICAL, Severity.WARNING, Severity.INFO):
        if level in severities:
            return level.value
    return "ok"


_CELSIUS = re.compile(r"(\d+(?:\.\d+)?) °C")


def in_display_units(text: str, display: DisplaySection) -> str:
    """Flag words quote their thresholds in °C (the canonical unit); a °F screen shows them
    in °F, with one decimal ("38.0 °C" on a °F screen read as a different number)."""
    if display.temperature_unit != "F":
        return text
    return _CELSIUS.sub(lambda m: f"{celsius_to_fahrenheit(float(m.group(1))):.1f} °F", text)


def entry_notes(
    entry: VitalEntry, display: DisplaySection | None = None, said: Translate = no_translation
) -> tuple[str, ...]:
    """The flags and reasons in words; `said` translates the core's messages
    (station.locale.translate_message)."""
    notes = tuple(
        said(f.message if display is None else in_display_units(f.message, display))
        for f in entry.verdict.flags
    )
    if not entry.verdict.accepted:
        reasons = "; ".join(said(r) for r in entry.verdict.reasons)
        notes = (said(N_("not accepted")) + ": " + reasons, *notes)
    if entry.acknowledged:
        notes = (*notes, said(N_("acknowledged — clinician alerted")))
    return notes


def entry_source(entry: VitalEntry, _: Translate = no_translation) -> str:
    """Who sent it and when: the device's own time when it has one ("measured 12:01:56"),
    else the arrival time; a reading that waited in a tray is judged by when it was taken."""
    how = {
        "device": entry.device,
        "manual": _("typed"),
        "tray": _("{device} (from tray)").format(device=entry.device),
    }
    measured = entry.reading.measured_at
    if measured is not None and entry.source.value != "manual":
        at = fmt_measured(measured, entry.received_at)
        return f"{how[entry.source.value]} · " + _("measured {time}").format(time=at)
    return f"{how[entry.source.value]} · {fmt_hhmm(entry.received_at)}"


def fmt_measured(measured: datetime, like: datetime) -> str:
    """A device's time as the station shows it: a naive one is already local wall time; an
    aware one is shown in the zone of the station time `like`."""
    if measured.tzinfo is not None and like.tzinfo is not None:
        measured = measured.astimezone(like.tzinfo)
    return measured.strftime("%H:%M:%S")


def empty_unit(kind: Kind, display: DisplaySection) -> str:
    return display_value(vital_kind(kind).required[0], 0.0, display)[1]


# ------------------------------------------------------------------------------------------
# Lobby self check-in
# ------------------------------------------------------------------------------------------
