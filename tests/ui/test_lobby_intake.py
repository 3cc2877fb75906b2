"""The lobby's intake questionnaires and insurance question on real Kivy widgets offscreen
(#18): a Spanish PHQ-2 -> PHQ-9 check-in scored as the instrument's authors score it, Back,
the idle wipe, and (with a real Mosquitto) the PHQ-9 item 9 staff alert on the broker.

Outside truths:
- PHQ-9 scoring (Kroenke, Spitzer & Williams, J Gen Intern Med 2001;16:606-13; the
  phqscreeners.com instructions): "Not at all" 0, "Several days" 1, "More than half the days"
  2, "Nearly every day" 3; the total is the sum of the nine items (0-27); 10-14 is moderate.
  The PHQ-2 is items 1-2 (0-6), and 3 or more calls for the PHQ-9 (Kroenke, Spitzer &
  Williams, Med Care 2003;41:1284-92).
- Pfizer's Spanish (USA) PHQ-9 form (transcribed at es.studenta.com,
  "PatientHealthQuestionnaire9_Spanish"): the stem "Durante las últimas 2 semanas, ¿qué tan
  seguido ha tenido molestias debido a los siguientes problemas?", the answers "Ningún día /
  Varios días / Más de la mitad de los días / Casi todos los días", item 1 "Poco interés o
  placer en hacer cosas" and item 9 "Pensamientos de que estaría mejor muerto(a) o de
  lastimarse de alguna manera".
- The PHQ-9's instructions: item 9 answered other than "Not at all" needs the clinician's
  attention at once (the issue: "never only a number in a queue").
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from station.app.sync_port import SyncLobby, schedule_to_appointments
from station.checkin import Appointment, Checkin
from station.config import BrokerSection
from station.questionnaires import load_library
from station.submission import PatientIdentifiers
from station.sync.contract import (
    Appointment as ScheduleAppointment,
)
from station.sync.contract import (
    Channel,
    CheckinPayload,
    LastScreening,
    SchedulePayload,
    ScreeningAlertPayload,
    to_json,
    topic,
)
from station.sync.mqtt import Inbound, MqttLink
from station.sync.outbox import Outbox
from station.ui.ports import MemoryOutbox, MemorySpeaker
from station.ui.presenters import LobbyPresenter
from tests.fixtures.broker import Broker
from tests.fixtures.kivy import Driver
from tests.sync.consumer import contract_problems
from tests.workflows.helpers import FakeClock

pytestmark = pytest.mark.ui

NOW = datetime(2026, 3, 2, 8, 45, tzinfo=UTC)
RECENT = date(2026, 1, 12)  # within the year: the rules skip what was done then
LIBRARY = load_library()
NONE, SEVERAL, HALF, NEARLY = (
    "Ningún día", "Varios días", "Más de la mitad de los días", "Casi todos los días")
# Items 1-9 as the patient answers them; scored by Kroenke 2001: 2+3+1+2+0+1+0+1+0 = 10.
PHQ9_ANSWERS = (HALF, NEARLY, SEVERAL, HALF, NONE, SEVERAL, NONE, SEVERAL, NONE)
PHQ2_TOTAL, PHQ9_TOTAL = 5, 10
FOXTROT = Appointment(
    appointment_id="APT-TEST-0006",
    family_name="ZZTEST",
    given_name="Foxtrot",
    birth_date=date(1970, 1, 1),
    qr_token="qr-test-0006",
    # GAD-7 and tobacco asked at the last visit: this check-in asks the PHQ only.
    last_screened=(("gad-7", RECENT), ("tobacco", RECENT)),
)


def lobby(
    make_ui: Callable[..., Driver], events: object = None
) -> tuple[Driver, LobbyPresenter, MemoryOutbox, FakeClock]:
    clock = FakeClock(NOW)
    checkin = Checkin(clock=clock, staff_pin="7788", questionnaires=LIBRARY, ask_insurance=True)
    checkin.set_appointments((FOXTROT,))
    outbox = MemoryOutbox()
    presenter = LobbyPresenter(checkin, events or outbox, MemorySpeaker())  # type: ignore[arg-type]
    return make_ui("lobby", presenter), presenter, outbox, clock


def to_first_question(driver: Driver, reason: str = "dolor de cabeza") -> None:
    driver.tap("Español")
    driver.scan("qr-test-0006")
    driver.tap("Sí, son correctos")
    driver.type_into(driver.ui.screen.ids.reason, reason)
    driver.tap("Listo")


def test_spanish_phq2_then_phq9_scored_as_published(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, outbox, _ = lobby(make_ui)
    to_first_question(driver)
    texts = driver.texts()
    assert "Pregunta 1 de 2" in texts  # the PHQ-2: GAD and tobacco were done this year
    assert "Durante las últimas 2 semanas, ¿qué tan seguido ha tenido molestias debido a los " \
           "siguientes problemas?" in texts
    assert "Poco interés o placer en hacer cosas" in texts
    assert {NONE, SEVERAL, HALF, NEARLY} <= set(texts)
    driver.shot("lobby_question_es")
    driver.tap(PHQ9_ANSWERS[0])
    driver.tap(PHQ9_ANSWERS[1])  # PHQ-2 = 5 >= 3: the PHQ-9 follows, items 1-2 kept
    assert "Pregunta 3 de 9" in driver.texts()
    for label in PHQ9_ANSWERS[2:8]:
        driver.tap(label)
    assert "Pensamientos de que estaría mejor muerto(a) o de lastimarse de alguna manera" in (
        driver.texts())
    driver.tap(PHQ9_ANSWERS[8])
    assert outbox.screening_alerts == []  # "Ningún día" to item 9: no alert
    assert "¿Ha cambiado su seguro médico desde su última visita?" in driver.texts()
    driver.shot("lobby_insurance_es")
    assert outbox.checkins == []  # nothing goes before the last answer
    driver.tap("Sí, cambió")
    [record] = outbox.checkins
    scores = {r.instrument: (r.score, r.score_loinc) for r in record.screenings}
    assert scores == {"phq-2": (PHQ2_TOTAL, "55758-7"), "phq-9": (PHQ9_TOTAL, "44261-6")}
    phq9 = next(r for r in record.screenings if r.instrument == "phq-9")
    assert [a.ordinal for a in phq9.answers] == [2, 3, 1, 2, 0, 1, 0, 1, 0]
    assert (record.language, record.reason_for_visit, record.insurance_changed) == (
        "es", "dolor de cabeza", True)
    assert record.screenings_not_asked == ()
    assert "En la recepción le preguntarán por su nuevo seguro." in " ".join(driver.texts())
    assert presenter.screen == "lobby_message"


def test_item_9_alerts_staff_the_moment_it_is_answered(make_ui: Callable[..., Driver]) -> None:
    driver, _, outbox, _ = lobby(make_ui)
    to_first_question(driver)
    for label in PHQ9_ANSWERS[:8]:
        driver.tap(label)
    driver.tap(SEVERAL)  # item 9, "Varios días"
    [(alert, appointment_id, language, _)] = outbox.screening_alerts
    assert (alert.loinc, alert.answer_code, appointment_id, language) == (
        "44260-8", "LA6569-3", "APT-TEST-0006", "es")
    assert outbox.checkins == []  # the alert went before the check-in is even finished


def test_back_goes_one_question_back_then_to_the_reason(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, _, _ = lobby(make_ui)
    to_first_question(driver, "tos")
    driver.tap(NEARLY)
    driver.tap(NEARLY)  # PHQ-2 = 6: PHQ-9 planned
    assert "Pregunta 3 de 9" in driver.texts()
    driver.tap("Atrás")  # item 2 again, its answer taken back: no PHQ-9 planned
    assert "Pregunta 2 de 2" in driver.texts()
    assert "Se ha sentido decaído(a), deprimido(a) o sin esperanzas" in driver.texts()
    driver.tap("Atrás")
    driver.tap("Atrás")  # from the first question: the reason, as the patient typed it
    assert presenter.screen == "lobby_reason"
    assert driver.ui.screen.ids.reason.text == "tos"
    driver.tap("Listo")
    assert "Pregunta 1 de 2" in driver.texts()


def test_idle_wipe_mid_questionnaire_forgets_every_answer(
    make_ui: Callable[..., Driver],
) -> None:
    driver, presenter, outbox, clock = lobby(make_ui)
    driver.tap("Larger text")
    to_first_question(driver)
    driver.tap(HALF)
    clock.advance(60)
    driver.pump(3)
    assert "¿Sigue usted ahí?\nEsta pantalla se borrará en 30 segundos." in driver.texts()
    clock.advance(30)
    driver.pump(3)
    assert presenter.screen == "lobby_welcome"
    assert presenter.checkin.holds_patient_data is False and presenter.checkin.intake is None
    screen = driver.ui.sm.get_screen("lobby_question")
    every_text = [getattr(w, "text", "") for w in screen.walk()]
    assert not any("interés" in t or "decaído" in t or "días" in t for t in every_text)
    assert outbox.checkins == [] and outbox.screening_alerts == []


def test_large_text_longest_spanish_item(make_ui: Callable[..., Driver]) -> None:
    """Item 8, the PHQ-9's longest, in Spanish with large text on the Pi's 800x480."""
    driver, _, _, _ = lobby(make_ui)
    driver.tap("Larger text")
    to_first_question(driver)
    for label in PHQ9_ANSWERS[:7]:
        driver.tap(label)
    assert "Pregunta 8 de 9" in driver.texts()
    from station.ui.audit import audit

    assert audit(driver.ui.root, (800, 480)) == []
    answers = [w for w in driver.ui.screen.ids.choices.children]
    assert len(answers) == 4 and min(w.height for w in answers) >= 64
    driver.shot("lobby_question_long_es_large")


# ------------------------------------------------------------------- a real broker (#18)

SITE, STATION = "clinic-test", "lobby-1"
PATIENT = PatientIdentifiers(
    mrn="TEST100006", family_name="ZZTEST", given_name="Foxtrot", birth_date=date(1970, 1, 1)
)
SCHEDULE = SchedulePayload(
    message_id=uuid.UUID(int=11),
    site=SITE,
    station_id=STATION,
    sent_at=NOW,
    schedule_date=NOW.date(),
    appointments=(
        ScheduleAppointment(
            appointment_id="APT-TEST-0006",
            patient=PATIENT,
            starts_at=NOW,
            last_screened=(LastScreening(instrument="gad-7", screened_on=RECENT),
                           LastScreening(instrument="72166-2", screened_on=RECENT)),
        ),
    ),
)


class FrontDesk:
    """The practice's side: publishes the schedule, collects the lobby's messages."""

    def __init__(self, broker: Broker) -> None:
        self.received: list[tuple[str, dict[str, object]]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="front-desk-test")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"rooming/v1/{SITE}/+/+", 1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        problems = contract_problems(msg.payload)
        with self._lock:
            self.received.append((msg.topic.rsplit("/", 1)[-1], json.loads(msg.payload)))
            self.errors.extend(problems)

    def got(self, schema: str) -> list[dict[str, object]]:
        with self._lock:
            return [body for _, body in self.received if body.get("schema") == schema]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        assert self.errors == [], self.errors[:5]


@pytest.fixture
def front_desk(mosquitto_broker: Broker) -> Iterator[FrontDesk]:
    side = FrontDesk(mosquitto_broker)
    side.client.publish(topic(SITE, STATION, Channel.SCHEDULE), to_json(SCHEDULE), qos=1,
                        retain=True)
    yield side
    side.close()


@pytest.mark.broker
def test_item_9_alert_reaches_the_broker_and_insurance_the_checkin(
    make_ui: Callable[..., Driver], mosquitto_broker: Broker, front_desk: FrontDesk,
    tmp_path: Path,
) -> None:
    clock = FakeClock(NOW)
    checkin = Checkin(clock=clock, staff_pin="7788", questionnaires=LIBRARY, ask_insurance=True)
    outbox = Outbox(tmp_path / "outbox.sqlite3", tmp_path / "outbox.key")
    holder: dict[str, Driver] = {}
    link_box: dict[str, SyncLobby] = {}

    def on_schedule(payload: SchedulePayload) -> None:  # MQTT thread: hand over
        def apply() -> None:
            link_box["lobby"].set_schedule(payload)
            checkin.set_appointments(schedule_to_appointments(payload))

        holder["ui"].ui.deliver(apply)

    link = MqttLink(
        BrokerSection(host=mosquitto_broker.host, port=mosquitto_broker.port, require_tls=False),
        site=SITE, station_id=STATION, outbox=outbox,
        handlers=Inbound(on_schedule=on_schedule), reconnect_min_s=0, reconnect_max_s=1,
    )
    lobby_sink = SyncLobby(link, site=SITE, station_id=STATION, clock=clock)
    link_box["lobby"] = lobby_sink
    presenter = LobbyPresenter(checkin, lobby_sink, MemorySpeaker())
    driver = make_ui("lobby", presenter)
    holder["ui"] = driver
    link.start()
    try:
        assert link.wait_connected(10)
        driver.until(lambda: bool(checkin._appointments))  # the retained schedule arrived
        driver.tap("Español")
        driver.tap("Registrarme")
        driver.type_into(driver.ui.screen.ids.name, "zztest")
        driver.type_into(driver.ui.screen.ids.dob, "01011970")
        driver.tap("Buscar")
        driver.tap("Sí, son correctos")
        driver.type_into(driver.ui.screen.ids.reason, "mareos")
        driver.tap("Listo")
        for label in PHQ9_ANSWERS[:8]:
            driver.tap(label)
        driver.tap(HALF)  # item 9: "Más de la mitad de los días"
        # The alert is on the broker while the patient is still on the insurance question
        # (a bound on frames while waiting, never a timing assertion).
        driver.until(lambda: len(front_desk.got("rooming.screening_alert/1")) == 1)
        assert presenter.screen == "lobby_insurance" and not front_desk.got("rooming.checkin/1")
        alert = ScreeningAlertPayload.model_validate(front_desk.got("rooming.screening_alert/1")[0])
        assert (alert.appointment_id, alert.patient, alert.instrument, alert.item_loinc,
                alert.answer_code) == ("APT-TEST-0006", PATIENT, "phq-9", "44260-8", "LA6570-1")
        driver.tap("No, es el mismo")
        driver.until(lambda: len(front_desk.got("rooming.checkin/1")) == 1)
        sent = CheckinPayload.model_validate(front_desk.got("rooming.checkin/1")[0])
        assert (sent.insurance_changed, sent.language, sent.reason_for_visit) == (
            False, "es", "mareos")
        # 2+3+1+2+0+1+0+1 + 2 (item 9) = 12 by the published scoring.
        assert {s.instrument: s.score for s in sent.screenings} == {"phq-2": 5, "phq-9": 12}
        assert sent.screenings_not_asked == ()
    finally:
        link.stop()
        outbox.close()
