"""A Babel extractor for Kivy `.kv` files: the strings marked `_('...')` (babel.cfg names it).

`pybabel extract -F babel.cfg` runs it beside Babel's own Python extractor, so the catalogs'
template has every marked string of the screens' rules too (docs/ui.md, "Languages").
"""

from __future__ import annotations

import ast
import re
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

# `_('text')` or `_("text")`: one literal, as the .kv rules write it.
MARKED = re.compile(r"""(?<![\w.])_\(\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*\)""")


def marked(line: str) -> list[str]:
    """The marked strings on one `.kv` line."""
    return [ast.literal_eval(literal) for literal in MARKED.findall(line)]


def extract_kv(
    fileobj: IO[bytes],
    keywords: Mapping[str, Any],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel's extractor interface: (line number, function name, message, comments)."""
    for number, raw in enumerate(fileobj, start=1):
        for text in marked(raw.decode("utf-8")):
            yield number, "_", text, []
