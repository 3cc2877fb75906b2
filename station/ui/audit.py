"""The layout audit: what a rendered screen must never do, checked on the real widget tree.

`audit(root, window_size)` walks the widgets that are on screen (the current screen of each
ScreenManager, attached, not transparent) and reports, each as a `Violation`:

- `overlap`: two text boxes drawn on top of each other (a title over a value);
- `outside`: a widget outside the window, or outside the parent that lays it out (clipped);
- `text_overflow`: text larger than its box (cut off or spilling into a neighbour);
- `small_target`: something to tap smaller than 48 px either way;
- `contrast`: text on its fill below 4.5:1 (WCAG 2.x 1.4.3), computed from the colours the
  widgets draw with (the theme's).

Scrolling content is judged inside its ScrollView's viewport: what is scrolled away is not
"outside". Overlays (the message, the idle warning) cover what is under them on purpose:
text boxes they cover are not counted as overlapping.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen, ScreenManager
from kivy.uix.scrollview import ScrollView
from kivy.uix.textinput import TextInput
from kivy.uix.widget import Widget

from station.ui.theme import contrast, theme

MIN_TARGET_PX = 48  # the floor; the screens aim for 52-64 dp
MIN_CONTRAST = 4.5  # WCAG 2.x success criterion 1.4.3, normal text
SLACK_PX = 1.0  # rounding in layout: a box may touch its neighbour

Rect = tuple[float, float, float, float]  # x, y, right, top in window coordinates


@dataclass(frozen=True)
class Violation:
    rule: str
    widget: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "widget": self.widget, "detail": self.detail}


def _rect(widget: Any) -> Rect:
    x, y = widget.to_window(widget.x, widget.y)
    return (x, y, x + widget.width, y + widget.height)


def _intersect(a: Rect, b: Rect) -> Rect | None:
    x, y = max(a[0], b[0]), max(a[1], b[1])
    right, top = min(a[2], b[2]), min(a[3], b[3])
    if right - x <= SLACK_PX or top - y <= SLACK_PX:
        return None
    return (x, y, right, top)


def _inside(inner: Rect, outer: Rect) -> bool:
    return (
        inner[0] >= outer[0] - SLACK_PX
        and inner[1] >= outer[1] - SLACK_PX
        and inner[2] <= outer[2] + SLACK_PX
        and inner[3] <= outer[3] + SLACK_PX
    )


def _name(widget: Any) -> str:
    text = getattr(widget, "text", "")
    label = f" {text[:40]!r}" if isinstance(text, str) and text else ""
    return f"{type(widget).__name__}{label}"


def _shown(root: Any) -> Iterator[tuple[Any, Rect | None, bool]]:
    """(widget, the viewport that clips it or None, under an overlay layer) for every widget
    on screen, parents before children."""

    def walk(
        widget: Any, clip: Rect | None, layer: bool
    ) -> Iterator[tuple[Any, Rect | None, bool]]:
        if widget.opacity <= 0:
            return
        yield widget, clip, layer
        if isinstance(widget, ScreenManager):
            children = [widget.current_screen] if widget.current_screen is not None else []
        else:
            children = list(reversed(widget.children))  # drawing order
        inner = clip
        if isinstance(widget, ScrollView):
            inner = _rect(widget) if clip is None else _intersect(_rect(widget), clip)
            if inner is None:
                return
        for child in children:
            overlay = layer or getattr(child, "audit_layer", "") == "overlay"
            yield from walk(child, inner, overlay)

    yield from walk(root, None, False)


def _text_box(label: Any) -> Rect:
    """Where the label's text is drawn: its texture, centred in the widget."""
    x, y, right, top = _rect(label)
    tw, th = label.texture_size
    cx, cy = (x + right) / 2, (y + top) / 2
    return (cx - tw / 2, cy - th / 2, cx + tw / 2, cy + th / 2)


def _fill_behind(widget: Any) -> tuple[float, ...]:
    """The colour the widget's text is drawn on: its own fill, else its nearest parent's."""
    node = widget
    while isinstance(node, Widget):  # the window is its own parent: stop below it
        if isinstance(node, ButtonBehavior) and hasattr(node, "background_color"):
            return tuple(node.background_color)
        fill = getattr(node, "fill", None)
        if fill is not None and len(fill) == 4 and fill[3] > 0:
            return tuple(fill)
        own = getattr(node, "audit_fill", None)
        if own is not None and len(own) == 4:
            return tuple(own)
        node = node.parent
    return tuple(theme.background)


def _blend(top: tuple[float, ...], under: tuple[float, ...]) -> tuple[float, ...]:
    alpha = top[3] if len(top) == 4 else 1.0
    return (*(top[i] * alpha + under[i] * (1 - alpha) for i in range(3)), 1.0)


def audit(root: Any, window_size: tuple[int, int]) -> list[Violation]:
    """Every violation on what `root` shows now (lay it out first: a frame or two)."""
    width, height = window_size
    window: Rect = (0.0, 0.0, float(width), float(height))
    found: list[Violation] = []
    texts: list[tuple[Any, Rect, bool]] = []
    overlays: list[Rect] = []
    for widget, clip, layer in _shown(root):
        if isinstance(widget, Screen | ScreenManager):
            continue
        box = _rect(widget)
        seen = box if clip is None else _intersect(box, clip)
        if seen is None:
            continue  # scrolled out of view: reachable by scrolling, not clipped
        if getattr(widget, "audit_layer", "") == "overlay":
            overlays.append(box)
        if clip is None and not _inside(box, window):
            found.append(Violation("outside", _name(widget), f"{box} not in window {window}"))
        parent = widget.parent
        if (
            clip is None
            and parent is not None
            and not isinstance(parent, ScreenManager | Screen)
            and widget is not root
            and isinstance(parent, Widget)
            and getattr(widget, "audit_layer", "") != "overlay"
            and not _inside(box, _rect(parent))
        ):
            found.append(
                Violation("outside", _name(widget), f"{box} outside its parent {_rect(parent)}")
            )
        tappable = (isinstance(widget, ButtonBehavior) and not widget.disabled) or isinstance(
            widget, TextInput
        )
        if tappable and min(widget.width, widget.height) < MIN_TARGET_PX:
            size = f"{widget.width:.0f}x{widget.height:.0f}"
            found.append(Violation("small_target", _name(widget), f"{size} px < 48 px"))
        if not isinstance(widget, Label) or not widget.text.strip():
            continue
        tw, th = widget.texture_size
        if tw > widget.width + SLACK_PX or th > widget.height + SLACK_PX:
            found.append(
                Violation(
                    "text_overflow",
                    _name(widget),
                    f"text {tw:.0f}x{th:.0f} in a box {widget.width:.0f}x{widget.height:.0f}",
                )
            )
        colour = tuple(widget.disabled_color if widget.disabled else widget.color)
        fill = _fill_behind(widget)
        ratio = contrast(_blend(colour, theme.background), _blend(fill, theme.background))
        if ratio < MIN_CONTRAST:
            found.append(Violation("contrast", _name(widget), f"{ratio:.2f}:1 < 4.5:1"))
        text_box = _text_box(widget)
        drawn = text_box if clip is None else _intersect(text_box, clip)
        if drawn is None:
            continue  # a row scrolled half out of view: its text is out of view, not drawn
        texts.append((widget, drawn, layer))
    for i, (a, box_a, layer_a) in enumerate(texts):
        if not layer_a and any(_intersect(box_a, o) for o in overlays):
            continue  # covered by the message or the idle warning on purpose
        for b, box_b, layer_b in texts[i + 1 :]:
            if layer_a != layer_b:
                continue
            if not layer_b and any(_intersect(box_b, o) for o in overlays):
                continue
            if _intersect(box_a, box_b) is not None:
                found.append(Violation("overlap", _name(a), f"text drawn over {_name(b)}"))
    return found
