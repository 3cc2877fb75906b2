"""Vitals: one tile per measurement, filled by devices; a keypad for what is typed by hand."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory
from kivy.metrics import dp

from station.ui.screens.base import BaseScreen, Tile, action_row, attach, button
from station.ui.theme import SEVERITY_COLOURS

KEYS = ("7", "8", "9", "Del", "4", "5", "6", ".", "1", "2", "3", "0")


class VitalsScreen(BaseScreen):
    def __init__(self, **kwargs: Any) -> None:
        # Set before super().__init__: the kv rules (and on_kv_post) run inside it.
        self._grid: Any = None
        self._pad: Any = None
        self._tiles: dict[str, Tile] = {}
        self._tray: object = None
        self._nav: Any = None
        self._panel: Any = None
        super().__init__(**kwargs)

    def on_kv_post(self, base_widget: Any) -> None:
        self._grid = Factory.TileGrid()
        self._pad = Factory.KeypadPanel()
        for key in KEYS:
            self._pad.ids.keypad.add_widget(button(key, partial(self.intent, "keypad_key", key)))
        for text, name in (
            ("Cancel", "keypad_cancel"),
            ("Next field", "next"),
            ("OK", "keypad_ok"),
        ):
            if name == "next":
                widget = button(text, lambda: self.intent("keypad_key", "next"), quiet=True)
            else:
                widget = button(text, partial(self.intent, name), quiet=name != "keypad_ok")
            self._pad.ids.keypad.add_widget(widget)
        self.ids.body.add_widget(self._grid)
        # ids are weak proxies: keep the real widget, or it is collected while detached.
        self._nav = self.ids.nav.__self__
        self._panel = self._nav.parent

    def render(self, presenter: Any) -> None:
        # The gauge moves at 10 Hz while the cuff inflates: update it alone, cheaply.
        cuff = presenter.live_cuff()
        gauge = self.ids.gauge
        gauge.opacity = 1 if cuff is not None else 0
        gauge.height = dp(48) if cuff is not None else 0
        gauge.value = cuff or 0.0
        gauge.label = f"Cuff inflating: {cuff:.0f} mmHg" if cuff is not None else ""
        self._render_tray(presenter.tray_cards())
        pad = presenter.keypad
        body = self.ids.body
        if pad is not None:
            if self._pad.parent is None:
                body.clear_widgets()
                body.add_widget(self._pad)
            self._render_pad(pad)
            attach(self._panel, self._nav, shown=False)
            return
        attach(self._panel, self._nav, shown=True)
        if self._grid.parent is None:
            body.clear_widgets()
            body.add_widget(self._grid)
        tiles = presenter.tiles()
        if not self.changed(tiles):
            return
        for view in tiles:
            tile = self._tiles.get(view.key)
            if tile is None:
                tile = Tile(key=view.key)
                tile.bind(on_release=lambda t: self.intent("open_keypad", t.key))
                self._tiles[view.key] = tile
                self._grid.add_widget(tile)
            tile.title = view.title + (f"  ({view.count} readings)" if view.count > 1 else "")
            tile.value, tile.unit = view.value, view.unit
            tile.detail = "\n".join((view.source, *view.notes)).strip()
            tile.fill = SEVERITY_COLOURS[view.severity]

    def _render_tray(self, cards: Any) -> None:
        if cards == self._tray:
            return
        self._tray = cards
        box = self.ids.tray
        box.clear_widgets()
        for card in cards:
            accept = partial(self.intent, "accept_tray", card.item_id)
            discard = partial(self.intent, "discard_tray", card.item_id)
            row = action_row(
                f"Held back: {card.text} — {card.reason}",
                [("Accept to this patient", accept, 250, False), ("Discard", discard, 130, True)],
            )
            box.add_widget(row)

    def _render_pad(self, pad: Any) -> None:
        panel = self._pad
        panel.ids.title.text = pad.title
        fields = panel.ids.fields
        fields.clear_widgets()
        for index, (label, value) in enumerate(zip(pad.labels, pad.values, strict=True)):
            marker = "> " if index == pad.active else ""
            fields.add_widget(
                button(
                    f"{marker}{label}: {value or '_'}",
                    partial(self.intent, "keypad_select", index),
                    quiet=index != pad.active,
                )
            )
