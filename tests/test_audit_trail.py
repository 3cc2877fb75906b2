"""Issue #17 on the real parts: a full rooming through `station run`'s services (the headless
host standing in for the Kivy thread) with hashed credentials, a real Mosquitto, and the
practice's audit consumer as a real subscriber on the `audit` topic.

What must come out is issue #17's list ("MA sign-in / sign-out / ... failed attempts ...,
patient opened and identifiers confirmed, reading attached / moved to or accepted from the tray
/ discarded, manual entry, critical value acknowledged, submission saved / sent / received"),
one record per event, each hash-chained as docs/mqtt.md states it: SHA-256 (FIPS 180-4) over
the record's JSON without `hash`, keys sorted, no whitespace (RFC 8785) — recomputed here with
hashlib, not with the station's code. Then: no PIN or badge id in any file the station wrote,
and no patient data in its log lines.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from station.app import HeadlessHost, StationServices, start_logging
from station.app.credentials import Credentials, HashedMa, hash_secret
from station.audit import AuditAction
from station.config import parse_settings
from station.demo import DemoPatient, PracticeSystem, schedule_payload
from station.models import BloodPressure, Flag, Kind, Mode
from station.rooming_data import MedicationStatus, RoomingState
from station.sync.audit_store import AUDIT_FILE, AuditStore
from station.sync.outbox import DeliveryState, Outbox
from station.ui.presenters import ExamPresenter
from station.units import Unit
from tests.fixtures.broker import Broker
from tests.sync.consumer import Consumer
from tests.workflows.helpers import FakeClock

pytestmark = pytest.mark.broker
SITE, STATION = "test-clinic", "exam-5"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MA_PIN, MA_BADGE, BIOMED_PIN = "482913", "BDG-77A1-X9", "735160"
PATIENT = DemoPatient("ZZTESTAUDIT", "Kilo", date(1966, 8, 9), "TEST500077", "APT-TEST-0077")


def bp(systolic: float, diastolic: float, *, stored: bool = False) -> BloodPressure:
    return BloodPressure(systolic_mmhg=systolic, diastolic_mmhg=diastolic, pulse_rate_bpm=72.0,
                         unit_as_sent=Unit.MMHG, codec="test:bp", codec_version="1",
                         mode=Mode.TEST, raw_hex="00",
                         flags=frozenset({Flag.FROM_STORAGE}) if stored else frozenset())


def rfc8785_sha256(record: dict[str, object]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_a_full_rooming_publishes_exactly_the_expected_audit_records(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    credentials = Credentials(
        ma_hash=(HashedMa(id="ma-0042", kind="pin", hash=hash_secret(MA_PIN)),
                 HashedMa(id="ma-0042", kind="badge", hash=hash_secret(MA_BADGE))),
        biomed_pin_hash=hash_secret(BIOMED_PIN),
    )
    settings = parse_settings({
        "station": {"site": SITE, "station_id": STATION, "mode": "exam"},
        "broker": {"host": mosquitto_broker.host, "port": mosquitto_broker.port,
                   "require_tls": False},
        "storage": {"state_dir": str(state)},
        "devices": [{"id": "cuff", "profile": "suntech-advantage", "port": "usb-TEST_cuff"}],
    }, "test")
    log = io.StringIO()
    redactor, undo_logging = start_logging(log)
    auditor = Consumer(mosquitto_broker, f"rooming/v1/{SITE}/{STATION}/audit",
                       client_id="practice-audit")
    practice = PracticeSystem(mosquitto_broker.host, mosquitto_broker.port, site=SITE,
                              station_id=STATION)
    practice.start(schedule_payload([PATIENT], site=SITE, station_id=STATION, now=NOW))
    clock = FakeClock(NOW)
    host = HeadlessHost()
    services = StationServices(settings, post=host.post, credentials=credentials,
                               redactor=redactor, clock=clock, reading_mode=Mode.TEST,
                               by_id_dir=tmp_path / "by-id")
    host.services = services
    presenter = services.presenter
    assert isinstance(presenter, ExamPresenter)
    rooming = presenter.rooming
    services.start()
    try:
        host.run_until(lambda: rooming.schedule != (), 10, "the schedule")
        host.intent("sign_in", "193746")  # a wrong PIN
        host.intent("sign_in", MA_BADGE)  # the badge reader types and presses Enter
        host.intent("pick", PATIENT.appointment_id)
        host.intent("confirm")
        assert rooming.state is RoomingState.VITALS
        clock.advance(30)
        services.device_reading("cuff", bp(186.0, 124.0))  # critical: hypertensive crisis
        services.device_reading("cuff", bp(131.0, 85.0, stored=True))  # to the tray
        services.device_reading("cuff", bp(133.0, 86.0, stored=True))  # to the tray
        host.run_until(lambda: len(rooming.tray) == 2, 10, "the readings handed over")
        first, second = rooming.tray
        host.intent("accept_tray", first.item_id)
        host.intent("discard_tray", second.item_id)
        rooming.enter_manual(Kind.TEMPERATURE, {"temperature_c": 98.6})  # as the keypad does
        services.after_ui_change()
        [critical] = rooming.unacknowledged_critical()
        host.intent("acknowledge", critical.entry_id)
        host.intent("go", "review")
        for index, _ in enumerate(rooming.medications):  # #18: the list is reviewed first
            host.intent("set_medication", index, MedicationStatus.TAKING)
        host.intent("send")
        sent_id = presenter.sent_id
        assert sent_id is not None
        host.run_until(lambda: services.outbox.state(sent_id) is DeliveryState.RECEIVED
                       and services.audit.has(AuditAction.SUBMISSION_RECEIVED, sent_id), 20,
                       "the practice's ack")
        host.intent("next_patient")
        host.intent("sign_out")
        expected = [
            ("unknown", "sign_in_failed", None, None),
            ("ma-0042", "ma_sign_in", None, None),
            ("ma-0042", "patient_opened", PATIENT.mrn, None),
            ("ma-0042", "identifiers_confirmed", PATIENT.mrn, None),
            ("ma-0042", "reading_attached", PATIENT.mrn, None),
            ("ma-0042", "reading_to_tray", None, None),
            ("ma-0042", "reading_to_tray", None, None),
            ("ma-0042", "reading_accepted_from_tray", PATIENT.mrn, None),
            ("ma-0042", "reading_discarded", None, None),
            ("ma-0042", "manual_entry", PATIENT.mrn, None),
            ("ma-0042", "critical_acknowledged", PATIENT.mrn, None),
            ("ma-0042", "submission_saved", PATIENT.mrn, str(sent_id)),
            ("station", "submission_sent", PATIENT.mrn, str(sent_id)),
            ("station", "submission_received", PATIENT.mrn, str(sent_id)),
            ("ma-0042", "ma_sign_out", None, None),
        ]

        def arrived() -> bool:
            return len(auditor.distinct()) >= len(expected)

        host.run_until(arrived, 20, "every audit record at the audit consumer")
    finally:
        services.stop()
        practice.stop()
        auditor.close()
        undo_logging()
    records = sorted((auditor.bodies[m] for m in auditor.order), key=lambda r: r["sequence"])
    assert [(r["actor"], r["action"], r["mrn"], r["related_message_id"]) for r in records] == (
        expected)
    assert [r["sequence"] for r in records] == list(range(1, len(expected) + 1))
    assert records[0]["prev_hash"] == "0" * 64
    for before, record in itertools.pairwise(records):
        assert record["prev_hash"] == before["hash"]
    assert [r["hash"] for r in records] == [rfc8785_sha256(r) for r in records]
    assert {r["appointment_id"] for r in records if r["mrn"]} == {PATIENT.appointment_id}
    assert records[0]["detail"] == "role=ma keypad=exam try=1"

    # The station's own copy verifies, and is the same chain the consumer got.
    store = AuditStore(state / AUDIT_FILE, state / "outbox.key", site=SITE, station_id=STATION)
    try:
        assert store.verify() == []
        assert [r["hash"] for r in store.records() if isinstance(r, dict)] == [
            r["hash"] for r in records]
        decrypted = json.dumps([r for r in store.records() if isinstance(r, dict)])
    finally:
        store.close()
    outbox = Outbox(state / "outbox.sqlite3", state / "outbox.key")
    try:
        decrypted += "".join((row.payload or b"").decode() for row in outbox.export())
    finally:
        outbox.close()

    # No PIN or badge id in plain text in any file the station wrote, nor inside the
    # encrypted records; the wrong PIN typed is nowhere either.
    secrets = (MA_PIN, MA_BADGE, BIOMED_PIN, "193746")
    for root, _, files in os.walk(state):
        for name in files:
            raw = (Path(root) / name).read_bytes()
            for secret in secrets:
                assert secret.encode() not in raw, (name, secret)
    for secret in secrets:
        assert secret not in decrypted
        assert secret not in log.getvalue()
    # Logs stay free of patient data: the audit topic is the only place references go.
    for value in (PATIENT.mrn, PATIENT.appointment_id, PATIENT.family, PATIENT.given):
        assert value not in log.getvalue()
