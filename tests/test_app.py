"""The composition root: `station run`'s services over a real Mosquitto and serial simulators."""

from __future__ import annotations

import io
import json
import logging
import os
import random
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from station.app import Credentials, HeadlessHost, StationServices, start_logging
from station.app.credentials import HashedMa, hash_secret, write_credentials
from station.capture import CaptureState
from station.config import Settings, parse_settings
from station.demo import DemoPatient, OnPatient, PracticeSystem, demo_model, schedule_payload
from station.devices.profiles import load_profiles
from station.devices.simulators.serial import SerialSimulator
from station.logs import Redactor
from station.models import Mode, PulseOximetry
from station.rooming_data import MedicationStatus
from station.sync.contract import VitalsPayload
from station.ui.presenters import ExamPresenter, Tile
from tests.fixtures.broker import Broker

SITE, STATION = "test-clinic", "exam-9"
PATIENT = DemoPatient("ZZTEST", "Quintus", date(1971, 2, 3), "TEST100001", "APT-TEST-0001")


def _settings(broker: Broker, state_dir: Path, devices: list[tuple[str, str, str]]) -> Settings:
    return parse_settings(
        {
            "station": {"site": SITE, "station_id": STATION},
            "broker": {"host": broker.host, "port": broker.port, "require_tls": False},
            "devices": [{"id": i, "profile": p, "port": port} for i, p, port in devices],
            "storage": {"state_dir": str(state_dir)},
        },
        "test",
    )


@pytest.fixture
def devices(tmp_path: Path) -> Iterator[dict[str, tuple[OnPatient, SerialSimulator]]]:
    """An oximeter and a scale on ptys, streaming as the real ones do: sensor off / nobody on
    the platform until armed, then a patient at rest for as long as they stay on."""
    profiles = load_profiles()
    started: dict[str, tuple[OnPatient, SerialSimulator]] = {}
    for seed, (device_id, profile_id) in enumerate(
        (("oximeter", "nonin-oem-iii-df8"), ("scale", "sma-scale"))
    ):
        profile = profiles[profile_id]
        assert profile.serial is not None
        model = demo_model(profile, random.Random(seed))
        assert isinstance(model, OnPatient)
        simulator = SerialSimulator(model, baud=profile.serial.line.baud,
                                    link_path=tmp_path / f"usb-TEST_{device_id}")
        simulator.start()
        started[device_id] = (model, simulator)
    yield started
    for _, simulator in started.values():
        simulator.stop()


def test_services_room_a_patient_from_the_pty_devices_to_the_practice_systems_ack(
    mosquitto_broker: Broker,
    devices: dict[str, tuple[OnPatient, SerialSimulator]],
    tmp_path: Path,
) -> None:
    received: list[dict[str, Any]] = []
    practice = PracticeSystem(mosquitto_broker.host, mosquitto_broker.port, site=SITE,
                              station_id=STATION, on_message=lambda _t, b: received.append(b))
    practice.start(schedule_payload([PATIENT], site=SITE, station_id=STATION,
                                    now=datetime.now(UTC)))
    settings = _settings(mosquitto_broker, tmp_path / "state", [
        ("oximeter", "nonin-oem-iii-df8", devices["oximeter"][1].port),
        ("scale", "sma-scale", devices["scale"][1].port),
    ])
    host = HeadlessHost()
    services = StationServices(settings, post=host.post, redactor=Redactor(),
                               credentials=Credentials(ma={"4321": "ma-7"}),
                               reading_mode=Mode.TEST)
    host.services = services
    presenter = services.presenter
    assert isinstance(presenter, ExamPresenter)
    services.start()
    try:
        rooming = presenter.rooming
        host.run_until(lambda: len(rooming.schedule) == 1, 10, "schedule")
        host.intent("sign_in", "4321")
        host.intent("pick", PATIENT.appointment_id)
        host.intent("confirm")
        for model, _ in devices.values():
            model.arm()

        def spo2_tile() -> Tile:
            return next(t for t in presenter.tiles() if t.key == "spo2")

        # Settling: the tile shows the live SpO2 with "measuring…"; the rooming has nothing.
        host.run_until(lambda: spo2_tile().source == "oximeter · measuring…", 10, "live SpO2")
        live = presenter.live["oximeter"]
        assert isinstance(live, PulseOximetry) and live.spo2_percent is not None
        assert spo2_tile() == Tile("spo2", "SpO2", f"{live.spo2_percent:.0f}", "%",
                                   "oximeter · measuring…", (), "info", True, 0)
        host.run_until(lambda: len(rooming.entries) == 2, 20, "two readings")
        assert "measuring" not in spo2_tile().source
        # The devices keep streaming while on the patient: the tiles' live values move, the
        # rooming gets nothing more (one spot reading per episode).
        assert services.manager is not None
        streamed = {d: len(m.sent) for d, (m, _) in devices.items()}
        host.run_until(lambda: all(len(m.sent) >= streamed[d] + 2
                                   for d, (m, _) in devices.items()), 10, "more streaming")
        assert len(rooming.entries) == 2
        assert {services.manager.capture_state(d) for d in devices} == {CaptureState.CAPTURED}
        for model, _ in devices.values():
            model.take_off()
        host.intent("go", "complaint")
        host.intent("toggle_complaint", "cough")
        for index, _ in enumerate(rooming.medications):  # #18: reviewed before Send
            host.intent("set_medication", index, MedicationStatus.TAKING)
        host.intent("go", "review")
        host.intent("send")
        assert presenter.send_status() in ("Saved — waiting for the practice system",
                                           "Received by the practice system")
        host.run_until(lambda: presenter.send_status() == "Received by the practice system",
                       15, "ack")
    finally:
        services.stop()
        practice.stop()
    (body,) = received
    vitals = VitalsPayload.model_validate(body)  # the contract holds
    assert vitals.message_id == presenter.sent_id
    assert (vitals.site, vitals.station_id) == (SITE, STATION)
    assert vitals.appointment_id == PATIENT.appointment_id
    assert vitals.patient.model_dump() == {"mrn": "TEST100001", "family_name": "ZZTEST",
                                           "given_name": "Quintus",
                                           "birth_date": date(1971, 2, 3)}
    assert vitals.ma_id == "ma-7"
    assert vitals.chief_complaint == "cough"
    # Exactly what the simulated devices sent, through pyserial, the codecs and the guard.
    by_device = {r.device_id: r for r in vitals.readings}
    assert sorted(by_device) == ["oximeter", "scale"]
    oximeter_sent = devices["oximeter"][0].sent_on_patient()
    scale_sent = devices["scale"][0].sent_on_patient()
    oximetry = by_device["oximeter"].reading.model_dump()
    assert {k: oximetry[k] for k in oximeter_sent[0]} in oximeter_sent
    assert {"weight_kg": by_device["scale"].reading.model_dump()["weight_kg"]} in scale_sent
    assert {r.reading.flags for r in vitals.readings} == {()}
    assert {r.reading.mode for r in vitals.readings} == {Mode.TEST}
    assert [r.reading.codec for r in vitals.readings] == ["serial:nonin-8", "serial:sma"] or [
        r.reading.codec for r in vitals.readings] == ["serial:sma", "serial:nonin-8"]
    assert (tmp_path / "state" / "health.json").exists()


def test_run_refuses_plain_tcp_when_tls_is_required_and_names_the_fix(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(
        f'[station]\nsite = "{SITE}"\nstation_id = "{STATION}"\n\n'
        '[broker]\nhost = "127.0.0.1"\nport = 8883\nrequire_tls = true\n\n'
        f'[storage]\nstate_dir = "{tmp_path / "state"}"\n'
    )
    write_credentials(tmp_path / "credentials.toml", Credentials(
        ma_hash=(HashedMa(id="ma-7", kind="pin", hash=hash_secret("402913")),)))
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}
    done = subprocess.run([sys.executable, "-m", "station", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert done.returncode == 2
    assert done.stderr.endswith(
        "[broker]: require_tls is true but no ca_file is set: refusing plain TCP to the broker "
        "(set ca_file, or require_tls = false on a lab bench only)\n"
        "station: refusing to start\n"
    )


def test_run_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\nsite = "{SITE}"\nstation_id = "{STATION}"\n')
    done = subprocess.run([sys.executable, "-m", "station", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{tmp_path / 'credentials.toml'}: file not found")
    assert done.stderr.endswith("station: refusing to start without credentials\n")


def test_a_scheduled_patients_name_logged_by_mistake_comes_out_redacted(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    stream = io.StringIO()
    redactor, undo = start_logging(stream)
    practice = PracticeSystem(mosquitto_broker.host, mosquitto_broker.port, site=SITE,
                              station_id=STATION)
    practice.start(schedule_payload([PATIENT], site=SITE, station_id=STATION,
                                    now=datetime.now(UTC)))
    host = HeadlessHost()
    services = StationServices(_settings(mosquitto_broker, tmp_path / "state", []),
                               post=host.post, redactor=redactor,
                               credentials=Credentials(ma={"4321": "ma-7"}))
    host.services = services
    services.start()
    try:
        assert isinstance(services.presenter, ExamPresenter)
        rooming = services.presenter.rooming
        host.run_until(lambda: len(rooming.schedule) == 1, 10, "schedule")
        logging.getLogger("station.somewhere").warning(
            "oops: picked Quintus %s mrn %s", "ZZTEST", "TEST100001")
    finally:
        services.stop()
        practice.stop()
        undo()
    lines = [line for line in stream.getvalue().splitlines() if "oops" in line]
    assert len(lines) == 1
    assert "Quintus" not in lines[0] and "ZZTEST" not in lines[0]
    assert "TEST100001" not in lines[0]
    assert lines[0].endswith("oops: picked [redacted:name] [redacted:name] mrn [redacted:mrn]")


def test_a_lobby_help_request_reaches_the_front_desk_over_mqtt(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    got: list[dict[str, Any]] = []
    arrived = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="front-desk")
    subscribed = threading.Event()
    client.on_connect = lambda c, *_a: c.subscribe(f"rooming/v1/{SITE}/{STATION}/alert", 1)
    client.on_subscribe = lambda *_a: subscribed.set()

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        got.append(json.loads(message.payload))
        arrived.set()

    client.on_message = on_message
    client.connect(mosquitto_broker.host, mosquitto_broker.port)
    client.loop_start()
    settings = parse_settings(
        {"station": {"site": SITE, "station_id": STATION, "mode": "lobby"},
         "broker": {"host": mosquitto_broker.host, "port": mosquitto_broker.port,
                    "require_tls": False},
         "display": {"locale": "es_US"},
         "storage": {"state_dir": str(tmp_path / "state")}},
        "test",
    )
    host = HeadlessHost()
    services = StationServices(settings, post=host.post, redactor=Redactor(),
                               credentials=Credentials(staff_pin="0000"))
    host.services = services
    try:
        assert subscribed.wait(10)
        services.start()
        host.intent("start")
        host.intent("ask_for_help")
        assert arrived.wait(10)
    finally:
        services.stop()
        client.disconnect()
        client.loop_stop()
    (body,) = got
    uuid.UUID(body.pop("message_id"))
    sent_at = datetime.fromisoformat(body.pop("sent_at"))
    requested_at = datetime.fromisoformat(body.pop("requested_at"))
    assert abs((sent_at - requested_at).total_seconds()) < 5
    assert body == {"schema": "rooming.help_request/1", "site": SITE, "station_id": STATION,
                    "screen": "find", "language": "es"}


def test_a_schedule_from_another_day_is_not_offered_and_staff_are_told(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    # #20: a stale retained schedule (yesterday's) was accepted: yesterday's patients offered
    # for today's rooms, a wrong-patient risk.
    yesterday = datetime.now(UTC) - timedelta(days=1)
    practice = PracticeSystem(mosquitto_broker.host, mosquitto_broker.port, site=SITE,
                              station_id=STATION, on_message=lambda _t, _b: None)
    practice.start(schedule_payload([PATIENT], site=SITE, station_id=STATION, now=yesterday))
    host = HeadlessHost()
    services = StationServices(_settings(mosquitto_broker, tmp_path / "state", []),
                               post=host.post, redactor=Redactor(),
                               credentials=Credentials(ma={"4321": "ma-7"}),
                               reading_mode=Mode.TEST)
    host.services = services
    presenter = services.presenter
    assert isinstance(presenter, ExamPresenter)
    services.start()
    try:
        host.run_until(lambda: services.schedule_warning != "", 10, "the stale schedule")
        assert presenter.rooming.schedule == ()
        warning = (f"the practice system's schedule is for {yesterday.date().isoformat()}, not "
                   f"today ({datetime.now(UTC).date().isoformat()}): not shown; waiting for "
                   "today's")
        assert services.health.snapshot().warnings == [warning]
        practice.publish_schedule(schedule_payload([PATIENT], site=SITE, station_id=STATION,
                                                   now=datetime.now(UTC)))
        host.run_until(lambda: len(presenter.rooming.schedule) == 1, 10, "today's schedule")
        assert services.health.snapshot().warnings == []
    finally:
        services.stop()
        practice.stop()
