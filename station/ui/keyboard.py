"""The on-screen keyboard a patient can rely on: docked full width at the bottom of the window,
keys at least 48 px high, a number pad for numbers (dates of birth, PINs), and the screen moved
so that the field being typed — and, where there is room, everything under it down to the
screen's action button — stays above the keys.

Kivy's own docked keyboard was scaled from a 700x200 drawing (keys ~44x35 px at 800x480) and,
with `Window.softinput_mode = 'below_target'`, placed under the field in the field's own
coordinates: it ran off the window and covered Find, Done and the staff PIN (#15). Here:

- `use_docked_keyboard()` turns the docked keyboard on with `StationKeyboard` as its class and
  no softinput shift (called by the wirings that open a window, before the first field asks);
- `StationKeyboard` docks at (0, 0), as wide as the window, its height from its rows;
- `KeyboardPlacement` (one per StationUI) gives the screen the window less the keyboard: the
  screen first gives up its empty space (spacers, the part of a scrolling list not needed),
  then slides up just enough, and a field inside a scrolling list is scrolled into view.

The layouts are data (Kivy's VKeyboard JSON format, kivy/uix/vkeyboard.py), registered by name.
"""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.metrics import dp
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.relativelayout import RelativeLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.vkeyboard import VKeyboard
from kivy.uix.widget import Widget

# Touch targets: 48 px at least (the layout audit's rule, station/ui/audit.py; WCAG 2.2 2.5.8
# asks 24 CSS px, Material and Apple's HIG ask 48 dp / 44 pt). A key is its row's pitch less
# its margins (KEY_MARGIN_PX above and below), cut to whole pixels by VKeyboard.
KEY_MARGIN_PX = 2
MIN_KEY_PX = 48
# Row pitch as a share of the window's height, within bounds: 53 px rows at 480 px (keys of
# 49 px, four letter rows leaving the lobby's name field and Find both in view), 80 px rows
# (the cap) on a 10" 1280x800 kiosk.
LETTER_ROW_SHARE = 0.11
NUMBER_ROW_SHARE = 0.14  # the number pad has two rows: they can be taller still
ROW_MIN_PX = MIN_KEY_PX + 2 * KEY_MARGIN_PX + 1
ROW_MAX_PX = 80
EDGE_PX = 3  # above the first row and below the last
# What a scrolling list keeps when the screen gives room to the keyboard: a 64 dp field and
# a margin above and below it (the field is scrolled into that view).
SCROLL_MIN_DP = 88
TOP_MARGIN_DP = 4  # between a field slid to the top and the window's edge

LETTERS = "station-letters"
NUMBERS = "station-numbers"
SHIFT_KEY = "station-shift"  # one capital, then back to small letters (as phones do)
SYMBOLS_KEY = "station-symbols"  # digits, accents and signs; again for letters
# Fields that take digits only get the number pad (Kivy's input_type, as Android reads it).
NUMERIC_INPUT_TYPES = ("number", "tel", "datetime")

Key = list[Any]  # [caption, text inserted (None for a command), keycode name, width in columns]


def _keys(chars: str) -> list[Key]:
    return [[c, c, c.lower(), 1] for c in chars]


_BACKSPACE: Key = ["\u232b", None, "backspace", 1.5]
_ENTER: Key = ["\u23ce", None, "enter", 1.5]


def _bottom_row(switch: str) -> list[Key]:
    return [
        [switch, None, SYMBOLS_KEY, 1.5],
        *_keys(","),
        [" ", " ", "spacebar", 5],
        *_keys("."),
        _ENTER,
    ]


LETTER_LAYOUT: dict[str, Any] = {
    # Ten columns: keys 80 px wide on the 800 px screen. Spanish names need the ñ (beside the
    # l, where a Spanish keyboard has it); accents and digits are on the symbols page.
    "title": LETTERS,
    "description": "letters for names and a few words, touch-sized",
    "cols": 10,
    "rows": 4,
    "normal_1": _keys("qwertyuiop"),
    "normal_2": _keys("asdfghjklñ"),
    "normal_3": [["\u21e7", None, SHIFT_KEY, 1.5], *_keys("zxcvbnm"), _BACKSPACE],
    "normal_4": _bottom_row("123"),
    "shift_1": _keys("QWERTYUIOP"),
    "shift_2": _keys("ASDFGHJKLÑ"),
    "shift_3": [["\u21e7", None, SHIFT_KEY, 1.5], *_keys("ZXCVBNM"), _BACKSPACE],
    "shift_4": _bottom_row("123"),
    "special_1": _keys("1234567890"),
    "special_2": _keys("áéíóúü¿?¡!"),
    "special_3": [["@", "@", "@", 1.5], *_keys("-_/'():"), _BACKSPACE],
    "special_4": _bottom_row("abc"),
}
NUMBER_LAYOUT: dict[str, Any] = {
    # Two rows of big keys, the digits in reading order: a date of birth as 8 digits
    # ("03141961", read back with the month's name) or a PIN.
    "title": NUMBERS,
    "description": "digits for dates of birth and PINs",
    "cols": 6,
    "rows": 2,
    "normal_1": [*_keys("12345"), [*_BACKSPACE[:3], 1]],
    "normal_2": [*_keys("67890"), [*_ENTER[:3], 1]],
}
for _page in ("shift", "special"):  # a number pad has one page; the others only mirror it
    for _row in (1, 2):
        NUMBER_LAYOUT[f"{_page}_{_row}"] = NUMBER_LAYOUT[f"normal_{_row}"]
LAYOUTS = {LETTERS: LETTER_LAYOUT, NUMBERS: NUMBER_LAYOUT}


def layout_for(field: Any) -> str:
    """Which layout a field gets: the number pad for digits-only fields (a date of birth, a
    phone number: `input_type` in their .kv) and for PINs (every password field here takes
    a PIN: staff, biomed, the MA's sign-in; badges are scanned), the letters for the rest."""
    numeric = getattr(field, "input_type", "") in NUMERIC_INPUT_TYPES
    return NUMBERS if numeric or getattr(field, "password", False) else LETTERS


def row_pitch_px(layout: str, window_height: float) -> int:
    share = NUMBER_ROW_SHARE if layout == NUMBERS else LETTER_ROW_SHARE
    return int(min(ROW_MAX_PX, max(ROW_MIN_PX, round(window_height * share))))


def keyboard_height_px(layout: str, window_height: float) -> int:
    rows = int(LAYOUTS[layout]["rows"])
    return rows * row_pitch_px(layout, window_height) + 2 * EDGE_PX


class StationKeyboard(VKeyboard):  # type: ignore[misc]
    """Kivy's VKeyboard, docked without scaling: as wide as the window, its rows tall enough
    for a finger, the layout chosen by the field it types into."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("layout", LETTERS)
        kwargs.setdefault("key_margin", [KEY_MARGIN_PX] * 4)
        super().__init__(**kwargs)
        self.available_layouts.update(LAYOUTS)

    def setup_mode_dock(self, *_args: Any) -> None:
        self.do_translation = False
        self.do_rotation = False
        self.do_scale = False
        self.rotation = 0
        self.scale = 1
        window = self.get_parent_window()
        if window is None:
            return
        window.unbind(on_resize=self._dock)
        window.bind(on_resize=self._dock)
        self._dock(window)

    def _dock(self, window: Any, *_args: Any) -> None:
        layout = layout_for(self.target)
        height = keyboard_height_px(layout, window.height)
        self.have_shift = self.have_capslock = self.have_special = False
        self.layout_mode = "normal"
        self.size = (window.width, height)
        self.pos = (0, 0)
        # VKeyboard's margins are shares of its size: EDGE_PX above and below, none beside.
        self.margin_hint = [EDGE_PX / height, 0, EDGE_PX / height, 0]
        self.font_size = (row_pitch_px(layout, window.height) - 2 * KEY_MARGIN_PX) * 0.5
        self.layout = layout  # a property: the same name again changes nothing
        self.refresh(True)

    def process_key_on(self, touch: Any) -> None:
        """The page keys switch pages on a tap (Kivy's shift and special keys act only while
        held, which needs two fingers); a letter after the shift key goes back to small."""
        if touch is None:
            return
        found = self.get_key_at_pos(*self.to_local(*touch.pos))
        command = found[0][2] if found else None
        if command in (SHIFT_KEY, SYMBOLS_KEY):
            self.repeat_touch = None  # a page key never repeats
        if command == SHIFT_KEY:
            self.have_shift = not self.have_shift
            return
        if command == SYMBOLS_KEY:
            self.have_shift = False
            self.have_special = not self.have_special
            return
        super().process_key_on(touch)
        if found and found[0][1] and self.have_shift:
            self.have_shift = False

    def _start_repeat_key(self, *args: Any) -> None:
        """Only the delete key repeats while held: a slow finger on a letter typed it again
        and again (Kivy repeats every key after half a second)."""
        touch = self.repeat_touch
        pressed = touch.ud.get(self.uid, {}).get("key") if touch is not None else None
        if pressed and pressed[0][2] == "backspace":
            super()._start_repeat_key(*args)


def use_docked_keyboard() -> None:
    """Before the window opens: every text field gets the docked StationKeyboard (a USB
    keyboard and a badge reader still type), with no softinput shift — KeyboardPlacement
    moves the screen instead. Kivy reads `keyboard_mode` when it creates the window."""
    from kivy.config import Config

    Config.set("kivy", "keyboard_mode", "systemanddock")
    from kivy.core.window import Window

    Window.softinput_mode = ""
    Window.set_vkeyboard_class(StationKeyboard)


# ----------------------------------------------------------------------------- placement


def min_height(widget: Any) -> float:
    """How short `widget` can be laid out without anything overlapping or being cut: fixed
    heights stay, a plain Widget (a spacer) can vanish, a scrolling list keeps room for one
    field, a vertical box adds up its children. Anything else keeps its height."""
    if widget.size_hint_y is None:
        return float(widget.height)
    return shortest_layout(widget)


def shortest_layout(widget: Any) -> float:
    """`min_height` of a widget whatever height it has been given (the content's own)."""
    if type(widget) is Widget:
        return 0.0
    if isinstance(widget, ScrollView):
        return float(min(widget.height, dp(SCROLL_MIN_DP)))
    from kivy.uix.textinput import TextInput  # not at import: it opens the window

    if isinstance(widget, TextInput):  # a box that grows (the lobby's reason): two lines
        return float(min(widget.height, max(dp(64), 2 * widget.line_height + dp(24))))
    if isinstance(widget, BoxLayout):
        _left, top, _right, bottom = widget.padding
        kids = [min_height(child) for child in widget.children]
        if widget.orientation == "vertical":
            return float(top + bottom + sum(kids) + widget.spacing * max(0, len(kids) - 1))
        return float(top + bottom + max(kids, default=0.0))
    if isinstance(widget, (FloatLayout, RelativeLayout)):  # Screen, ScreenManager too
        hinted = [c for c in widget.children if c.size_hint_y]
        return max((min_height(c) / c.size_hint_y for c in hinted), default=0.0)
    return float(widget.height)


def _ancestors(widget: Any) -> list[Any]:
    out = []
    parent = widget.parent
    while isinstance(parent, Widget):  # up to the window (not a Widget)
        out.append(parent)
        parent = parent.parent
    return out


def _scrollers(field: Any) -> list[Any]:
    return [parent for parent in _ancestors(field) if isinstance(parent, ScrollView)]


def _visible_span(field: Any) -> tuple[float, float]:
    """The field's bottom and top in window coordinates, cut to the scrolling lists it is in."""
    bottom = field.to_window(field.x, field.y)[1]
    top = field.to_window(field.x, field.top)[1]
    for view in _scrollers(field):
        bottom = max(bottom, view.to_window(view.x, view.y)[1])
        top = min(top, view.to_window(view.x, view.top)[1])
    return bottom, top


def slide_for(
    *,
    window_height: float,
    keyboard_top: float,
    content_height: float,
    field_bottom: float,
    field_top: float,
    top_margin: float = 0.0,
) -> float:
    """Where the content's bottom goes (window y) with a keyboard up to `keyboard_top`, for a
    field at `field_bottom`..`field_top` above the content's bottom: just above the keyboard
    (all of the screen under the field in view: its buttons) when the field then still fits
    under the window's top; else as far up as needed to bring the field's top to the window's
    top. Never a gap above the keyboard nor under the window's top."""
    lowest = window_height - content_height  # lower, and the content's top comes into view
    highest = keyboard_top  # higher, and a gap opens above the keyboard
    if field_top + highest <= window_height - top_margin:
        return highest
    wanted = window_height - top_margin - field_top
    return max(lowest, min(highest, wanted))


class KeyboardPlacement:
    """Keeps one StationUI's content clear of the docked keyboard while a field types.

    `content` is the widget holding the header and the screens (its kv binds its pos and size
    to the root's); while a keyboard is up it gets its own height and y, given back after."""

    def __init__(self, root: Any, content: Any) -> None:
        from kivy.core.window import Window

        self.root = root
        self.content = content
        self._window = Window
        self._keyboard: Any = None
        self._placed = False
        self._trigger = Clock.create_trigger(self._place, -1)
        # While a keyboard is up, every frame: what the screen shows changes under the field
        # (the date read back appears, a list grows) without the field itself moving.
        self._watch = Clock.schedule_interval(self._trigger, 0)
        self._watch.cancel()
        Window.bind(children=self._trigger, size=self._trigger)

    def close(self) -> None:
        self._window.unbind(children=self._trigger, size=self._trigger)
        self._watch.cancel()
        self._trigger.cancel()
        self._keyboard = None

    @property
    def keyboard(self) -> Any:
        """The docked keyboard over this content, or None."""
        for widget in self._window.children:
            target = getattr(widget, "target", None) if isinstance(widget, VKeyboard) else None
            if target is not None and target.get_root_window() is not None and self._owns(target):
                return widget
        return None

    def _owns(self, field: Any) -> bool:
        return any(parent is self.content for parent in _ancestors(field))

    def _place(self, *_args: Any) -> None:
        keyboard = self.keyboard
        if keyboard is None:
            self._watch.cancel()
            self._keyboard = None
            self._release()
            return
        if keyboard is not self._keyboard:
            self._watch()
        self._keyboard = keyboard
        field = keyboard.target
        window_height = float(self._window.height)
        keyboard_top = float(keyboard.top)
        shortest = shortest_layout(self.content)
        content_height = max(window_height - keyboard_top, min(window_height, shortest))
        self.content.size_hint_y = None
        if abs(self.content.height - content_height) > 0.5:
            self.content.height = content_height
            return  # laid out at the new height first (the next frame places it)
        self._placed = True
        for scroller in _scrollers(field):
            bottom, top = _visible_span(field)
            if top - bottom < min(field.height, scroller.height) - 0.5:
                scroller.scroll_to(field, padding=dp(8), animate=False)
                return
        bottom, top = _visible_span(field)
        offset = self.content.y
        y = slide_for(
            window_height=window_height,
            keyboard_top=keyboard_top,
            content_height=content_height,
            field_bottom=bottom - offset,
            field_top=top - offset,
            top_margin=dp(TOP_MARGIN_DP),
        )
        self.content.x = self.root.x
        self.content.y = y

    def _release(self) -> None:
        if not self._placed and self.content.size_hint_y is not None:
            return
        self._placed = False
        self.content.size_hint_y = 1
        self.content.pos = self.root.pos
        self.content.size = self.root.size
