"""Pushed configuration and the settings check (issue 13, items 9 and 12): a push is held to
everything `station config check` holds a file to before it is accepted; a stored push that no
longer passes at start is set aside for the last good one with a warning (never a restart
loop); `config check` knows the installed profiles; deep nesting is a clean refusal.

Sources for the expected values:
- issue 13 item 9 (the failure): a schema-valid push naming profile `nonin-xpod-format2`, an id
  no profile has, was "accepted… stored" and `station run` then exited 2 at every start;
- the profile ids are the bundled files under firmware_profiles/ (`and-ua-651ble` is A&D's
  UA-651BLE Bluetooth cuff, `nonin-xpod-3012lp` Nonin's Xpod 3012LP USB oximeter module: both
  named so on the manufacturers' product pages);
- CPython's tomllib parses arrays and inline tables by mutual recursion (Lib/tomllib/_parser.py:
  parse_value -> parse_array -> parse_value) under the default recursion limit of 1000
  (docs.python.org, sys.getrecursionlimit): 100,000 nested `[` cannot be parsed;
- pydantic-core's JSON parser (jiter) refuses nesting deeper than its recursion limit with
  "recursion limit exceeded" (pydantic-core src/input/return_enums / jiter's JsonErrorType
  RecursionLimitExceeded, message "recursion limit exceeded").
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from station.app import Credentials, HeadlessHost, StationServices
from station.app.pushed import (
    LAST_GOOD_FILE,
    PUSHED_CONFIG_FILE,
    PushedConfig,
    check_push,
    write_pushed_config,
)
from station.cli import main
from station.config import SAMPLE_CONFIG, Settings, parse_settings
from station.devices.profiles import load_profiles
from station.diagnostics import read_health_snapshot
from station.logs import JournalFormatter, Redactor
from station.models import Mode
from station.sync.contract import (
    Channel,
    ConfigPayload,
    StationConfigPush,
    to_json,
    topic,
)
from tests.fixtures.broker import Broker

SITE, STATION = "test-clinic", "exam-9"
AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]
KNOWN = ", ".join(sorted(p.stem for p in (REPO / "firmware_profiles").glob("*.toml")))
UNKNOWN_DEVICE = {"id": "oximeter", "profile": "nonin-xpod-format2",
                  "port": "/dev/serial/by-id/usb-Nonin_Medical_Xpod-if00-port0"}
GOOD_GUARD = {"clock_skew_s": 30.0, "connect_burst_window_s": 2.0}
DEEP = 100_000


def _settings(port: int, state_dir: Path) -> Settings:
    return parse_settings(
        {
            "station": {"site": SITE, "station_id": STATION, "mode": "lobby"},
            "broker": {"host": "127.0.0.1", "port": port, "require_tls": False},
            "storage": {"state_dir": str(state_dir)},
        },
        "test",
    )


def _services(settings: Settings, host: HeadlessHost) -> StationServices:
    services = StationServices(
        settings,
        post=host.post,
        redactor=Redactor(),
        credentials=Credentials(staff_pin="0000", biomed_pin="86420"),
        reading_mode=Mode.TEST,
        health_every_s=0.2,
    )
    host.services = services
    return services


def _stored(message_id: uuid.UUID, settings: dict[str, Any]) -> PushedConfig:
    return PushedConfig(
        message_id=str(message_id),
        received_at=AT,
        settings=StationConfigPush.model_validate(settings),
    )


def _push(settings: dict[str, Any]) -> ConfigPayload:
    return ConfigPayload(
        message_id=uuid.uuid4(),
        site=SITE,
        station_id=STATION,
        sent_at=AT,
        settings=StationConfigPush.model_validate(settings),
    )


def write(tmp_path: Path, text: str, name: str = "station.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = '[station]\nsite = "clinic-north"\nstation_id = "exam-3"\n'


# ------------------------------------------------------------------ `station config check|sample`


def test_the_sample_passes_config_check_with_the_installed_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "sample"]) == 0
    sample = write(tmp_path, capsys.readouterr().out)
    assert sample.read_text() == SAMPLE_CONFIG
    assert main(["config", "check", str(sample)]) == 0
    assert capsys.readouterr().out == (
        f"{sample}: OK — site clinic-north, station exam-3 (exam), broker "
        "broker.clinic.example:8883 with TLS, 2 bound device(s)\n")


def test_config_check_refuses_a_profile_id_no_profile_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, MINIMAL + (
        '[[devices]]\nid = "oximeter"\nprofile = "nonin-xpod-format2"\n'
        'port = "/dev/serial/by-id/usb-Nonin_Medical_Xpod-if00-port0"\n'))
    assert main(["config", "check", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"{bad}: devices[0].profile: no firmware profile 'nonin-xpod-format2' (device "
        f"'oximeter'); expected one of: {KNOWN}\n")
    # `station run` holds the file to the same check, before anything starts.
    assert main(["run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.endswith("station: refusing to start with a bad settings file\n")
    assert "no firmware profile 'nonin-xpod-format2'" in err


def test_config_check_refuses_a_profile_bound_over_the_other_transport(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, MINIMAL + (
        '[[devices]]\nid = "cuff"\nprofile = "and-ua-651ble"\nport = "/dev/ttyUSB0"\n'
        '[[devices]]\nid = "oximeter"\nprofile = "nonin-xpod-3012lp"\n'
        'address = "AA:BB:CC:DD:EE:02"\n'))
    assert main(["config", "check", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"{bad}: devices[0].port: profile 'and-ua-651ble' is a Bluetooth LE device (device "
        "'cuff'): bind it by address, not port\n"
        f"{bad}: devices[1].address: profile 'nonin-xpod-3012lp' is a serial device (device "
        "'oximeter'): bind it by port, not address\n")


@pytest.mark.parametrize("command", [["config", "check"], ["run", "--config"]])
@pytest.mark.parametrize(
    "text",
    ["a = " + "[" * DEEP + "]" * DEEP, "a = " + "{b = " * DEEP + "1" + "}" * DEEP,
     MINIMAL + "x = " + "[" * DEEP],
    ids=["arrays", "inline-tables", "unclosed"],
)
def test_deeply_nested_toml_is_a_clean_refusal_not_a_traceback(
    tmp_path: Path, command: list[str], text: str
) -> None:
    path = write(tmp_path, text)
    done = subprocess.run(
        [sys.executable, "-m", "station", *command, str(path)],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": "/usr/bin:/bin", "STATION_CREDENTIALS": str(tmp_path / "none.toml")},
    )  # fmt: skip
    assert done.returncode == 2
    expected = (
        f"{path}: not valid TOML: arrays or inline tables nested too deeply for the parser "
        "(hundreds of levels, e.g. a = [[[[...); a settings or profile file needs only a few\n"
    )
    if command[0] == "run":
        expected += "station: refusing to start with a bad settings file\n"
    assert done.stderr == expected
    assert "Traceback" not in done.stderr


def test_a_deeply_nested_profile_file_is_a_clean_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = write(tmp_path, "id = " + "[" * DEEP, name="deep-one.toml")
    assert main(["profiles", "check", str(profile)]) == 2
    assert "nested too deeply for the parser" in capsys.readouterr().err


# ------------------------------------------------------------------ a push, checked like a file


def test_a_push_is_held_to_what_config_check_holds_a_file_to(tmp_path: Path) -> None:
    local = _settings(1883, tmp_path)
    installed = load_profiles()

    def profiles() -> dict[str, Any]:
        return installed

    unknown = StationConfigPush.model_validate({"devices": [UNKNOWN_DEVICE]})
    assert check_push(local, unknown, profiles) == [
        "settings.devices[0].profile: no firmware profile 'nonin-xpod-format2' (device "
        f"'oximeter'); expected one of: {KNOWN}"]
    # The contract checks each device; only the whole settings model sees two with one id.
    twice = StationConfigPush.model_validate({"devices": [
        {"id": "cuff", "profile": "and-ua-651ble", "address": "AA:BB:CC:DD:EE:01"},
        {"id": "cuff", "profile": "and-ua-651ble", "address": "AA:BB:CC:DD:EE:02"}]})
    assert check_push(local, twice, profiles) == [
        "settings: Value error, device ids must be unique; repeated: cuff"]
    good = StationConfigPush.model_validate({"devices": [
        {"id": "oximeter", "profile": "nonin-xpod-3012lp",
         "port": "/dev/serial/by-id/usb-Nonin_Medical_Xpod-if00-port0"}],
        "guard": GOOD_GUARD})
    assert check_push(local, good, profiles) == []


@pytest.fixture
def practice(mosquitto_broker: Broker) -> Iterator[tuple[paho.Client, list[dict[str, Any]]]]:
    """The practice side: publishes config (retained) and reads the station's status."""
    statuses: list[dict[str, Any]] = []
    lock = threading.Lock()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="practice-config")

    def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        with lock:
            statuses.append(json.loads(message.payload))

    client.on_message = on_message
    client.connect(mosquitto_broker.host, mosquitto_broker.port)
    client.subscribe(topic(SITE, STATION, Channel.STATUS), 1)
    client.loop_start()
    yield client, statuses
    client.loop_stop()
    client.disconnect()


def _publish(client: paho.Client, body: bytes) -> None:
    client.publish(topic(SITE, STATION, Channel.CONFIG), body, 1, retain=True).wait_for_publish(5)


def _wait(done: Callable[[], bool], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_push_naming_an_unknown_profile_is_refused_and_reported_not_stored(
    mosquitto_broker: Broker,
    practice: tuple[paho.Client, list[dict[str, Any]]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, statuses = practice
    state = tmp_path / "state"
    host = HeadlessHost()
    services = _services(_settings(mosquitto_broker.port, state), host)
    bad = _push({"devices": [UNKNOWN_DEVICE]})
    services.start()
    try:
        with caplog.at_level(logging.ERROR, logger="station.sync.mqtt"):
            _publish(client, to_json(bad))
            assert _wait(lambda: any(s.get("config_problems") for s in statuses))
        refusal = next(s for s in statuses if s.get("config_problems"))
        assert refusal["config_rejected_message_id"] == str(bad.message_id)
        assert refusal["config_problems"] == [
            "settings.devices[0].profile: no firmware profile 'nonin-xpod-format2' (device "
            f"'oximeter'); expected one of: {KNOWN}"]
        assert f"config {bad.message_id} refused: settings.devices[0].profile" in caplog.text
        assert services.pushed.notice == (
            f"Configuration {str(bad.message_id)[:8]} refused: "
            "settings.devices[0].profile: no firmware profile 'nonin-xpod-format2' (device "
            f"'oximeter'); expected one of: {KNOWN}")
        assert not (state / PUSHED_CONFIG_FILE).exists()
        # The next push that can run is accepted, and the refusal leaves the status.
        good = _push({"guard": GOOD_GUARD})
        _publish(client, to_json(good))
        assert _wait((state / PUSHED_CONFIG_FILE).exists)
        assert json.loads((state / PUSHED_CONFIG_FILE).read_text())["message_id"] == str(
            good.message_id)
        assert _wait(lambda: "config_problems" not in statuses[-1]
                     or not statuses[-1]["config_problems"])
    finally:
        services.stop()


def test_a_deeply_nested_json_push_is_refused_and_the_worker_goes_on(
    mosquitto_broker: Broker,
    practice: tuple[paho.Client, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    client, statuses = practice
    state = tmp_path / "state"
    services = _services(_settings(mosquitto_broker.port, state), HeadlessHost())
    services.start()
    try:
        deep = ('{"schema": "rooming.config/1", "settings": ' + "[" * DEEP + "]" * DEEP
                + "}").encode()
        _publish(client, deep)
        assert _wait(lambda: any(s.get("config_problems") for s in statuses))
        refusal = next(s for s in statuses if s.get("config_problems"))
        assert refusal["config_rejected_message_id"] == str(uuid.UUID(int=0))
        assert len(refusal["config_problems"]) == 1
        assert refusal["config_problems"][0].startswith("JSON nests ")  # before any parser
        good = _push({"guard": GOOD_GUARD})
        _publish(client, to_json(good))
        assert _wait((state / PUSHED_CONFIG_FILE).exists)
    finally:
        services.stop()


# ------------------------------------------------------------------ at start: never a loop


def test_a_stored_push_that_no_longer_passes_falls_back_to_the_last_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The situation of issue 13 item 9: an unknown-profile push already stored (by a build
    that did not check it). The station starts on the last good push, says so, and keeps
    the set-aside file."""
    state = tmp_path / "state"
    state.mkdir()
    settings = _settings(1, state)
    last_good = _stored(uuid.uuid4(), {"guard": GOOD_GUARD})
    stored = _stored(uuid.uuid4(), {"devices": [UNKNOWN_DEVICE]})
    write_pushed_config(state, last_good, LAST_GOOD_FILE)
    write_pushed_config(state, stored, PUSHED_CONFIG_FILE)
    with caplog.at_level(logging.WARNING, logger="station.app.pushed"):
        services = _services(settings, HeadlessHost())
    try:
        warning = (
            f"Stored configuration {stored.message_id[:8]} not applied "
            "(settings.devices[0].profile: no firmware profile 'nonin-xpod-format2' (device "
            f"'oximeter'); expected one of: {KNOWN}): running on the last good configuration "
            f"{last_good.message_id[:8]}")
        assert services.settings.guard.model_dump() == GOOD_GUARD
        assert services.settings.devices == []
        assert services.applied_config == last_good
        assert [r.getMessage() for r in caplog.records] == [warning]
        assert services.pushed.notice == warning  # the biomed settings screen
        assert services.health.snapshot().warnings == [warning]
        services.start()
        assert _wait(services.health_path.exists)
        snapshot = read_health_snapshot(services.health_path)
        assert snapshot is not None and snapshot.warnings == [warning]
    finally:
        services.stop()
    assert (state / PUSHED_CONFIG_FILE).read_text() == stored.model_dump_json(indent=2)


def test_without_a_last_good_push_the_station_starts_on_its_settings_file(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    # Unreadable: nested deeper than pydantic-core's JSON parser goes.
    (state / PUSHED_CONFIG_FILE).write_text('{"message_id": ' + "[" * DEEP + "]" * DEEP + "}")
    services = _services(_settings(1, state), HeadlessHost())
    try:
        assert services.applied_config is None
        assert services.settings.guard.clock_skew_s == 120.0  # the file's default
        # The column is where pydantic-core's parser gave up (its own limit, far above any
        # real push's depth); the rest is exact, and the 200,000-character value is left out.
        head, _, tail = services.config_warning.partition(" at line 1 column ")
        assert head == ("Stored configuration (unreadable) not applied ((top level): Invalid "
                        "JSON: recursion limit exceeded")
        column, _, rest = tail.partition(")")
        assert column.isdigit()
        assert rest == ": running on the settings file alone"
    finally:
        services.outbox.close()


def test_a_good_stored_push_becomes_the_last_good_one(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    stored = _stored(uuid.uuid4(), {"guard": GOOD_GUARD})
    write_pushed_config(state, stored, PUSHED_CONFIG_FILE)
    services = _services(_settings(1, state), HeadlessHost())
    try:
        assert services.config_warning == ""
        assert services.health.snapshot().warnings == []
        assert services.settings.guard.model_dump() == GOOD_GUARD
    finally:
        services.outbox.close()
    assert PushedConfig.model_validate_json((state / LAST_GOOD_FILE).read_bytes()) == stored


def test_the_last_good_push_pushed_again_replaces_the_set_aside_one(tmp_path: Path) -> None:
    """Running on the last good push after a bad stored one was set aside, the practice system
    re-publishes the good one: it is stored, so the next start is clean (no warning)."""
    state = tmp_path / "state"
    state.mkdir()
    settings = _settings(1, state)
    good = _push({"guard": GOOD_GUARD})
    last_good = PushedConfig(message_id=str(good.message_id), received_at=AT,
                             settings=good.settings)
    write_pushed_config(state, last_good, LAST_GOOD_FILE)
    write_pushed_config(state, _stored(uuid.uuid4(), {"devices": [UNKNOWN_DEVICE]}))
    first = _services(settings, HeadlessHost())
    try:
        assert first.config_warning != ""
        assert first.pushed.check(good) == []
        first.pushed.receive(good)
    finally:
        first.outbox.close()
    again = _services(settings, HeadlessHost())
    try:
        assert again.config_warning == ""
        assert again.applied_config == last_good
        assert again.settings.guard.model_dump() == GOOD_GUARD
    finally:
        again.outbox.close()


def test_a_crafted_key_in_a_push_cannot_forge_a_journal_record(
    mosquitto_broker: Broker,
    practice: tuple[paho.Client, list[dict[str, Any]]],
    tmp_path: Path,
) -> None:
    # #20, replayed: a pushed config's key names went into the log raw; a key holding a newline
    # and "<2>station.app: watchdog: TAMPER DETECTED" wrote a forged journal record.
    client, statuses = practice
    journal = io.StringIO()
    handler = logging.StreamHandler(journal)
    handler.setFormatter(JournalFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    services = _services(_settings(mosquitto_broker.port, tmp_path / "state"), HeadlessHost())
    forged = "x\n<2>station.app: watchdog: TAMPER DETECTED\r\x1b[2K"
    body = json.dumps({
        "schema": "rooming.config/1", "message_id": str(uuid.uuid4()), "site": SITE,
        "station_id": STATION, "sent_at": AT.isoformat(), "settings": {forged: 1},
    }).encode()
    services.start()
    try:
        _publish(client, body)
        assert _wait(lambda: any(s.get("config_problems") for s in statuses))
        assert _wait(lambda: "refused" in journal.getvalue())
    finally:
        services.stop()
        root.removeHandler(handler)
    lines = journal.getvalue().splitlines()
    # Every record starts "<prio>logger: " and nothing a sender wrote starts one.
    assert not [line for line in lines if re.match(r"<\d>station\.app: watchdog", line)]
    refused = [line for line in lines if "refused" in line and "watchdog" in line]
    assert refused and all("x\\n<2>station.app: watchdog: TAMPER DETECTED\\r\\x1b[2K" in line
                           for line in refused)
