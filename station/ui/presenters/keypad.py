"""The exam station's keypad for typed vitals: which fields a tile takes (from the table of
vitals), the keys, and the typed text turned into numbers in the display unit. Pure state."""

from __future__ import annotations

from dataclasses import dataclass, replace

from station.config import DisplaySection
from station.locale import Translate, no_translation
from station.manual_entry import MANUAL_FIELDS, display_value
from station.models import Kind
from station.ui.presenters.format import TILE_KIND, TILE_TITLES, field_title
from station.vitals import vital_kind

MAX_CHARS = 6  # "1234.5": no vital needs more digits on a keypad


@dataclass(frozen=True)
class KeypadView:
    title: str
    labels: tuple[str, ...]
    values: tuple[str, ...]
    active: int
    kind: Kind | None = None
    fields: tuple[str, ...] = ()
    name: str = ""  # the tile's title: "Respiratory rate"
    error: str = ""  # what was wrong with the last OK, in the field's words; "" when none


def open_pad(
    tile_key: str, display: DisplaySection, _: Translate = no_translation
) -> KeypadView | str:
    """The pad for a tile, or why that tile is not typed in (a banner message)."""
    kind = TILE_KIND.get(tile_key)
    if kind is None or kind not in MANUAL_FIELDS:
        title = _(TILE_TITLES[tile_key]) if tile_key in TILE_TITLES else tile_key
        return _("{vital} is not typed in by hand").format(vital=title)
    fields = MANUAL_FIELDS[kind]
    labels = tuple(
        f"{field_title(f, kind, _)} ({display_value(f, 0.0, display)[1]})" for f in fields
    )
    name = _(TILE_TITLES[tile_key])
    return KeypadView(
        title=_("Type {vital}").format(vital=name.lower()),
        labels=labels,
        values=("",) * len(labels),
        active=0,
        kind=kind,
        fields=fields,
        name=name,
    )


def press(pad: KeypadView, key: str) -> KeypadView:
    """One key: a digit, ".", "Del" or "next" (the next field)."""
    values = list(pad.values)
    current = values[pad.active]
    active = pad.active
    if key == "Del":
        values[active] = current[:-1]
    elif key == "next":
        active = (active + 1) % len(values)
    elif key == "." and "." in current:
        return pad
    elif len(current) < MAX_CHARS:
        values[active] = current + key
    return replace(pad, values=tuple(values), active=active, error="")


def select(pad: KeypadView, index: int) -> KeypadView:
    return replace(pad, active=index)


def refused(pad: KeypadView, error: str, field: str | None = None) -> KeypadView:
    """The pad again with what was wrong, the named field active (nothing is attached)."""
    active = pad.fields.index(field) if field in pad.fields else pad.active
    return replace(pad, error=error, active=active)


def missing_field(pad: KeypadView) -> str | None:
    """The first field that must be typed and is empty, else None."""
    assert pad.kind is not None
    optional = vital_kind(pad.kind).optional_typed
    for name, text in zip(pad.fields, pad.values, strict=True):
        if not text and name not in optional:
            return name
    return None


def typed_values(pad: KeypadView, _: Translate = no_translation) -> dict[str, float] | str:
    """The typed numbers by field (empty fields left out), or what is not a number."""
    assert pad.kind is not None
    shown: dict[str, float] = {}
    for name, text in zip(pad.fields, pad.values, strict=True):
        if not text:
            continue
        try:
            shown[name] = float(text)
        except ValueError:
            field = field_title(name, pad.kind, _)
            return _("{field}: “{text}” is not a number").format(field=field, text=text)
    return shown
