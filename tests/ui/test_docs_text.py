"""#15: "docs/ui.md's wrong-PIN text differs from the screen". What the docs quote for a wrong
PIN is held to what each screen's presenter shows for one (the docs are the outside text the
screens are held to here; a change to either fails until both agree)."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.app.demo_ui import build_presenter

pytestmark = pytest.mark.ui

UI_DOC = Path(__file__).resolve().parents[2] / "docs" / "ui.md"


def quoted() -> str:
    return " ".join(UI_DOC.read_text(encoding="utf-8").split())  # line breaks as spaces


def test_the_wrong_pin_texts_in_docs_ui_are_the_screens() -> None:
    exam = build_presenter("exam")
    exam.sign_in("999999")
    lobby = build_presenter("lobby")
    for _ in range(5):
        lobby.staff_corner()  # the hidden corner opens the staff PIN row
    lobby.staff_exit("111111")
    biomed = build_presenter("biomed")
    biomed.unlock("999999")
    wrong_biomed = biomed.message
    for _ in range(4):
        biomed.unlock("999999")  # the fifth wrong try locks biomed for 300 s
    shown = {
        "exam": exam.message,
        "lobby": lobby.view().text["staff_error"],
        "biomed": wrong_biomed,
        "biomed locked": biomed.lockout_text(),
    }
    assert shown == {
        "exam": "badge or PIN not recognised",
        "lobby": "PIN not accepted",
        "biomed": "PIN not accepted",
        "biomed locked": "Too many wrong PINs: try again in 5:00",
    }
    doc = quoted()
    for where, text in shown.items():
        assert f'"{text}"' in doc, f"docs/ui.md does not quote the {where} text {text!r}"
