"""The lobby's gettext catalogs: complete in Spanish, and the committed .mo matches the .po."""

from __future__ import annotations

import gettext
import io
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from station.ui.presenters import LOBBY_TEXT, translations

LOCALE = Path(__file__).resolve().parents[2] / "station" / "locale"


@pytest.mark.parametrize("language", ["en", "es"])
def test_compiled_catalog_matches_its_source(language: str) -> None:
    folder = LOCALE / language / "LC_MESSAGES"
    with (folder / "station.po").open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    expected = gettext.GNUTranslations(compiled)
    with (folder / "station.mo").open("rb") as mo:
        committed = gettext.GNUTranslations(mo)
    for text in LOBBY_TEXT:
        assert committed.gettext(text) == expected.gettext(text), (
            f"{language}: station.mo is stale; run `pybabel compile -d station/locale -D station`"
        )


def test_every_lobby_string_is_translated_to_spanish() -> None:
    with (LOCALE / "es" / "LC_MESSAGES" / "station.po").open("rb") as po:
        catalog = read_po(po, locale="es")
    missing = [t for t in LOBBY_TEXT if not getattr(catalog.get(t), "string", "")]
    assert missing == []
    assert translations("es").gettext("Please see the front desk") == (
        "Por favor, pase a la recepción"
    )
    # Placeholders survive translation, or the countdown would crash in Spanish.
    assert (
        translations("es")
        .gettext("This screen will clear in {seconds} seconds.")
        .format(seconds=30)
        == "Esta pantalla se borrará en 30 segundos."
    )
