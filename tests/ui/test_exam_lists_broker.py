"""An MA rooms a patient on real widgets through the real outbox, MQTT link and a real Mosquitto
broker (#18): an updated medication list (one dose changed, one medication added), the allergy
list reviewed (one confirmed, one added) and a positive rapid strep — and the practice system
receives them in the vitals message, as the published schema and US Core say.

Outside truths (none of these values is read from the station's own code):
- LOINC 78012-2 "Streptococcus pyogenes Ag [Presence] in Throat by Rapid immunoassay", answer
  list LL2021-5: Positive = SNOMED CT 10828004 (LA6576-8) — https://loinc.org/78012-2/ ; the
  same code is in the HEDIS / eCQM "Group A Streptococcus Test" value set
  (2.16.840.1.113883.3.464.1003.198.12.1012);
- FHIR R4 value sets (hl7.org/fhir/R4): observation-category `laboratory`
  (terminology.hl7.org/CodeSystem/observation-category); allergyintolerance-verification
  `confirmed`; allergyintolerance-clinical `active`; reaction-event-severity `severe`;
  medicationrequest-status `active`; medicationrequest-intent `plan`;
- US Core 6.1.0 "Medication List" guidance: medications the patient reports are
  MedicationRequest with intent `plan` and reported[x]; a self-prescribed one names the
  patient as requester; the profiles us-core-medicationrequest / us-core-allergyintolerance /
  us-core-observation-lab, checked with the StructureDefinitions in tests/conformance/us-core
  (tests/conformance/us_core.py, fhirpathpy);
- the vitals message against docs/schemas (jsonschema, formats on) by the practice's side.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from station.app.demo_ui import DEMO_DEVICES
from station.app.sync_port import SyncOutbox, schedule_to_patients
from station.config import BrokerSection
from station.models import Mode
from station.rooming import Rooming
from station.submission import (
    AllergyVerification,
    MedicationUse,
    PatientIdentifiers,
    SubmittedAllergy,
    SubmittedMedication,
)
from station.sync.contract import (
    AlertPayload,
    AllergyToReview,
    Appointment,
    Channel,
    SchedulePayload,
    VitalsPayload,
    to_json,
)
from station.sync.mqtt import Inbound, MqttLink
from station.sync.outbox import Outbox
from station.ui.presenters import ExamPresenter
from tests.conformance import us_core
from tests.fixtures.broker import Broker
from tests.fixtures.kivy import Driver
from tests.ui.test_exam_broker import SITE, STATION, Practice
from tests.ui.test_exam_lists import field, in_row
from tests.workflows.helpers import FakeClock

pytestmark = [pytest.mark.ui, pytest.mark.broker]
NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
PATIENT = PatientIdentifiers(
    mrn="TEST100045", family_name="ZZTEST", given_name="Foxtrot", birth_date=date(1990, 4, 12)
)
SCHEDULE = SchedulePayload(
    message_id=uuid.UUID(int=45),
    site=SITE,
    station_id=STATION,
    sent_at=NOW,
    schedule_date=NOW.date(),
    appointments=(
        Appointment(
            appointment_id="APT-TEST-0045",
            patient=PATIENT,
            starts_at=NOW,
            reason="sore throat and fever",
            medications_to_review=("albuterol inhaler", "lisinopril 10 mg daily"),
            allergies_to_review=(
                AllergyToReview(substance="penicillin", reaction="hives", severity="moderate"),
            ),
        ),
    ),
)
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"


@pytest.fixture
def practice(mosquitto_broker: Broker) -> Iterator[Practice]:
    side = Practice(mosquitto_broker)
    side.publish(Channel.SCHEDULE, to_json(SCHEDULE), retain=True)
    yield side
    side.close()


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle["entry"]
        if isinstance(e, dict) and e["resource"]["resourceType"] == kind
    ]


def test_ma_rooms_a_patient_with_lists_and_a_strep_test_to_the_practice(
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

    link = MqttLink(
        BrokerSection(host=mosquitto_broker.host, port=mosquitto_broker.port, require_tls=False),
        site=SITE,
        station_id=STATION,
        outbox=outbox,
        handlers=Inbound(on_schedule=on_schedule),
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
        row = f"{NOW.astimezone():%H:%M}   ZZTEST, Foxtrot   ·   born 04/12/1990"
        driver.until(lambda: row in driver.texts())
        driver.tap(row)
        driver.tap("Yes — both match")
        driver.tap("Complaint  >")
        driver.tap("sore throat")
        driver.tap("Medications  >")
        # One dose changed, one taken as listed, one added (patient-reported).
        driver.tap(in_row(driver, "albuterol inhaler", "changed…"))
        driver.type_into(field(driver, "the dose the patient takes now"), "2 puffs twice daily")
        driver.tap("Save")
        driver.tap(in_row(driver, "lisinopril 10 mg daily", "taking"))
        driver.tap("+ Add a medication")
        driver.type_into(field(driver, "name, as the patient says it"), "ibuprofen")
        driver.type_into(field(driver, "e.g. 10 mg daily"), "400 mg as needed")
        driver.tap("Save")
        driver.tap("Allergies  >")
        # One confirmed, one added with its reaction and severity.
        driver.tap(in_row(driver, "penicillin", "confirmed"))
        driver.tap("+ Add an allergy")
        driver.type_into(field(driver, "e.g. penicillin, peanuts, latex"), "peanuts")
        driver.type_into(field(driver, "what happens, e.g. hives"), "throat swelling")
        driver.tap("severe")
        driver.tap("Save")
        driver.tap("Review  >")
        driver.tap("Point-of-care tests")
        driver.tap("Rapid strep A")
        driver.tap("positive")
        driver.type_into(field(driver, "optional"), "LOT-A1")
        driver.tap("Save")
        # A fingerstick glucose of 48 mg/dL: level 2 hypoglycaemia (ADA: < 54 mg/dL), critical.
        driver.tap("Fingerstick glucose")
        driver.tap("4")
        driver.tap("8")
        driver.tap("Save")
        driver.tap("Review  >")
        driver.tap("Acknowledge — clinician told")
        driver.tap("Send")
        driver.until(
            lambda: len(practice.got("vitals")) == 1 and len(practice.got("alert")) == 1,
            frames=2000,
        )
        vitals = VitalsPayload.model_validate(practice.got("vitals")[0])
        alert = AlertPayload.model_validate(practice.got("alert")[0])
    finally:
        link.stop()
        outbox.close()

    assert (vitals.appointment_id, vitals.patient, vitals.ma_id) == (
        "APT-TEST-0045",
        PATIENT,
        "ma-007",
    )
    assert vitals.medications == (
        SubmittedMedication(
            name="albuterol inhaler", use=MedicationUse.CHANGED, new_dose="2 puffs twice daily"
        ),
        SubmittedMedication(name="lisinopril 10 mg daily", use=MedicationUse.TAKING),
        SubmittedMedication(
            name="ibuprofen",
            dose="400 mg as needed",
            use=MedicationUse.TAKING,
            patient_reported_new=True,
        ),
    )
    assert vitals.allergies == (
        SubmittedAllergy(
            substance="penicillin",
            reaction="hives",
            severity="moderate",
            verification=AllergyVerification.CONFIRMED,
        ),
        SubmittedAllergy(
            substance="peanuts",
            reaction="throat swelling",
            severity="severe",
            verification=AllergyVerification.CONFIRMED,
            patient_reported_new=True,
        ),
    )
    (strep, glucose) = vitals.poc_results
    assert (strep.result.test, strep.result.result, strep.result.kit_lot) == (
        "strep_a",
        "positive",
        "LOT-A1",
    )
    # design.md: an alarming value raises an alert message: the critical glucose, on `alert`.
    assert (alert.appointment_id, alert.code, alert.acknowledged_by) == (
        "APT-TEST-0045",
        "hypoglycaemia_level_2",
        "ma-007",
    )
    assert alert.poc_result == glucose and alert.reading is None
    assert glucose.result.value == 48.0

    bundle = vitals.fhir_bundle
    requests = resources(bundle, "MedicationRequest")
    assert [
        (r["medicationCodeableConcept"]["text"], r["status"], r["intent"]) for r in requests
    ] == [
        ("albuterol inhaler", "active", "plan"),
        ("lisinopril 10 mg daily", "active", "plan"),
        ("ibuprofen", "active", "plan"),
    ]
    assert all(r["reportedBoolean"] is True for r in requests)
    assert requests[0]["dosageInstruction"] == [{"text": "2 puffs twice daily"}]
    # Self-prescribed: the patient (by the schedule's MRN) is the requester.
    requester = requests[2]["requester"]
    assert (requester["type"], requester["identifier"]["value"]) == ("Patient", PATIENT.mrn)
    assert "requester" not in requests[1]

    allergies = resources(bundle, "AllergyIntolerance")
    assert [
        (
            a["code"]["text"],
            a["verificationStatus"]["coding"][0]["system"],
            a["verificationStatus"]["coding"][0]["code"],
            a["clinicalStatus"]["coding"][0]["system"],
            a["clinicalStatus"]["coding"][0]["code"],
        )
        for a in allergies
    ] == [
        ("penicillin", VERIFICATION, "confirmed", CLINICAL, "active"),
        ("peanuts", VERIFICATION, "confirmed", CLINICAL, "active"),
    ]
    assert allergies[1]["reaction"][0]["severity"] == "severe"
    assert allergies[1]["reaction"][0]["manifestation"] == [{"text": "throat swelling"}]

    (lab, glucose_lab) = [
        o
        for o in resources(bundle, "Observation")
        if any(
            c.get("code") == "laboratory" for cat in o.get("category", ()) for c in cat["coding"]
        )
    ]
    assert glucose_lab["code"]["coding"][0]["code"] == "41653-7"  # capillary glucose (LOINC)
    assert lab["status"] == "final"
    assert {"system": CATEGORY, "code": "laboratory"}.items() <= lab["category"][0]["coding"][
        0
    ].items()
    assert lab["code"]["coding"][0]["system"] == LOINC
    assert lab["code"]["coding"][0]["code"] == "78012-2"
    assert [(c["system"], c["code"]) for c in lab["valueCodeableConcept"]["coding"]] == [
        (SNOMED, "10828004")
    ]
    # Every new resource holds to the US Core profile it claims, by the published
    # StructureDefinitions (not by the station's own checks).
    for resource in (*requests, *allergies, lab, glucose_lab):
        assert us_core.problems(resource, "6.1.0") == [], resource["resourceType"]
