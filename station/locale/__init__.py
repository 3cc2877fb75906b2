"""The station's languages, in one place, and its gettext mechanism (catalogs in this folder).

Adding a language is one row in LANGUAGES, a catalog `<code>/LC_MESSAGES/station.po` (compiled
to `.mo`), and a font whose character map covers the catalog (docs/ui.md, "Languages").

English is the source language: every string is written in English in the code and marked for
extraction — `_("...")` where it is translated on the spot, `N_("...")` where it is only marked
(a table, a core message) and translated where it is shown. `babel.cfg` at the repository root
tells `pybabel extract` where the marks are (Python and the `.kv` files); tests/ui/test_locale.py
fails when a catalog lacks a marked string or a `.mo` is stale.

Pure: no Kivy here (the core reads LANGUAGES; station.ui.i18n is the Kivy side).
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent
DOMAIN = "station"
SOURCE_LANGUAGE = "en"

Translate = Callable[[str], str]


@dataclass(frozen=True)
class Font:
    """A font Kivy draws a language with: `name` is what widgets' font_name says."""

    name: str
    regular: str  # a file path; "kivy:<file>" is a font Kivy ships in kivy/data/fonts
    bold: str


# Kivy's own default (Roboto 2.001, kivy/data/fonts): its character map has every Latin letter
# Spanish and Vietnamese use, precomposed (tests/ui/test_locale.py reads it with fontTools).
# A language it does not cover gets a font from a Debian package scripts/debian-deps installs
# (fonts-noto-core, fonts-dejavu-core, ...), never one downloaded at run time.
ROBOTO = Font("Roboto", "kivy:Roboto-Regular.ttf", "kivy:Roboto-Bold.ttf")


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1: the catalog's folder, `[display] language`, the lobby's choice
    native_name: str  # on the lobby's language button, in the language itself
    font: Font
    # Exam (MA) and biomed screens translated too; False: patient screens (the lobby) only,
    # staff screens fall back to English and an exam station cannot be set to it.
    staff_screens: bool = True
    reviewed: bool = True  # False: a native speaker must review it before a clinic uses it


LANGUAGES: tuple[Language, ...] = (
    Language("en", "English", ROBOTO),
    Language("es", "Español", ROBOTO),
    Language("vi", "Tiếng Việt", ROBOTO, staff_screens=False, reviewed=False),
)
CODES: tuple[str, ...] = tuple(lang.code for lang in LANGUAGES)
STAFF_CODES: tuple[str, ...] = tuple(lang.code for lang in LANGUAGES if lang.staff_screens)

# Where the patient-facing strings are marked: every one must be translated in every language
# (tests/ui/test_locale.py); the rest only in languages with `staff_screens`. New lobby
# presenters and screens match these names (lobby_*.py, lobby_*.kv) or are added here.
PATIENT_SOURCES: tuple[str, ...] = (
    "station/checkin.py",
    "station/ui/presenters/lobby*.py",
    "station/ui/screens/lobby*.py",
    "station/ui/kv/lobby*.kv",
)


def N_(text: str) -> str:  # noqa: N802 - the gettext marker name xgettext and Babel know
    """Marks a string for extraction; it is translated where it is shown."""
    return text


def language(code: str) -> Language:
    for lang in LANGUAGES:
        if lang.code == code:
            return lang
    raise KeyError(f"language {code!r}: expected one of {', '.join(CODES)}")


@cache
def translations(code: str) -> gettext.NullTranslations:
    """The compiled catalog of a language (English, the source, needs none)."""
    language(code)  # an unknown code is an error, never silently English
    return gettext.translation(
        DOMAIN, LOCALE_DIR, languages=[code], fallback=code == SOURCE_LANGUAGE
    )


def translator(code: str) -> Translate:
    """`_` for a language: a marked English string in, its translation out (the English
    itself where the catalog has none)."""
    return translations(code).gettext


# How core messages are put together, outermost first: "message — detail", "a; b", "what: why".
_SEPARATORS = (" — ", "; ", ": ")
# A marked message with values in it: `N_("no medication {index} on the list").format(...)`.
_FIELD = re.compile(r"\{(\w+)\}")
_ANY_FIELD = re.compile(r"\{[^{}]*\}")
_MIN_TEMPLATE_LETTERS = 4  # "{test}: {result}" is a layout, not a sentence to recognise


@dataclass(frozen=True)
class _Template:
    msgid: str
    pattern: re.Pattern[str]
    letters: int  # how much fixed text it has: the most specific template wins


def _template(msgid: str) -> _Template | None:
    """A marked string with `{name}` fields as a pattern that finds its values in a message
    made from it; None when it cannot be matched back (format specs, too little fixed
    text)."""
    fields = _FIELD.findall(msgid)
    if not fields or len(_ANY_FIELD.findall(msgid)) != len(fields):
        return None
    parts = _FIELD.split(msgid)  # fixed text, field name, fixed text, ...
    letters = sum(c.isalpha() for c in "".join(parts[::2]))
    if letters < _MIN_TEMPLATE_LETTERS:
        return None
    regex, seen = "", set()
    for n, part in enumerate(parts):
        if n % 2 == 0:
            regex += re.escape(part)
        else:  # a field said twice ("mg/dL ... mg/dL") holds the same value both times
            regex += f"(?P={part})" if part in seen else f"(?P<{part}>.+?)"
            seen.add(part)
    return _Template(msgid, re.compile(regex, re.S), letters)


@cache
def _templates() -> tuple[_Template, ...]:
    """Every marked string with fields, from the compiled catalogs, most specific first."""
    ids: set[str] = set()
    for lang in LANGUAGES:
        if lang.code != SOURCE_LANGUAGE:
            ids.update(k for k in getattr(translations(lang.code), "_catalog", {}) if k)
    found = (t for t in map(_template, ids) if t is not None)
    return tuple(sorted(found, key=lambda t: (-t.letters, t.msgid)))


def _from_template(_: Translate, text: str, level: int) -> str | None:
    for template in _templates():
        match = template.pattern.fullmatch(text)
        if match is None:
            continue
        translated = _(template.msgid)
        if translated == template.msgid:
            return None  # this language has no translation of it: the pieces may
        values = {k: translate_message(_, v, level) for k, v in match.groupdict().items()}
        return translated.format(**values)
    return None


def translate_message(_: Translate, text: str, _level: int = 0) -> str:
    """A message from the core (a refusal, a flag, a tray reason), translated: whole if the
    catalog has it; else as a marked string with fields (`N_("no result {entry}")` made into
    "no result 3": the template translated, each value translated in turn); else piece by
    piece along its separators (each piece a marked string), so "cannot enter a value:
    confirm the patient's name and date of birth first" is translated from its two marked
    halves. A piece nothing matches ("wait 299 s") stays as it is."""
    whole = _(text) if text else text
    if whole != text or not text:
        return whole
    filled = _from_template(_, text, _level)
    if filled is not None:
        return filled
    if _level == len(_SEPARATORS):
        return text
    separator = _SEPARATORS[_level]
    if separator not in text:
        return translate_message(_, text, _level + 1)
    # The first piece, then the rest as a whole again: "Date of birth: type the date of
    # birth: month, day and year" keeps its marked second half together.
    head, rest = text.split(separator, 1)
    return translate_message(_, head, _level + 1) + separator + translate_message(_, rest, _level)


def no_translation(text: str) -> str:
    """`_` for English (the source): what a presenter uses when no language is given."""
    return text


def font_file(path: str) -> Path:
    """A Font's file on this machine ("kivy:<file>": in Kivy's own data folder), found without
    importing Kivy."""
    if path.startswith("kivy:"):
        from importlib.util import find_spec

        spec = find_spec("kivy")
        assert spec is not None and spec.origin is not None, "Kivy is not installed"
        return Path(spec.origin).parent / "data" / "fonts" / path.removeprefix("kivy:")
    return Path(path)
