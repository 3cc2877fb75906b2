"""A full rooming on real widgets through the real sync layer and a real Mosquitto broker:
the schedule arrives retained, Send publishes vitals (+ alert), the practice's ack shows up."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from station.app.demo_ui import DEMO_DEVICES
from station.app.sync_port import (
    CheckinSendError,
    SyncCheckins,
    SyncOutbox,
    schedule_to_patients,
)
from station.checkin import CheckinRecord, ContactChange
from station.config import BrokerSection
from station.models import AnyReading, Mode
from station.rooming import Rooming
from station.rooming_data import MedicationStatus
from station.submission import PatientIdentifiers
from station.sync.contract import (
    AckPayload,
    Appointment,
    Channel,
    CheckinPayload,
    ContactUpdate,
    SchedulePayload,
    VitalsPayload,
    to_json,
    topic,
)
from station.sync.mqtt import Inbound, MqttLink
from station.sync.outbox import Outbox
from station.ui.presenters import ExamPresenter
from station.validation import validate
from tests.fixtures.broker import Broker
from tests.fixtures.kivy import Driver
from tests.sync.consumer import contract_problems
from tests.workflows.helpers import FakeClock, bp, spo2

pytestmark = [pytest.mark.ui, pytest.mark.broker]
SITE, STATION = "clinic-test", "exam-7"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PATIENT = PatientIdentifiers(
    mrn="TEST100042", family_name="ZZTEST", given_name="Echo", birth_date=date(1979, 1, 30)
)
SCHEDULE = SchedulePayload(
    message_id=uuid.UUID(int=7),
    site=SITE,
    station_id=STATION,
    sent_at=NOW,
    schedule_date=NOW.date(),
    appointments=(
        Appointment(
            appointment_id="APT-TEST-0042",
            patient=PATIENT,
            starts_at=NOW,
            reason="cough for a week",
            medications_to_review=("albuterol inhaler",),
        ),
    ),
)


class Practice:
    """The practice system's side: publishes the schedule, collects what the station sends."""

    def __init__(self, broker: Broker) -> None:
        self.received: dict[str, list[dict[str, object]]] = {}
        self.contract_errors: list[str] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="practice-test")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"rooming/v1/{SITE}/+/+", 1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        channel = msg.topic.rsplit("/", 1)[-1]
        problems = contract_problems(msg.payload)  # every message against docs/schemas
        with self._lock:
            self.received.setdefault(channel, []).append(json.loads(msg.payload))
            self.contract_errors.extend(problems)

    def got(self, channel: str) -> list[dict[str, object]]:
        with self._lock:
            return list(self.received.get(channel, []))

    def publish(self, channel: Channel, body: bytes, *, retain: bool = False) -> None:
        self.client.publish(topic(SITE, STATION, channel), body, qos=1, retain=retain)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        assert self.contract_errors == [], self.contract_errors[:5]


@pytest.fixture
def practice(mosquitto_broker: Broker) -> Iterator[Practice]:
    side = Practice(mosquitto_broker)
    side.publish(Channel.SCHEDULE, to_json(SCHEDULE), retain=True)
    yield side
    side.close()


def test_rooming_publishes_vitals_and_alert_and_shows_the_ack(
    make_ui: Callable[..., Driver], mosquitto_broker: Broker, practice: Practice, tmp_path: Path
) -> None:
    clock = FakeClock(NOW)
    rooming = Rooming(
        clock=clock, credentials={"BADGE-7": "ma-007"}, mode=Mode.DEMO, bound_devices=DEMO_DEVICES
    )
    outbox = Outbox(tmp_path / "outbox.sqlite3", tmp_path / "outbox.key")
    holder: dict[str, Driver] = {}

    def on_schedule(payload: SchedulePayload) -> None:  # MQTT thread: hand over
        holder["ui"].ui.deliver(lambda: rooming.set_schedule(schedule_to_patients(payload)))

    def on_ack(payload: AckPayload) -> None:
        holder["ui"].ui.deliver(lambda: None)  # just a redraw: the outbox knows

    link = MqttLink(
        BrokerSection(host=mosquitto_broker.host, port=mosquitto_broker.port, require_tls=False),
        site=SITE,
        station_id=STATION,
        outbox=outbox,
        handlers=Inbound(on_schedule=on_schedule, on_ack=on_ack),
        reconnect_min_s=0,
        reconnect_max_s=1,
    )
    sync = SyncOutbox(link, outbox, site=SITE, station_id=STATION, clock=clock)
    presenter = ExamPresenter(rooming, sync, sync)
    driver = make_ui("exam", presenter)
    holder["ui"] = driver
    link.start()
    try:
        assert link.wait_connected(10)
        driver.scan("BADGE-7")
        row = f"{NOW.astimezone():%H:%M}   ZZTEST, Echo   ·   born 01/30/1979"
        driver.until(lambda: row in driver.texts())
        driver.tap(row)
        driver.tap("Yes — both match")
        # From clockless devices here (the shared test cuff's time is another morning's).
        cuff_reading = bp(182, 96).model_copy(update={"measured_at": None})
        readings: list[tuple[AnyReading, str]] = [(cuff_reading, "cuff"), (spo2(96), "oximeter")]
        for reading, device in readings:
            driver.ui.deliver(lambda r=reading, d=device: presenter.device_reading(r, d))
        driver.until(lambda: len(rooming.entries) == 2)
        driver.tap("Review  >")
        driver.tap("Acknowledge — clinician told")
        for index, _ in enumerate(rooming.medications):  # #18: reviewed before Send
            driver.ui.presenter.set_medication(index, MedicationStatus.TAKING)
        driver.ui.redraw()
        driver.pump(2)
        driver.tap("Send")
        driver.until(lambda: len(practice.got("vitals")) == 1 and len(practice.got("alert")) == 1)
        vitals = VitalsPayload.model_validate(practice.got("vitals")[0])
        assert (vitals.appointment_id, vitals.patient, vitals.ma_id, vitals.station_id) == (
            "APT-TEST-0042",
            PATIENT,
            "ma-007",
            STATION,
        )
        assert [(r.reading, r.device_id) for r in vitals.readings] == [(r, d) for r, d in readings]
        age = (NOW.date() - PATIENT.birth_date).days / 365.25
        assert [r.verdict for r in vitals.readings] == [
            validate(r, age_years=age) for r, _ in readings
        ]
        assert vitals.reason_for_visit == "cough for a week"
        alert = practice.got("alert")[0]
        assert (alert["code"], alert["acknowledged_by"]) == ("hypertensive_crisis", "ma-007")
        assert "Saved — waiting for the practice system" in driver.texts()
        # The practice system files it and acks by message_id.
        ack = AckPayload(message_id=vitals.message_id, acked_at=NOW)
        practice.publish(Channel.ACK, to_json(ack))
        driver.until(lambda: "Received by the practice system" in driver.texts())
        assert "online" in driver.texts()
    finally:
        link.stop()
        outbox.close()


def test_lobby_checkin_is_published_with_the_schedule_identifiers(
    mosquitto_broker: Broker, practice: Practice, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3", tmp_path / "outbox.key")
    link = MqttLink(
        BrokerSection(host=mosquitto_broker.host, port=mosquitto_broker.port, require_tls=False),
        site=SITE,
        station_id=STATION,
        outbox=outbox,
        reconnect_min_s=0,
        reconnect_max_s=1,
    )
    checkins = SyncCheckins(link, site=SITE, station_id=STATION, clock=lambda: NOW)
    checkins.set_schedule(SCHEDULE)
    link.start()
    try:
        message_id = checkins.checkin(
            CheckinRecord(
                appointment_id="APT-TEST-0042",
                checked_in_at=NOW,
                language="es",
                reason_for_visit="tos",
                contact_change=ContactChange(phone="555-010-0123"),
            )
        )
        deadline = 500
        while not practice.got("checkin") and deadline:
            time.sleep(0.02)
            deadline -= 1
        assert CheckinPayload.model_validate(practice.got("checkin")[0]) == CheckinPayload(
            message_id=message_id,
            station_id=STATION,
            site=SITE,
            sent_at=NOW,
            appointment_id="APT-TEST-0042",
            patient=PATIENT,
            contact_details_confirmed=False,
            contact_update_requested=True,
            contact_update=ContactUpdate(phone="555-010-0123"),
            reason_for_visit="tos",
            language="es",
            checked_in_at=NOW,
        )
    finally:
        link.stop()
        outbox.close()


def test_a_schedule_republished_mid_checkin_does_not_lose_the_checkin(
    mosquitto_broker: Broker, practice: Practice, tmp_path: Path
) -> None:
    # #20, replayed: the practice re-published the schedule (without the appointment) while a
    # patient was checking in; the lobby process died with KeyError: 'APT-TEST-0042'.
    outbox = Outbox(tmp_path / "outbox.sqlite3", tmp_path / "outbox.key")
    link = MqttLink(
        BrokerSection(host=mosquitto_broker.host, port=mosquitto_broker.port, require_tls=False),
        site=SITE, station_id=STATION, outbox=outbox, reconnect_min_s=0, reconnect_max_s=1,
    )
    checkins = SyncCheckins(link, site=SITE, station_id=STATION, clock=lambda: NOW)
    checkins.set_schedule(SCHEDULE)
    emptied = SCHEDULE.model_copy(update={"message_id": uuid.UUID(int=8), "appointments": ()})
    checkins.set_schedule(emptied)  # while the patient types the reason for visit
    record = CheckinRecord(appointment_id="APT-TEST-0042", checked_in_at=NOW, language="en",
                           reason_for_visit="cough")
    link.start()
    try:
        message_id = checkins.checkin(record)
        deadline = 500
        while not practice.got("checkin") and deadline:
            time.sleep(0.02)
            deadline -= 1
        sent = CheckinPayload.model_validate(practice.got("checkin")[0])
        assert (sent.message_id, sent.patient) == (message_id, PATIENT)
        checkins.set_schedule(emptied)  # two lists later it is gone: said, not a crash
        with pytest.raises(CheckinSendError, match="no longer on the practice's list: please "
                                                   "see the front desk"):
            checkins.checkin(record)
    finally:
        link.stop()
        outbox.close()
