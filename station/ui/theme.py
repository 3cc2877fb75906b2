"""Colours and text scale the .kv rules bind to; the large-text / high-contrast switch sets them."""

from __future__ import annotations

from kivy.event import EventDispatcher
from kivy.properties import ColorProperty, NumericProperty, StringProperty

# Severity colours: red / amber / blue read apart for the common colour-vision deficiencies
# when paired with the words on every tile (colour is never the only signal).
SEVERITY_COLOURS = {
    "critical": (0.75, 0.1, 0.1, 1),
    "warning": (0.6, 0.33, 0.0, 1),  # dark amber: white text on it is 5.8:1 (orange was 3.8)
    "info": (0.1, 0.35, 0.7, 1),
    "ok": (0.12, 0.4, 0.22, 1),
    "rejected": (0.35, 0.35, 0.35, 1),
    "empty": (0.18, 0.2, 0.24, 1),
}

# Message overlays coloured by what they mean (success is never red). Every fill here and in
# SEVERITY_COLOURS carries white (and the large-text yellow) text at >= 4.5:1 (WCAG 2.x
# 1.4.3); tests/ui/test_audit.py computes it from these numbers.
TONE_COLOURS = {
    "error": SEVERITY_COLOURS["critical"],
    "warning": SEVERITY_COLOURS["warning"],
    "info": SEVERITY_COLOURS["info"],
    "success": SEVERITY_COLOURS["ok"],
}
GAUGE_TRACK = (0.2, 0.2, 0.25, 1)
GAUGE_FILL = SEVERITY_COLOURS["info"]  # the old light blue carried white text at 3.1:1
DISABLED = (0.22, 0.22, 0.24, 1)  # a disabled button: clearly there, clearly not active
DISABLED_TEXT = (0.8, 0.8, 0.8, 1)


def _linear(channel: float) -> float:
    # WCAG 2.x relative luminance: sRGB channel to linear light.
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def luminance(rgba: tuple[float, ...]) -> float:
    r, g, b = (_linear(c) for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(text: tuple[float, ...], fill: tuple[float, ...]) -> float:
    """WCAG 2.x contrast ratio (L1 + 0.05) / (L2 + 0.05), 1.0 .. 21.0."""
    high, low = sorted((luminance(text), luminance(fill)), reverse=True)
    return (high + 0.05) / (low + 0.05)


class Theme(EventDispatcher):  # type: ignore[misc]
    scale = NumericProperty(1.0)
    background = ColorProperty((0.08, 0.09, 0.11, 1))
    text = ColorProperty((1, 1, 1, 1))
    button = ColorProperty((0.16, 0.36, 0.62, 1))
    quiet = ColorProperty((0.28, 0.3, 0.34, 1))
    alert = ColorProperty((0.75, 0.1, 0.1, 1))
    font = StringProperty("Roboto")  # the language's font (station.ui.i18n.use_font)

    def set_high_contrast(self, on: bool) -> None:
        self.scale = 1.3 if on else 1.0
        self.background = (0, 0, 0, 1)
        self.text = (1, 1, 0.2, 1) if on else (1, 1, 1, 1)
        self.button = (0, 0, 0.55, 1) if on else (0.16, 0.36, 0.62, 1)
        if not on:
            self.background = (0.08, 0.09, 0.11, 1)


theme = Theme()
