"""Patient names as the station shows and compares them: one form, nothing hidden.

The MA confirms two identifiers (name and date of birth) against the screen; a name that
renders pixel-identical to another while being different text defeats that check. So every
name from the practice system is normalised once, when it arrives:
- Unicode NFKC (compatibility forms fold: full-width letters, ligatures, superscripts);
- invisible characters removed: format characters (Unicode category Cf — zero-width space
  U+200B, ZWNJ U+200C, ZWJ U+200D, word joiner U+2060, BOM U+FEFF, soft hyphen U+00AD, the
  bidirectional controls) and control characters (Cc), and runs of spaces folded to one;
- letters from more than one script in a name (a Cyrillic "Е" inside a Latin name) are
  flagged, not changed: both spellings exist in real records, only a person can tell.
What was removed or flagged is said in the notes, for the confirm screen. Pure: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from station.locale import N_

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class CleanName:
    text: str
    notes: tuple[str, ...] = ()


def _script(char: str) -> str | None:
    """The script of a letter, from its Unicode name ("CYRILLIC CAPITAL LETTER IE" -> CYRILLIC)."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else None


def clean_name(raw: str) -> CleanName:
    folded = unicodedata.normalize("NFKC", raw)
    kept = "".join(c for c in folded if unicodedata.category(c) not in ("Cf", "Cc"))
    text = _SPACES.sub(" ", kept).strip()
    notes = []
    if len(kept) != len(folded):
        notes.append(N_("hidden characters were removed from this name"))
    scripts = sorted({s for c in text if (s := _script(c)) is not None})
    if len(scripts) > 1:
        alphabets = " and ".join(s.title() for s in scripts)
        notes.append(
            N_("this name mixes alphabets ({alphabets}): check it letter by letter").format(
                alphabets=alphabets
            )
        )
    return CleanName(text, tuple(notes))


def same_name_key(family: str, given: str) -> str:
    """What two names must share to look alike on screen (case and spacing aside)."""
    return _SPACES.sub(" ", f"{family} {given}").casefold().strip()
