"""Colours and text scale the .kv rules bind to; the large-text / high-contrast switch sets them."""

from __future__ import annotations

from kivy.event import EventDispatcher
from kivy.properties import ColorProperty, NumericProperty

# Severity colours: red / amber / blue read apart for the common colour-vision deficiencies
# when paired with the words on every tile (colour is never the only signal).
SEVERITY_COLOURS = {
    "critical": (0.75, 0.1, 0.1, 1),
    "warning": (0.72, 0.45, 0.0, 1),
    "info": (0.1, 0.35, 0.7, 1),
    "ok": (0.12, 0.4, 0.22, 1),
    "rejected": (0.35, 0.35, 0.35, 1),
    "empty": (0.18, 0.2, 0.24, 1),
}


class Theme(EventDispatcher):  # type: ignore[misc]
    scale = NumericProperty(1.0)
    background = ColorProperty((0.08, 0.09, 0.11, 1))
    text = ColorProperty((1, 1, 1, 1))
    button = ColorProperty((0.16, 0.36, 0.62, 1))
    quiet = ColorProperty((0.28, 0.3, 0.34, 1))
    alert = ColorProperty((0.75, 0.1, 0.1, 1))

    def set_high_contrast(self, on: bool) -> None:
        self.scale = 1.3 if on else 1.0
        self.background = (0, 0, 0, 1)
        self.text = (1, 1, 0.2, 1) if on else (1, 1, 1, 1)
        self.button = (0, 0, 0.55, 1) if on else (0.16, 0.36, 0.62, 1)
        if not on:
            self.background = (0.08, 0.09, 0.11, 1)


theme = Theme()
