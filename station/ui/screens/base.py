"""What every screen shares: the intent hook, the re-render guard, the tile and gauge widgets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from kivy.factory import Factory
from kivy.properties import ColorProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen
from kivy.uix.textinput import TextInput
from kivy.uix.widget import Widget

from station.ui.theme import SEVERITY_COLOURS, TONE_COLOURS


class Tile(ButtonBehavior, BoxLayout):  # type: ignore[misc]
    """One vital sign: title, value with unit, where it came from and any flag in words."""

    key = StringProperty("")
    title = StringProperty("")
    value = StringProperty("—")
    unit = StringProperty("")
    detail = StringProperty("")
    fill = ColorProperty(SEVERITY_COLOURS["empty"])


class StationButton(Button):  # type: ignore[misc]
    """Every button: `fill` is its colour when enabled (a disabled one is grey, not faded)."""

    fill = ColorProperty((0.16, 0.36, 0.62, 1))


class FilledLabel(Label):  # type: ignore[misc]
    """A label on a colour of its own (a flagged review row, the keypad's error line)."""

    fill = ColorProperty((0, 0, 0, 0))


class KioskInput(TextInput):  # type: ignore[misc]
    """A text field that keeps nothing for the next person: no undo or redo history across a
    wipe, no Ctrl shortcuts (undo, redo, copy, cut, paste, select all), no copy, no selection
    handles or bubble. #20: Ctrl+Z x4 / Ctrl+R x4 in the lobby brought back the staff PIN and
    the previous patient's name after the idle wipe."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("use_bubble", False)
        kwargs.setdefault("use_handles", False)
        kwargs.setdefault("allow_copy", False)
        super().__init__(**kwargs)

    def keyboard_on_key_down(
        self, window: Any, keycode: tuple[int, str], text: str | None, modifiers: list[str]
    ) -> Any:
        if set(modifiers) & {"ctrl", "meta", "super"}:
            return True  # eaten: no shortcut reaches the field
        return super().keyboard_on_key_down(window, keycode, text, modifiers)

    # No clipboard at all. Kivy's TextInput loads a clipboard provider when it is made; on Linux
    # it also looks for an X cut buffer (xclip, xsel: absent on the Pi), logged the failure as
    # CRITICAL with tracebacks (#15), and where one exists copies every selection into X's
    # primary selection — patient text where any other program can read it.
    def _ensure_clipboard(self) -> None:
        return None

    def copy(self, data: str = "") -> None:
        return None

    def cut(self) -> None:
        return None

    def paste(self) -> None:
        return None

    def wipe(self) -> None:
        """Empty, with no way back: the text, the undo and redo history, the selection."""
        self.cancel_selection()
        self.text = ""
        self._undo: list[Any] = []
        self._redo: list[Any] = []


class ParagraphInput(KioskInput):
    """Wrapped text where Enter means "done" (on_text_validate), never a new line nobody
    asked for (the lobby's reason box added one)."""

    def insert_text(self, substring: str, from_undo: bool = False) -> Any:
        if substring == "\n":
            self.dispatch("on_text_validate")
            return None
        return super().insert_text(substring.replace("\n", " "), from_undo=from_undo)


class MessageOverlay(ButtonBehavior, Label):  # type: ignore[misc]
    """A message over the screen, coloured by what it means; a tap dismisses it."""

    fill = ColorProperty(TONE_COLOURS["info"])
    audit_layer = "overlay"  # covers what is under it on purpose (station.ui.audit)
    top_gap = NumericProperty(0.0)  # what stays visible above it (the lobby's header)
    right_gap = NumericProperty(0.0)  # what stays visible right of it (exam's Sign out)


class Gauge(Widget):  # type: ignore[misc]
    """The live cuff pressure while the cuff inflates."""

    value = NumericProperty(0.0)
    maximum = NumericProperty(300.0)
    label = StringProperty("")


class BaseScreen(Screen):  # type: ignore[misc]
    controller = ObjectProperty(None, allownone=True)

    def __init__(self, **kwargs: Any) -> None:
        self._last: object = None
        super().__init__(**kwargs)

    def _(self, text: str) -> str:
        """A marked English string in the station's language (StationUI.tr)."""
        return str(self.controller.tr(text)) if self.controller is not None else text

    def intent(self, name: str, *args: Any) -> None:
        """A tap: forwarded to the presenter by the controller, which schedules a redraw."""
        if self.controller is not None:
            self.controller.intent(name, *args)

    def changed(self, view: object) -> bool:
        """Skip rebuilding widgets when the view model is what is already on screen."""
        if view == self._last:
            return False
        self._last = view
        return True

    def render(self, presenter: Any) -> None:
        raise NotImplementedError


def button(text: str, on_release: Callable[[], None], *, quiet: bool = False, **kw: Any) -> Any:
    widget = Factory.QuietButton(text=text, **kw) if quiet else Factory.BigButton(text=text, **kw)
    widget.bind(on_release=lambda *_: on_release())
    return widget


Factory.register("Tile", cls=Tile)
Factory.register("Gauge", cls=Gauge)
Factory.register("MessageOverlay", cls=MessageOverlay)
Factory.register("StationButton", cls=StationButton)
Factory.register("FilledLabel", cls=FilledLabel)
Factory.register("ParagraphInput", cls=ParagraphInput)
Factory.register("KioskInput", cls=KioskInput)


def attach(parent: Any, widget: Any, shown: bool, index: int = 0) -> None:
    """Show or hide a widget by putting it in or taking it out of the tree.

    Hiding by opacity or zero height is not enough: a disabled widget (or its children)
    still swallows the touches that land where it sits.
    """
    if shown and widget.parent is None:
        parent.add_widget(widget, index=index)
    elif not shown and widget.parent is not None:
        widget.parent.remove_widget(widget)


def grow_with(row: Any, label: Any, minimum: int = 64) -> None:
    """A list row grows with its wrapped text; never below a touch target (64 dp)."""
    from kivy.metrics import dp

    label.bind(height=lambda _w, h: setattr(row, "height", max(dp(minimum), h + dp(8))))


def action_row(
    text: str,
    actions: Sequence[tuple[str, Callable[[], None], int, bool]],
    *,
    height: int = 64,
) -> Any:
    """A list row: wrapped text, then fixed-width buttons (label, on_release, width, quiet)."""
    row = Factory.BoxLayout(size_hint_y=None, height=height, spacing=6)
    label = Factory.Body(text=text)
    row.add_widget(label)
    grow_with(row, label)
    for label_text, on_release, width, quiet in actions:
        row.add_widget(button(label_text, on_release, quiet=quiet, size_hint_x=None, width=width))
    return row
