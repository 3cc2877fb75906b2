"""Vitals: one tile per measurement, filled by devices; a keypad for what is typed by hand."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory
from kivy.metrics import dp

from station.ui.screens.base import BaseScreen, Tile, action_row, attach, button
from station.ui.theme import SEVERITY_COLOURS, TONE_COLOURS

KEYS = ("7", "8", "9", "Del", "4", "5", "6", ".", "1", "2", "3", "0")


def tile_detail(notes: tuple[str, ...], source: str) -> str:
    """The tile's small print: the first flag's headline (the clause before " — "; the whole
    words are on Review), then where the value came from: two lines at most on a tile."""
    if not notes:
        return source
    headline = notes[0].split(" — ")[0]
    return f"{headline} · {source}" if source else headline


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
        _ = self._
        shown = {"Del": _("Del")}  # the key's name stays the intent's
        for key in KEYS:
            # The keys share the rows left between the fields and the actions.
            press = partial(self.intent, "keypad_key", key)
            key_button = button(shown.get(key, key), press, size_hint_y=1)
            self._pad.ids.keypad.add_widget(key_button)
        actions = self._pad.ids.actions
        actions.add_widget(button(_("Cancel"), partial(self.intent, "keypad_cancel"), quiet=True))
        self._next = button(_("Next field"), lambda: self.intent("keypad_key", "next"), quiet=True)
        actions.add_widget(self._next)
        actions.add_widget(button(_("OK"), partial(self.intent, "keypad_ok")))
        self.ids.body.add_widget(self._grid)
        # ids are weak proxies: keep the real widget, or it is collected while detached.
        self._nav = self.ids.nav.__self__
        self._panel = self._nav.parent
        self._gauge = self.ids.gauge.__self__
        self._tray_box = self.ids.tray.__self__

    def render(self, presenter: Any) -> None:
        # The gauge moves at 10 Hz while the cuff inflates: update it alone, cheaply.
        cuff = presenter.live_cuff()
        gauge = self.ids.gauge
        gauge.opacity = 1 if cuff is not None else 0
        gauge.height = dp(48) if cuff is not None else 0
        gauge.value = cuff or 0.0
        gauge.label = (
            self._("Cuff inflating: {pressure} mmHg").format(pressure=f"{cuff:.0f}")
            if cuff is not None
            else ""
        )
        self._render_tray(presenter.tray_cards())
        pad = presenter.keypad
        body = self.ids.body
        # The keypad has the whole screen: the gauge, the tray and the nav row step aside so
        # OK and Cancel are never squeezed (readings keep arriving and show when it closes).
        attach(self._panel, self._gauge, shown=pad is None, index=len(self._panel.children))
        tray_index = len(self._panel.children) - (1 if self._gauge.parent else 0)
        attach(self._panel, self._tray_box, shown=pad is None, index=tray_index)
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
            readings = self._("({count} readings)").format(count=view.count)
            tile.title = view.title + (f"  {readings}" if view.count > 1 else "")
            tile.value, tile.unit = view.value, view.unit
            tile.detail = tile_detail(view.notes, view.source)
            tile.fill = SEVERITY_COLOURS[view.severity]

    def _render_tray(self, cards: Any) -> None:
        if cards == self._tray:
            return
        self._tray = cards
        box = self._tray_box
        box.clear_widgets()
        # One card at a time: a stack of them squeezed the tiles below a fingertip.
        for card in cards[:1]:
            accept = partial(self.intent, "accept_tray", card.item_id)
            discard = partial(self.intent, "discard_tray", card.item_id)
            _ = self._
            held = (
                _("Held back (1 of {count})").format(count=len(cards))
                if len(cards) > 1
                else _("Held back")
            )
            row = action_row(
                f"{held}: {card.text} — {card.reason}",
                [
                    (_("Accept to this patient"), accept, 250, False),
                    (_("Discard"), discard, 130, True),
                ],
            )
            box.add_widget(row)

    def _render_pad(self, pad: Any) -> None:
        panel = self._pad
        title = panel.ids.title
        title.text = pad.error or pad.title
        title.fill = TONE_COLOURS["error"] if pad.error else (0, 0, 0, 0)
        # One field: nothing to move to (the button did nothing there).
        self._next.opacity = 1 if len(pad.labels) > 1 else 0
        self._next.disabled = len(pad.labels) < 2
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
