"""Biomed, barcode lookups and pushed config on the real `station run` services: a real
Mosquitto, a Nonin Xpod simulator on a pty under a by-id name, bindings.json, the outbox."""

from __future__ import annotations

import io
import json
import logging
import random
import subprocess
import tarfile
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from station.app import (
    Credentials,
    HeadlessHost,
    StationServices,
    remember_schedule,
    start_logging,
)
from station.capture import CaptureState
from station.config import BoundDevice, Settings, parse_settings
from station.demo import DemoPatient, OnPatient, demo_model, schedule_payload
from station.devices.profiles import load_profiles
from station.devices.simulators.serial import SerialSimulator
from station.logs import RecentErrors, Redactor
from station.models import Mode, PulseOximetry
from station.rooming_data import RoomingState, ScheduledPatient
from station.sync.contract import (
    Appointment,
    Channel,
    ConfigPayload,
    LookupResponse,
    PatientIdentifiers,
    StationConfigPush,
    device_status_topic,
    to_json,
    topic,
)
from station.ui.presenters import DeviceLine, ExamPresenter
from tests.fixtures.broker import DEPLOY_ACL, Broker, free_port, start_broker

SITE, STATION = "test-clinic", "exam-9"
BIOMED_PIN, MA_PIN = "86420", "4321"
MA_BADGE = "BADGE-0007"
XPOD = "usb-Nonin_Medical_Xpod_TEST-if00-port0"  # matches the Xpod profile's by-id pattern
XPOD_ID = "serial-Nonin_Medical_Xpod_TEST-if00-port0"
PATIENT = DemoPatient("ZZTEST", "Sextus", date(1968, 7, 9), "TEST100006", "APT-TEST-0006")
AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
FOUND = Appointment(
    appointment_id="APT-TEST-0042",
    patient=PatientIdentifiers(
        mrn="TEST100042", family_name="ZZTEST", given_name="Octavia", birth_date=date(1990, 1, 2)
    ),
    starts_at=AT,
    reason="wrist pain",
    room="Exam 9",
)


def _settings(port: int, state_dir: Path, mode: str = "exam") -> Settings:
    return parse_settings(
        {
            "station": {"site": SITE, "station_id": STATION, "mode": mode},
            "broker": {"host": "127.0.0.1", "port": port, "require_tls": False},
            "storage": {"state_dir": str(state_dir)},
        },
        "test",
    )


def _services(
    settings: Settings, host: HeadlessHost, by_id: Path, **kwargs: Any
) -> StationServices:
    services = StationServices(
        settings,
        post=host.post,
        redactor=kwargs.pop("redactor", Redactor()),
        credentials=Credentials(
            ma={MA_PIN: "ma-7", MA_BADGE: "ma-7"}, staff_pin="0000", biomed_pin=BIOMED_PIN
        ),
        reading_mode=Mode.TEST,
        by_id_dir=by_id,
        **kwargs,
    )
    host.services = services
    return services


@pytest.fixture
def xpod(tmp_path: Path) -> Iterator[tuple[OnPatient, SerialSimulator, Path]]:
    """A Nonin Xpod plugged in (not bound): sensor off until armed."""
    profile = load_profiles()["nonin-xpod-3012lp"]
    assert profile.serial is not None
    model = demo_model(profile, random.Random(7))
    assert isinstance(model, OnPatient)
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    simulator = SerialSimulator(model, baud=profile.serial.line.baud, link_path=by_id / XPOD)
    simulator.start()
    yield model, simulator, by_id
    simulator.stop()


def _retained_presence(broker: Broker, device_id: str) -> str:
    """The retained device status, read as a practice-system dashboard would."""
    done = subprocess.run(
        ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-C", "1", "-W", "5",
         "-t", device_status_topic(SITE, STATION, device_id)],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    presence: str = json.loads(done.stdout)["presence"]
    return presence


def _line(lines: tuple[DeviceLine, ...], device_id: str) -> DeviceLine:
    return next(line for line in lines if line.device_id == device_id)


def test_biomed_pin_binds_tests_and_unbinds_the_plugged_in_xpod(
    mosquitto_broker: Broker, xpod: tuple[OnPatient, SerialSimulator, Path], tmp_path: Path
) -> None:
    model, _simulator, by_id = xpod
    state = tmp_path / "state"
    host = HeadlessHost()
    services = _services(_settings(mosquitto_broker.port, state), host, by_id)
    presenter = services.presenter
    assert isinstance(presenter, ExamPresenter) and presenter.biomed is not None
    biomed = presenter.biomed
    services.start()
    try:
        host.intent("sign_in", "99999")  # neither an MA nor biomed: no hint which
        assert (presenter.screen, presenter.message) == ("signin", "badge or PIN not recognised")
        host.intent("sign_in", BIOMED_PIN)
        assert presenter.screen == "biomed" and presenter.rooming.state is RoomingState.SIGNED_OUT
        assert _line(biomed.device_lines(), XPOD_ID) == DeviceLine(
            XPOD_ID, XPOD_ID, "nonin-xpod-3012lp · serial · in range", False, True
        )

        host.intent("bind", XPOD_ID)
        assert biomed.message == f"{XPOD_ID} bound to this station"
        saved = json.loads((state / "bindings.json").read_text())
        assert saved == {
            "version": 1,
            "devices": [{"id": XPOD_ID, "profile": "nonin-xpod-3012lp", "port": str(by_id / XPOD)}],
        }
        assert services.bindings == (
            BoundDevice(id=XPOD_ID, profile="nonin-xpod-3012lp", port=str(by_id / XPOD)),
        )
        # The new device manager opened the port: bound, connected, and the firmware revision
        # the Xpod reports on connect.
        host.run_until(
            lambda: "firmware" in _line(biomed.device_lines(), XPOD_ID).detail, 10, "connected"
        )
        assert _line(biomed.device_lines(), XPOD_ID) == DeviceLine(
            XPOD_ID, XPOD_ID, "nonin-xpod-3012lp · serial · in range · firmware 48", True, True
        )
        host.run_until(
            lambda: _retained_presence(mosquitto_broker, XPOD_ID) == "online", 10, "online"
        )
        assert services.manager is not None
        assert [(s.device_id, s.state.value) for s in services.manager.status()] in (
            [(XPOD_ID, "connected")],
            [(XPOD_ID, "measuring")],
        )

        host.intent("test", XPOD_ID)
        assert biomed.biomed.state.value == "device_test" and biomed.test_lines() == ()
        model.arm()
        host.run_until(lambda: len(biomed.biomed.test_results) >= 1, 10, "test reading")
        result = biomed.biomed.test_results[0]
        reading = result.reading
        assert isinstance(reading, PulseOximetry) and reading.codec == "serial:nonin-2"
        values = {"pulse_rate_bpm": reading.pulse_rate_bpm, "spo2_percent": reading.spo2_percent}
        assert values in model.sent_on_patient()
        assert reading.mode is Mode.TEST and reading.raw_hex == result.raw_hex != ""
        # As a person reads it (issue 15: never the model's JSON): what, value and unit,
        # when, which device; then the raw bytes and the verdict.
        assert biomed.test_lines()[:2] == (
            f"Pulse oximetry {reading.spo2_percent:.0f} %, pulse {reading.pulse_rate_bpm:.0f}"
            f" /min · {result.received_at:%H:%M:%S} · {XPOD_ID}",
            f"raw: {reading.raw_hex} · accepted",
        )
        # A test measurement is for the test view only: the episode's captured reading (no
        # session: the guard would tray it) reaches neither a rooming nor its tray.
        manager = services.manager
        host.run_until(
            lambda: manager.capture_state(XPOD_ID) is CaptureState.CAPTURED, 15, "captured"
        )
        shown = len(biomed.biomed.test_results)
        host.run_until(lambda: len(biomed.biomed.test_results) > shown, 5, "one more tick")
        assert (presenter.rooming.entries, presenter.rooming.tray) == ((), ())
        model.take_off()

        host.intent("back")
        host.intent("unbind", XPOD_ID)  # asks first (issue 15: a stray tap unbound a cuff)
        assert biomed.confirm_unbind == XPOD_ID and _line(biomed.device_lines(), XPOD_ID).bound
        host.intent("unbind_confirmed")
        assert biomed.message == f"{XPOD_ID} unbound"
        assert json.loads((state / "bindings.json").read_text()) == {"version": 1, "devices": []}
        assert services.bindings == ()
        assert _line(biomed.device_lines(), XPOD_ID).bound is False
        # Its retained presence says offline now (it said online while bound).
        host.run_until(
            lambda: _retained_presence(mosquitto_broker, XPOD_ID) == "offline",
            10,
            "offline presence",
        )
        host.intent("lock")
        assert presenter.screen == "signin"
    finally:
        services.stop()


def test_outbox_depth_and_the_diagnostics_export_on_an_offline_station(
    xpod: tuple[OnPatient, SerialSimulator, Path], tmp_path: Path
) -> None:
    """Nobody listens on the broker port: the outbox holds what was saved. The export has the
    real depth and device state, and no patient data (the rows hold some, the log had some)."""
    _, _, by_id = xpod
    state = tmp_path / "state"
    recent = RecentErrors()
    redactor, undo_logging = start_logging(io.StringIO(), recent)  # as `station run` does
    host = HeadlessHost()
    state.mkdir()
    (state / "bindings.json").write_text(
        json.dumps(
            {
                "version": 1,
                "devices": [
                    {"id": "ox", "profile": "nonin-xpod-3012lp", "port": str(by_id / XPOD)}
                ],
            }
        )
    )
    services = _services(
        _settings(free_port(), state), host, by_id, recent_errors=recent, redactor=redactor
    )
    remember_schedule(redactor, schedule_payload([PATIENT], site=SITE, station_id=STATION, now=AT))
    presenter = services.presenter
    assert isinstance(presenter, ExamPresenter) and presenter.biomed is not None
    biomed = presenter.biomed
    services.start()
    try:
        for _ in range(3):
            services.link.submit(
                Channel.VITALS, b'{"patient": "ZZTEST Sextus TEST100006"}', uuid.uuid4()
            )
        logging.getLogger("station.test").warning("lost ZZTEST %s", "TEST100006")
        host.intent("sign_in", BIOMED_PIN)
        host.run_until(
            lambda: (
                services.manager is not None
                and [s.state.value for s in services.manager.status()] == ["connected"]
            ),
            10,
            "connected",
        )
        host.intent("open_settings")
        depth = services.outbox.stats().depth
        assert depth == 4  # the 3 vitals and the audit record of the biomed unlock (#17)
        lines = biomed.settings_lines()
        assert lines[:4] == (
            "Site: test-clinic",
            "Station: exam-9 (exam)",
            f"Broker: 127.0.0.1:{services.settings.broker.port}",
            "TLS: off — not for production",
        )
        assert lines[4].startswith("Outbox: 4 waiting to send, oldest ")
        host.intent("export")
        (bundle,) = (state / "diagnostics").iterdir()
        assert biomed.message == (
            f"Diagnostics bundle written (no patient data): {bundle} "
            f"({bundle.stat().st_size:,} bytes)"
        )
        assert biomed.export_text() == biomed.message  # stays on the screen
    finally:
        services.stop()
        undo_logging()
    with tarfile.open(bundle) as tar:
        files = {
            m.name.split("/")[-1]: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }
    assert json.loads(files["devices.json"]) == [
        {
            "id": "ox",
            "profile": "nonin-xpod-3012lp",
            "transport": "serial",
            "state": "connected",
            "detail": "",
            "last_frame_age_s": None,
            "frames_rejected": 0,
            "battery_percent": None,
            "firmware_revision": None,
        }
    ]
    assert json.loads(files["outbox.json"])["pending"] == 4  # with the unlock's audit record
    assert b"lost [redacted:name] [redacted:mrn]" in files["errors.log"]
    everything = b"".join(files.values())
    for secret in (b"ZZTEST", b"Sextus", b"TEST100006", b"1968"):
        assert secret not in everything


class PracticeLookups:
    """The practice system's lookup service: answers known barcodes, ignores `silent` ones."""

    def __init__(self, broker: Broker, known: dict[str, Appointment], silent: set[str]) -> None:
        self.known, self.silent = known, silent
        self.requests: list[dict[str, Any]] = []
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="practice-lookups", protocol=paho.MQTTv5
        )
        ready = threading.Event()
        self.client.on_connect = lambda c, *_a: c.subscribe(topic(SITE, STATION, Channel.LOOKUP), 1)
        self.client.on_subscribe = lambda *_a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(10)

    def _on_message(self, client: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        body = json.loads(message.payload)
        self.requests.append(body)
        if body["barcode"] in self.silent:
            return
        appointment = self.known.get(body["barcode"])
        props = message.properties
        assert props is not None
        response = LookupResponse(
            correlation_id=uuid.UUID(bytes=props.CorrelationData),
            found=appointment is not None,
            appointment=appointment,
        )
        client.publish(props.ResponseTopic, to_json(response), 1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_scanned_wristband_offers_the_patient_to_confirm_and_misses_say_so(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    practice = PracticeLookups(mosquitto_broker, {"TEST100042": FOUND}, {"TEST100099"})
    host = HeadlessHost()
    services = _services(
        _settings(mosquitto_broker.port, tmp_path / "state"),
        host,
        tmp_path / "no-by-id",
        lookup_timeout_s=1.0,
    )
    presenter = services.presenter
    assert isinstance(presenter, ExamPresenter)
    rooming = presenter.rooming
    services.start()
    try:
        assert services.link.wait_connected(10)
        host.intent("sign_in", MA_PIN)

        # #20: a staff badge swiped on the list is said to be one, and never asked about.
        host.intent("scan_barcode", MA_BADGE)
        assert presenter.message == "that is a staff badge — scan the patient's wristband"

        host.intent("scan_barcode", "TEST100077")
        assert presenter.message == "looking up the scanned barcode…"
        host.run_until(
            lambda: presenter.message != "looking up the scanned barcode…", 10, "not found"
        )
        assert presenter.message == "not found — pick from the list or ask the front desk"
        assert (rooming.state, rooming.patient) == (RoomingState.SIGNED_IN, None)

        host.intent("scan_barcode", "TEST100099")
        host.run_until(
            lambda: presenter.message != "looking up the scanned barcode…", 10, "timed out"
        )
        assert presenter.message == (
            "no answer from the practice system — pick from the list or ask the front desk"
        )
        assert rooming.state is RoomingState.SIGNED_IN

        host.intent("scan_barcode", "TEST100042")
        host.run_until(lambda: rooming.state is not RoomingState.SIGNED_IN, 10, "found")
        assert presenter.message == "scanned: check name and date of birth with the patient"
        # Offered for the two-identifier check, not confirmed: no guard session, no vitals.
        assert (rooming.state, presenter.screen) == (RoomingState.PATIENT_PICKED, "confirm")
        assert rooming.patient == ScheduledPatient(
            appointment_id="APT-TEST-0042",
            mrn="TEST100042",
            family_name="ZZTEST",
            given_name="Octavia",
            birth_date=date(1990, 1, 2),
            start_time=AT.astimezone().strftime("%H:%M"),
            room="Exam 9",
            reason_for_visit="wrist pain",
        )
        assert rooming.guard.session is None
        # The answer's identifiers are patient data for the log filter from now on.
        assert services.redactor.redact("Octavia ZZTEST TEST100042") == (
            "[redacted:name] [redacted:name] [redacted:mrn]"
        )
    finally:
        services.stop()
        practice.close()
    assert [(r["barcode"], r["lookup_kind"]) for r in practice.requests] == [
        ("TEST100077", "wristband"),
        ("TEST100099", "wristband"),
        ("TEST100042", "wristband"),
    ]


def test_a_pushed_config_is_noticed_in_biomed_and_applied_on_restart(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    push = ConfigPayload(
        message_id=uuid.uuid4(),
        site=SITE,
        station_id=STATION,
        sent_at=AT,
        settings=StationConfigPush.model_validate(
            {"guard": {"clock_skew_s": 30.0, "connect_burst_window_s": 2.0}}
        ),
    )
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="biomed-console")
    client.connect(mosquitto_broker.host, mosquitto_broker.port)
    client.loop_start()
    client.publish(
        topic(SITE, STATION, Channel.CONFIG), to_json(push), 1, retain=True
    ).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    settings = _settings(mosquitto_broker.port, state, mode="lobby")
    host = HeadlessHost()
    services = _services(settings, host, tmp_path / "no-by-id")
    biomed = services.biomed
    assert biomed is not None
    services.start()
    try:
        host.intent("staff_exit", BIOMED_PIN)  # the lobby's staff PIN field
        assert services.presenter.screen == "biomed"
        host.intent("open_settings")
        host.run_until(lambda: len(biomed.settings_lines()) == 6, 10, "notice")
        notice = biomed.settings_lines()[5]
        assert notice.startswith("New configuration received ")
        assert notice.endswith(" (guard): applies on restart")
        # Not hot-applied: this run keeps the file's guard windows.
        assert services.settings.guard.clock_skew_s == 120.0
    finally:
        services.stop()
    stored = json.loads((state / "pushed-config.json").read_text())
    assert (stored["message_id"], stored["settings"]) == (
        str(push.message_id),
        {
            "display": None,
            "devices": None,
            "guard": {"clock_skew_s": 30.0, "connect_burst_window_s": 2.0},
        },
    )
    # The restart: the stored push is applied before anything is built.
    again = _services(settings, HeadlessHost(), tmp_path / "no-by-id")
    try:
        assert again.settings.guard.model_dump() == {
            "clock_skew_s": 30.0,
            "connect_burst_window_s": 2.0,
        }
        assert again.settings.station == settings.station  # ids, broker, TLS: the file's
        assert again.applied_config is not None
        assert again.applied_config.message_id == str(push.message_id)
    finally:
        again.outbox.close()


def test_a_broker_that_refuses_the_stations_messages_is_shown_on_the_biomed_screen(
    tmp_path: Path,
) -> None:
    """#13: a misconfigured station looked healthy ("connected") while the broker refused
    every publish. The deployment ACL on a listener where the station has no identity refuses
    everything it sends (PUBACK 0x87, MQTT 5 §3.4.2.1): biomed and the bundle say so."""
    broker = start_broker(tmp_path / "broker", acl_file=DEPLOY_ACL)
    state = tmp_path / "state"
    state.mkdir()
    host = HeadlessHost()
    services = _services(_settings(broker.port, state), host, tmp_path)
    presenter = services.presenter
    assert isinstance(presenter, ExamPresenter) and presenter.biomed is not None
    biomed = presenter.biomed
    services.start()
    try:
        services.link.submit(Channel.VITALS, b'{"test": 1}', uuid.uuid4())
        host.run_until(lambda: services.link.problem != "", 10, "the broker's refusal")
        host.intent("sign_in", BIOMED_PIN)
        host.intent("open_settings")
        attention = [line for line in biomed.settings_lines() if line.startswith("Attention:")]
        # Mosquitto 2.0 checks read access at delivery, not at SUBSCRIBE: the PUBACK says it.
        assert attention == [
            "Attention: not authorised — station id and certificate disagree: the broker "
            f"refuses this station's messages for station id '{STATION}' (the client "
            "certificate's name must be the station id)"
        ]
        # Kept, not lost: the vitals and the audit record of the biomed unlock (#17).
        assert services.health.outbox_depth().pending == 2
    finally:
        services.stop()
        broker.kill()
