"""The station's gettext catalogs: every marked string in every catalog (translated where the
language says it must be), the committed .mo files match their .po, no `.kv` label or screen
word escapes `_()`, and every character of every catalog is in its language's font.

Outside truths:
- What is marked is what Babel's own extractors find (babel.cfg: Babel's Python extractor, the
  `.kv` rules through station.locale.kv_extract), never a list kept by hand.
- Babel compiles the .po (babel.messages.mofile) and Python's gettext reads both .mo files.
- The font's character map is read with fontTools (its `cmap` table, OpenType spec, "cmap —
  Character to Glyph Index Mapping Table").
- Unicode UAX #15 (normalization): catalogs are NFC, so every Vietnamese letter is one
  precomposed code point (U+1EA0–U+1EF9, "Latin Extended Additional") that the font maps; a
  decomposed one needs a shaping engine Kivy's SDL2 text provider does not have.
- Issue #15: "'Bienvenido', 'Ya está registrado' are masculine" — Spanish addresses the
  patient without gendered forms. Public patient information in Vietnamese addresses the
  patient as "quý vị" (e.g. the Royal Victorian Eye and Ear Hospital, "Specialist clinic
  information — Vietnamese", eyeandear.org.au/patients-visitors/fact-sheets/
  specialist-clinic-information-vietnamese/), never the familiar "bạn".
"""

from __future__ import annotations

import ast
import gettext
import io
import re
import string
import unicodedata
from fnmatch import fnmatch
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fontTools.ttLib import TTFont

from station.locale import (
    CODES,
    LANGUAGES,
    PATIENT_SOURCES,
    font_file,
    translate_message,
    translations,
)

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "station" / "locale"
KV_DIR = ROOT / "station" / "ui" / "kv"
SCREENS = ROOT / "station" / "ui" / "screens"


def marked() -> dict[str, set[str]]:
    """Every marked string, with the files it is marked in (Babel's extractors, babel.cfg)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str, set[str]] = {}
    for path, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords={"_": None, "N_": None}
    ):
        assert isinstance(message, str), f"{path}: a plural or context form: not used here"
        found.setdefault(message, set()).add(path)
    return found


MARKED = marked()


def catalog(code: str) -> Catalog:
    with (LOCALE / code / "LC_MESSAGES" / "station.po").open("rb") as po:
        return read_po(po, locale=code)


def patient_facing(files: set[str]) -> bool:
    return any(fnmatch(f, pattern) for f in files for pattern in PATIENT_SOURCES)


def test_extraction_finds_the_strings_every_mode_shows() -> None:
    # One from each place a string is marked: a .kv rule, a screen, the exam, biomed and
    # lobby presenters, and the core (a refusal, a tray reason, the table of vitals).
    for text, where in {
        "Sign in": "station/ui/kv/signin.kv",
        "Acknowledge — clinician told": "station/ui/screens/review.py",
        "Saved — waiting for the practice system": "station/ui/presenters/exam_views.py",
        "Too many wrong PINs: try again in {time}": "station/ui/presenters/biomed.py",
        "Please see the front desk": "station/ui/presenters/lobby.py",
        "badge or PIN not recognised": "station/rooming.py",
        "no patient was being roomed when it arrived": "station/guard.py",
        "respiratory rate": "station/vitals.py",
    }.items():
        assert where in MARKED.get(text, set()), text
    assert len(MARKED) > 200


@pytest.mark.parametrize("code", CODES)
def test_every_marked_string_is_in_every_catalog(code: str) -> None:
    have = catalog(code)
    missing = sorted(t for t in MARKED if t not in have)
    assert missing == [], (
        f"{code}: not in the catalog; run `make catalogs` (docs/ui.md, Languages): {missing}"
    )


@pytest.mark.parametrize(
    "lang", [lang for lang in LANGUAGES if lang.code != "en"], ids=lambda lang: lang.code
)
def test_every_string_a_language_must_have_is_translated(lang: object) -> None:
    code = lang.code  # type: ignore[attr-defined]
    staff = lang.staff_screens  # type: ignore[attr-defined]
    have = catalog(code)
    needed = [t for t, files in MARKED.items() if staff or patient_facing(files)]
    untranslated = sorted(t for t in needed if not getattr(have.get(t), "string", ""))
    assert untranslated == []
    if not staff:  # patient screens complete; staff screens fall back to English
        assert any(patient_facing(files) for files in MARKED.values())


@pytest.mark.parametrize("code", CODES)
def test_placeholders_survive_translation(code: str) -> None:
    fields = string.Formatter()
    for message in catalog(code):
        if not message.id or not message.string:
            continue
        names = sorted(f for _, f, _, _ in fields.parse(message.id) if f)
        assert sorted(f for _, f, _, _ in fields.parse(message.string) if f) == names, (
            f"{code}: {message.id!r} -> {message.string!r}"
        )


@pytest.mark.parametrize("code", CODES)
def test_compiled_catalog_matches_its_source(code: str) -> None:
    folder = LOCALE / code / "LC_MESSAGES"
    compiled = io.BytesIO()
    write_mo(compiled, catalog(code))
    compiled.seek(0)
    expected = gettext.GNUTranslations(compiled)
    with (folder / "station.mo").open("rb") as mo:
        committed = gettext.GNUTranslations(mo)
    stale = [t for t in MARKED if committed.gettext(t) != expected.gettext(t)]
    assert stale == [], f"{code}: station.mo is stale; run `make catalogs`"


@pytest.mark.parametrize("code", CODES)
def test_catalogs_are_nfc(code: str) -> None:
    for message in catalog(code):
        for text in (message.id, message.string):
            if isinstance(text, str):
                assert unicodedata.is_normalized("NFC", text), text


@pytest.mark.parametrize("lang", LANGUAGES, ids=lambda lang: lang.code)
def test_the_languages_font_has_every_character_of_its_catalog(lang: object) -> None:
    font = lang.font  # type: ignore[attr-defined]
    texts = [lang.native_name]  # type: ignore[attr-defined]
    for message in catalog(lang.code):  # type: ignore[attr-defined]
        texts += [t for t in (message.id, message.string) if isinstance(t, str)]
    chars = {c for text in texts for c in text if c.isprintable() and not c.isspace()}
    for face in (font.regular, font.bold):  # headings are bold
        cmap = TTFont(font_file(face)).getBestCmap()
        missing = sorted(c for c in chars if ord(c) not in cmap)
        assert missing == [], f"{lang.code}: {face} has no glyph for {missing}"  # type: ignore[attr-defined]


def test_every_language_button_fits_its_font() -> None:
    # Every language's own name is drawn in the lobby's current language's font.
    for lang in LANGUAGES:
        cmap = TTFont(font_file(lang.font.regular)).getBestCmap()
        for other in LANGUAGES:
            assert all(ord(c) in cmap for c in other.native_name if not c.isspace())


def test_spanish_addresses_the_patient_without_gendered_forms() -> None:
    # Issue #15 found "Bienvenido" and "Ya está registrado" (masculine) on the lobby.
    es = catalog("es")
    lobby = [m.string for m in es if m.id in MARKED and patient_facing(MARKED[m.id])]
    # The adjective ("Bienvenido", "está registrado", "listo para"), not the noun ("la
    # bienvenida") or a word agreeing with a thing ("su llegada quedó registrada").
    gendered = re.compile(
        r"(?<!la )\bbienvenid[oa]s?\b|\best[áa]s? (?:usted )?registrad[oa]s?\b"
        r"|\b(?:listo|lista|seguro|segura)s? (?:para|de)\b",
        re.I,
    )
    assert gendered.search("Bienvenido") and gendered.search("Ya está registrado")
    assert [t for t in lobby if gendered.search(str(t))] == []
    assert translations("es").gettext("Welcome") == "Le damos la bienvenida"
    assert translations("es").gettext("Please see the front desk") == (
        "Por favor, pase a la recepción"
    )
    assert (
        translations("es")
        .gettext("This screen will clear in {seconds} seconds.")
        .format(seconds=30)
        == "Esta pantalla se borrará en 30 segundos."
    )


def test_vietnamese_addresses_the_patient_politely() -> None:
    vi = catalog("vi")
    lobby = [str(m.string) for m in vi if m.id in MARKED and patient_facing(MARKED[m.id])]
    assert [t for t in lobby if re.search(r"\bbạn\b", t, re.I)] == []
    you = [t for t in lobby if "quý vị" in t.lower()]
    assert len(you) >= 10  # "Welcome", "Find your appointment", "Please have a seat", ...


def test_a_core_message_is_translated_piece_by_piece() -> None:
    _ = translations("es").gettext
    es = catalog("es")
    what, why = "cannot enter a value", "confirm the patient's name and date of birth first"
    said = translate_message(_, f"{what}: {why}")
    assert said == f"{es[what].string}: {es[why].string}"
    # A piece with a value in it is left as it is, never dropped.
    assert translate_message(_, "too many wrong tries: try again in 12 s") == (
        f"{es['too many wrong tries'].string}: try again in 12 s"
    )


# -- nothing shown escapes _() ------------------------------------------------------------------

# A literal given to a label: `text: 'Sign in'`, `hint_text: "PIN"` (an expression that is
# only names, ids and `_()` calls is fine).
KV_LABEL = re.compile(r"^\s*(text|hint_text)\s*:\s*(.+)$")
KV_LITERAL = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")


def kv_untranslated(line: str) -> list[str]:
    match = KV_LABEL.match(line)
    if match is None:
        return []
    expression = re.sub(r"(?<![\w.])_\(\s*" + KV_LITERAL.pattern + r"\s*\)", "X", match[2])
    words = [ast.literal_eval(s) for s in KV_LITERAL.findall(expression)]
    return [w for w in words if re.search(r"[A-Za-z]{2}", w)]


def test_the_kv_scan_catches_a_bare_label() -> None:
    assert kv_untranslated("        text: 'Sign in'") == ["Sign in"]
    assert kv_untranslated('    hint_text: "badge or PIN"') == ["badge or PIN"]
    assert kv_untranslated("        text: _('Review') + '  >'") == []
    computed = "        text: root.value + ('  ' + root.unit if root.unit else '')"
    assert kv_untranslated(computed) == []


@pytest.mark.parametrize("path", sorted(KV_DIR.glob("*.kv")), ids=lambda p: p.name)
def test_no_kv_label_is_left_untranslated(path: Path) -> None:
    bare = [
        f"{path.name}:{n}: {words}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if (words := kv_untranslated(line))
    ]
    assert bare == []


# In a screen module: the words handed to a button, a label or a row.
SHOWN_CALLS = {"button", "chip", "action_row"}


def screen_untranslated(source: str) -> list[str]:
    bare: list[str] = []

    def words(node: ast.AST) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.search(r"[A-Za-z]{2}", node.value):
                bare.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            bare.extend(
                part.value
                for part in node.values
                if isinstance(part, ast.Constant) and re.search(r"[A-Za-z]{2}", str(part.value))
            )
        elif isinstance(node, ast.BinOp):
            words(node.left)
            words(node.right)
        elif isinstance(node, ast.IfExp):
            words(node.body)
            words(node.orelse)
        elif isinstance(node, ast.List):
            for element in node.elts:
                words(element)
        elif isinstance(node, ast.Tuple) and node.elts:
            words(node.elts[0])  # an action row's (label, on_release, width, quiet)

    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = (
            node.func.id
            if isinstance(node.func, ast.Name)
            else (node.func.attr if isinstance(node.func, ast.Attribute) else "")
        )
        if name in SHOWN_CALLS and node.args:
            words(node.args[0])
            if name == "action_row" and len(node.args) > 1:
                words(node.args[1])
        for keyword in node.keywords:
            if keyword.arg in ("text", "hint_text"):
                words(keyword.value)
    for node in ast.walk(ast.parse(source)):
        # `widget.text = "..."`: a screen setting words on a widget.
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Attribute) and t.attr in ("text", "hint_text", "title", "label")
            for t in node.targets
        ):
            words(node.value)
    return bare


def test_the_screen_scan_catches_bare_words() -> None:
    assert screen_untranslated('button("Resend", go)') == ["Resend"]
    assert screen_untranslated('action_row(t, [("Pair", f, 1, False)])') == ["Pair"]
    assert screen_untranslated('w.text = f"Held back{n}: {x}"') == ["Held back"]
    assert screen_untranslated('Factory.Body(text="No medications.")') == ["No medications."]
    assert screen_untranslated('button(self._("Resend"), go)') == []


@pytest.mark.parametrize("path", sorted(SCREENS.glob("*.py")), ids=lambda p: p.name)
def test_no_screen_shows_an_untranslated_word(path: Path) -> None:
    assert screen_untranslated(path.read_text(encoding="utf-8")) == []


def test_a_core_message_with_values_is_translated_through_its_template() -> None:
    # `N_("{label} is {count} characters: at most {most}").format(...)` in the core: the
    # template is found in the catalog, translated, and its values translated in turn.
    _ = translations("es").gettext
    es = catalog("es")
    template = es["{label} is {count} characters: at most {most}"].string
    said = translate_message(_, "medication name is 201 characters: at most 200")
    assert said == template.format(label=es["medication name"].string, count=201, most=200)
    # Templates and pieces together (the manual entry's refusal, station.rooming).
    text = "patient not entered — last name: type it; date of birth: more than 130 years ago"
    years = es["more than {years} years ago"].string.format(years=130)
    assert translate_message(_, text) == (
        f"{es['patient not entered'].string} — {es['last name'].string}: "
        f"{es['type it'].string}; {es['date of birth'].string}: {years}"
    )
    # A marked whole after a first piece stays whole ("...: month, day and year, like ...").
    dob = "type the date of birth: month, day and year, like 03141961"
    assert translate_message(_, f"Date of birth: {dob}") == (
        f"{es['Date of birth'].string}: {es[dob].string}"
    )
    # Fields with hardly any words between them are a layout, never matched as a sentence.
    assert translate_message(_, "Fever: 3 days") == "Fever: 3 days"


def test_a_template_a_language_lacks_leaves_the_message_in_english() -> None:
    # Vietnamese translates the patient's screens only: a staff message stays English.
    _ = translations("vi").gettext
    text = "no medication 3 on the list"
    assert translate_message(_, text) == text
