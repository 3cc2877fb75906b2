"""Test-only window introspection: what is on screen, where, written to a JSON file.

With `STATION_UI_PROBE=/path/file.json` in its environment, `station ui` and `station demo`
(the demo wirings, fake patients only) write a snapshot of the window to that file whenever
it changes: the showing screen, the message overlay, and every visible label, button and
text field with its text, kv id and rectangle in window pixels (origin top left, as X11 and
xdotool count) — plus the focused field and the on-screen keyboard. An outside driver
(tests/ui/test_real_window.py: Xvfb + xdotool) aims its taps from it, so no test hard-codes
a pixel. Off unless the variable is set; `station run` (the production service) never reads
it, because what is on screen includes patients' names.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kivy.clock import Clock
from kivy.core.window import Window
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView
from kivy.uix.textinput import TextInput
from kivy.uix.vkeyboard import VKeyboard

ENV = "STATION_UI_PROBE"
# A widget whose class name says it is a keyboard or keypad (or that sets `probe_keyboard =
# True`) counts as an on-screen keyboard — Kivy's docked VKeyboard, or a pad of our own: the
# field being typed must stay clear of it.
KEYBOARD_WORDS = ("keyboard", "keypad")

Rect = tuple[float, float, float, float]  # left, top, width, height in window pixels


def probe_path() -> Path | None:
    """Where to write the snapshots, or None (the default: no probe)."""
    value = os.environ.get(ENV, "")
    return Path(value) if value else None


def _content_shift_y() -> float:
    """How far up the window draws its content: Kivy slides everything (the docked keyboard
    too) up by the modelview matrix's y translation while a keyboard is shown
    (softinput_mode), so on-screen positions differ from widget positions by this much."""
    matrix = Window.render_context["modelview_mat"].get()
    return float(matrix[13])


def _is_keyboard(widget: Any) -> bool:
    name = type(widget).__name__.lower()
    return (
        isinstance(widget, VKeyboard)
        or bool(getattr(widget, "probe_keyboard", False))
        or any(word in name for word in KEYBOARD_WORDS)
    )


def _kind(widget: Any) -> str | None:
    if _is_keyboard(widget):
        return "keyboard"
    if isinstance(widget, TextInput):
        return "field"
    if isinstance(widget, ButtonBehavior):
        return "button"
    if isinstance(widget, Label):
        return "label"
    return None


def _intersect(a: Rect, b: Rect) -> Rect:
    left, top = max(a[0], b[0]), max(a[1], b[1])
    right, bottom = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    return (left, top, max(0.0, right - left), max(0.0, bottom - top))


@dataclass(frozen=True)
class _Context:
    """What a widget inherits from its ancestors while the tree is walked."""

    clip: Rect  # the part of the window its ancestors let it show in
    scroller: Rect | None = None  # the view of the ScrollView it is in
    in_keyboard: bool = False


class Snapshotter:
    """Turns the live widget tree into the probe's JSON-ready dict (on the Kivy thread)."""

    def __init__(self, ui: Any) -> None:
        self.ui = ui
        self._shift = 0.0
        self._names: dict[int, str] = {}

    def _rect(self, widget: Any) -> Rect:
        x0, y0 = widget.to_window(widget.x, widget.y)
        x1, y1 = widget.to_window(widget.right, widget.top)
        return self._window_rect(x0, y0, x1, y1)

    def _window_rect(self, x0: float, y0: float, x1: float, y1: float) -> Rect:
        """Kivy window coordinates (origin bottom left) -> X11's pixels (origin top left)."""
        scale_x = Window.system_size[0] / max(1, Window.width)
        scale_y = Window.system_size[1] / max(1, Window.height)
        left, right = min(x0, x1) * scale_x, max(x0, x1) * scale_x
        bottom = (min(y0, y1) + self._shift) * scale_y
        top = (max(y0, y1) + self._shift) * scale_y
        return (left, Window.system_size[1] - top, right - left, top - bottom)

    def _ids(self) -> dict[int, str]:
        names: dict[int, str] = {}
        for widget in self.ui.root.walk():
            for name, ref in getattr(widget, "ids", {}).items():
                names.setdefault(id(getattr(ref, "__self__", ref)), name)
        return names

    def snapshot(self) -> dict[str, Any]:
        self._shift = _content_shift_y()
        self._names = self._ids()
        width, height = Window.system_size
        widgets: list[dict[str, Any]] = []
        context = _Context(clip=(0.0, 0.0, float(width), float(height)))
        for top_level in reversed(Window.children):  # drawn first to drawn last (on top)
            self._collect(top_level, context, widgets)
        focused = [w for w in widgets if w.get("focus")]
        message = self.ui.root.ids.message
        return {
            "mode": self.ui.mode,
            "screen": self.ui.sm.current,  # what is showing (the presenter may be ahead)
            "window": {"width": width, "height": height},
            # Frames drawn so far: a driver waits for geometry that holds over a few of them.
            "frames": Clock.frames_displayed,
            "root": _rounded(self._rect(self.ui.root)),
            "content_shift_y": self._shift,
            "message": message.text if message.parent is not None else "",
            "focused": focused[0] if focused else None,
            "keyboards": [w for w in widgets if w["kind"] == "keyboard"],
            "widgets": widgets,
        }

    def _collect(self, widget: Any, context: _Context, out: list[dict[str, Any]]) -> None:
        if widget.opacity <= 0:
            return
        rect = self._rect(widget)
        kind = _kind(widget)
        if kind is not None:
            out.append(self._record(widget, kind, rect, context))
        if isinstance(widget, ScrollView):
            # What scrolled out of its view cannot be seen (nor tapped).
            view = _intersect(context.clip, rect)
            context = replace(context, clip=view, scroller=view)
        if kind == "keyboard":
            context = replace(context, in_keyboard=True)
        for child in reversed(widget.children):
            self._collect(child, context, out)

    def _record(self, widget: Any, kind: str, rect: Rect, context: _Context) -> dict[str, Any]:
        record: dict[str, Any] = {
            "kind": kind,
            "cls": type(widget).__name__,
            "id": self._names.get(id(widget), ""),
            "text": "" if kind == "keyboard" else str(getattr(widget, "text", "")),
            "rect": _rounded(rect),
            "visible": _rounded(_intersect(rect, context.clip)),
            "disabled": bool(widget.disabled),
            # The view of the ScrollView it is in (a wheel there scrolls it into view).
            "scroller": None if context.scroller is None else _rounded(context.scroller),
            # Part of a keyboard or keypad (a pad's own display field is meant to be on it).
            "in_keyboard": context.in_keyboard,
        }
        if kind == "field":
            record["focus"] = bool(widget.focus)
            record["hint"] = str(widget.hint_text)
            record["input_type"] = str(widget.input_type)
        if isinstance(widget, VKeyboard):
            record["layout"] = str(widget.layout)
            record["keys"] = self._keys(widget)
        return record

    def _keys(self, keyboard: Any) -> list[dict[str, Any]]:
        """A VKeyboard's keys (drawn, not widgets): caption and rectangle in window pixels."""
        layout = keyboard.available_layouts.get(keyboard.layout, {})
        keys = []
        for row in range(1, int(layout.get("rows", 0)) + 1):
            captions = layout.get(f"{keyboard.layout_mode}_{row}", [])
            geometry = keyboard.layout_geometry.get(f"LINE_{row}", [])
            for caption, ((x, y), (w, h)) in zip(captions, geometry, strict=False):
                x0, y0 = keyboard.to_parent(x, y)
                x1, y1 = keyboard.to_parent(x + w, y + h)
                rect = _rounded(self._window_rect(x0, y0, x1, y1))
                keys.append({"text": caption[0], "rect": rect})
        return keys


def _rounded(rect: Rect) -> list[float]:
    return [round(value, 1) for value in rect]


class Probe:
    """Writes a snapshot to `path` (atomically: a reader never sees half a file) 20 times a
    second while frames are drawn."""

    def __init__(self, ui: Any, path: Path, interval_s: float = 0.05) -> None:
        self.path = path
        self._snapshotter = Snapshotter(ui)
        self._event = Clock.schedule_interval(self._write, interval_s)

    def stop(self) -> None:
        self._event.cancel()

    def _write(self, _dt: float) -> None:
        text = json.dumps(self._snapshotter.snapshot(), ensure_ascii=False)
        partial = self.path.with_name(self.path.name + ".tmp")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, self.path)
