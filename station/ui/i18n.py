"""The Kivy side of the station's languages (station.locale): which language the `.kv` rules
and screens are built in, and the font every label and field draws with.

In a `.kv` file a label is marked and translated with `_`:

    #:import _ station.ui.i18n._
    text: _('Sign in')

`_` translates into the language `use` set last: StationUI sets the station's language
(`[display] language`) before it builds a mode's screens, so the rules are evaluated in it. The
lobby's screens take their words from the presenter (the patient's language) instead.
"""

from __future__ import annotations

from station.locale import Font, Translate, font_file, language, translator

_current: list[Translate] = [translator("en")]
_registered: set[str] = set()


def _(text: str) -> str:
    """A `.kv` label in the language in use (marked for extraction by the name `_`)."""
    return _current[0](text)


def use(code: str) -> Translate:
    """Build what follows in this language: `.kv` labels, the font; its `_` is returned."""
    _current[0] = translator(code)
    use_font(language(code).font)
    return _current[0]


def use_font(font: Font) -> None:
    """Every label and field draws with this font (common.kv binds them to theme.font)."""
    from station.ui.theme import theme

    if font.name not in _registered and not font.regular.startswith("kivy:"):
        from kivy.core.text import LabelBase

        LabelBase.register(font.name, str(font_file(font.regular)), None, str(font_file(font.bold)))
    _registered.add(font.name)
    if theme.font != font.name:
        theme.font = font.name
