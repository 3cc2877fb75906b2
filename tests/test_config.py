"""Settings: a good file loads; a bad one names the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.cli import main
from station.config import SAMPLE_CONFIG, StationMode, load_settings
from station.errors import ConfigError

MINIMAL = '[station]\nsite = "clinic-north"\nstation_id = "exam-3"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert info.value.path == str(tmp_path / "station.toml")
    return info.value.problems


def test_sample_config_is_valid(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, SAMPLE_CONFIG))
    assert settings.station.station_id == "exam-3"
    assert settings.station.mode == StationMode.EXAM
    assert [d.id for d in settings.devices] == ["cuff", "oximeter"]
    assert settings.display.weight_unit == "lb"
    assert settings.broker.require_tls is True


def test_defaults_are_the_safe_ones(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL))
    assert settings.broker.require_tls is True
    assert settings.guard.clock_skew_s == 120.0
    assert settings.session.lobby_idle_warning_s == 60
    assert settings.session.lobby_idle_wipe_s == 90


def test_typo_in_a_key_names_the_key(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + "[broker]\nhots = 'x'\n") == [
        "broker.hots: unknown key (a typo?); see docs/configuration.md for the keys"]


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    assert problems(tmp_path, MINIMAL + "[broker]\nport = 'abc'\n") == [
        "broker.port: Input should be a valid integer, unable to parse string as an integer; "
        "got 'abc'"]
    assert problems(tmp_path, MINIMAL + "[broker]\nport = 70000\n") == [
        "broker.port: Input should be less than or equal to 65535; got 70000"]


def test_bad_mode_lists_what_is_expected(tmp_path: Path) -> None:
    text = MINIMAL.replace('station_id = "exam-3"\n', 'station_id = "exam-3"\nmode = "kiosk"\n')
    assert problems(tmp_path, text) == [
        "station.mode: Input should be 'exam' or 'lobby'; got 'kiosk'"]


def test_station_id_must_be_a_safe_topic_level(tmp_path: Path) -> None:
    text = MINIMAL.replace('"exam-3"', '"exam/#"')
    assert problems(tmp_path, text) == [
        "station.station_id: got 'exam/#', expected letters, digits, '-', '_' or '.', starting "
        "with a letter or digit (at most 64; it becomes an MQTT topic level)"]


def test_device_needs_exactly_one_transport_and_unique_id(tmp_path: Path) -> None:
    both = MINIMAL + ('[[devices]]\nid = "cuff"\nprofile = "p"\naddress = "AA:BB:CC:DD:EE:01"\n'
                      'port = "/dev/ttyUSB0"\n')
    assert problems(tmp_path, both) == [
        "devices[0]: Value error, give exactly one of address (Bluetooth LE) or port (serial)"]
    dupes = MINIMAL + ('[[devices]]\nid = "cuff"\nprofile = "p"\nport = "/dev/a"\n'
                       '[[devices]]\nid = "cuff"\nprofile = "p"\nport = "/dev/b"\n')
    assert problems(tmp_path, dupes) == [
        "(top level): Value error, device ids must be unique; repeated: cuff"]


def test_missing_required_section_and_broken_toml(tmp_path: Path) -> None:
    assert problems(tmp_path, "[display]\nlocale = 'en_US'\n") == [
        "station: missing: this key is required"]
    broken = problems(tmp_path, "[station\nsite=1")
    assert len(broken) == 1 and broken[0].startswith("not valid TOML: ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.toml")
    assert info.value.problems == ["file not found (set STATION_CONFIG or pass a path)"]


def test_config_check_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, SAMPLE_CONFIG)
    assert main(["config", "check", str(good)]) == 0
    assert capsys.readouterr().out == (
        f"{good}: OK — site clinic-north, station exam-3 (exam), broker "
        "broker.clinic.example:8883 with TLS, 2 bound device(s)\n")
    bad = write(tmp_path, MINIMAL + "[broker]\nport = 0\n")
    assert main(["config", "check", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"{bad}: broker.port: Input should be greater than or equal to 1; got 0\n")


def test_run_refuses_to_start_with_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, MINIMAL + "[guard]\nclock_skew_s = -1\n")
    assert main(["run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == (f"{bad}: guard.clock_skew_s: Input should be greater than or equal to 0; "
                   "got -1\nstation: refusing to start with a bad settings file\n")


def test_language_is_one_the_station_has(tmp_path: Path) -> None:
    # station/locale LANGUAGES: en, es, vi; Vietnamese has patient (lobby) screens only.
    assert load_settings(write(tmp_path, MINIMAL)).display.language == "en"
    spanish = load_settings(write(tmp_path, MINIMAL + "[display]\nlanguage = 'es'\n"))
    assert spanish.display.language == "es"
    assert problems(tmp_path, MINIMAL + "[display]\nlanguage = 'fr'\n") == [
        "display.language: Value error, expected one of en, es, vi (the languages in "
        "station/locale); got 'fr'"]
    assert problems(tmp_path, MINIMAL + "[display]\nlanguage = 'vi'\n") == [
        "(top level): Value error, display.language 'vi' has patient (lobby) screens only: "
        "an exam station needs one of en, es"]
    lobby = MINIMAL.replace('station_id = "exam-3"\n', 'station_id = "lobby-1"\nmode = "lobby"\n')
    kiosk = load_settings(write(tmp_path, lobby + "[display]\nlanguage = 'vi'\n"))
    assert kiosk.display.language == "vi"


def test_language_unset_follows_the_locale(tmp_path: Path) -> None:
    # A file written before `language` existed: `locale = "es_US"` meant a Spanish lobby.
    lobby = MINIMAL.replace('station_id = "exam-3"\n', 'station_id = "lobby-1"\nmode = "lobby"\n')
    es = load_settings(write(tmp_path, lobby + "[display]\nlocale = 'es_US'\n"))
    assert es.display.language == "es"
    fr = load_settings(write(tmp_path, lobby + "[display]\nlocale = 'fr_CA'\n"))
    assert fr.display.language == "en"
