"""`[intake]` in station.toml turns the lobby's questionnaires and insurance question on in
the real lobby (`station run` builds it through station.app.modes), off, or onto a practice's
own folder; a folder the station cannot use stops the start, naming the file."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from station.app.credentials import Credentials
from station.app.modes import lobby_presenter
from station.config import Settings, parse_settings
from station.errors import ConfigError
from station.questionnaires import QUESTIONNAIRE_DIR
from station.ui.ports import MemoryOutbox


def settings(intake: dict[str, object] | None = None) -> Settings:
    raw: dict[str, object] = {"station": {"site": "test-clinic", "station_id": "lobby-1",
                                          "mode": "lobby"}}
    if intake is not None:
        raw["intake"] = intake
    return parse_settings(raw, "test")


def build(config: Settings) -> object:
    return lobby_presenter(config, Credentials(staff_pin="0000"),
                           clock=lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
                           lobby=MemoryOutbox(), speaker=None, biomed=None)  # type: ignore[arg-type]


def test_on_by_default_in_the_real_lobby() -> None:
    checkin = build(settings()).checkin  # type: ignore[attr-defined]
    assert checkin.ask_insurance is True
    assert {"phq-2", "phq-9", "gad-2", "gad-7", "steadi", "tobacco"} <= set(
        checkin._library.instruments)


def test_a_practice_turns_them_off() -> None:
    checkin = build(settings({"questionnaires": False, "ask_insurance": False})).checkin  # type: ignore[attr-defined]
    assert (checkin._library, checkin.ask_insurance) == (None, False)


def test_a_practice_folder_and_a_broken_one(tmp_path: Path) -> None:
    folder = tmp_path / "ours"
    folder.mkdir()
    for name in ("phq-2.json", "phq-9.json"):
        shutil.copy(QUESTIONNAIRE_DIR / name, folder / name)
    (folder / "rules.toml").write_text('[[rule]]\ninstrument = "phq-2"\nmin_age = 18\n',
                                       encoding="utf-8")
    checkin = build(settings({"questionnaire_dir": str(folder)})).checkin  # type: ignore[attr-defined]
    assert set(checkin._library.instruments) == {"phq-2", "phq-9"}
    broken = json.loads((folder / "phq-9.json").read_text(encoding="utf-8"))
    broken["resourceType"] = "Observation"
    (folder / "phq-9.json").write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"intake.questionnaire_dir: .*ours: questionnaire "
                                          r"'phq-9': resourceType must be Questionnaire"):
        build(settings({"questionnaire_dir": str(folder)}))


def test_an_unknown_intake_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="intake"):
        settings({"ask_insurence": True})
