"""The exam station's keypad for typed vitals: which fields a tile takes (from the table of
vitals), the keys, and the typed text turned into numbers in the display unit. Pure state."""

from __future__ import annotations

from dataclasses import dataclass

from station.config import DisplaySection
from station.manual_entry import MANUAL_FIELDS, display_value
from station.models import Kind
from station.ui.presenters.format import TILE_KIND, TILE_TITLES, field_title

MAX_CHARS = 6  # "1234.5": no vital needs more digits on a keypad


@dataclass(frozen=True)
class KeypadView:
    title: str
    labels: tuple[str, ...]
    values: tuple[str, ...]
    active: int
    kind: Kind | None = None
    fields: tuple[str, ...] = ()


def open_pad(tile_key: str, display: DisplaySection) -> KeypadView | str:
    """The pad for a tile, or why that tile is not typed in (a banner message)."""
    kind = TILE_KIND.get(tile_key)
    if kind is None or kind not in MANUAL_FIELDS:
        return f"{TILE_TITLES.get(tile_key, tile_key)} is not typed in by hand"
    fields = MANUAL_FIELDS[kind]
    labels = tuple(f"{field_title(f, kind)} ({display_value(f, 0.0, display)[1]})" for f in fields)
    return KeypadView(
        title=f"Type {TILE_TITLES[tile_key].lower()}",
        labels=labels,
        values=("",) * len(labels),
        active=0,
        kind=kind,
        fields=fields,
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
    return KeypadView(pad.title, pad.labels, tuple(values), active, pad.kind, pad.fields)


def select(pad: KeypadView, index: int) -> KeypadView:
    return KeypadView(pad.title, pad.labels, pad.values, index, pad.kind, pad.fields)


def typed_values(pad: KeypadView) -> dict[str, float] | str:
    """The typed numbers by field (empty fields left out), or what is not a number."""
    assert pad.kind is not None
    shown: dict[str, float] = {}
    for name, text in zip(pad.fields, pad.values, strict=True):
        if not text:
            continue
        try:
            shown[name] = float(text)
        except ValueError:
            return f"{field_title(name, pad.kind)}: {text!r} is not a number"
    return shown
