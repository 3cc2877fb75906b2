"""Manual patient entry (issue 15): when the schedule is empty or the station is offline the MA
types name + date of birth (+ the MRN if known); the rooming is marked `identification:
manual` in the vitals (and alert) message so the practice matches it to the chart.

Outside truths:
- The Joint Commission NPSG.01.01.01 ("use at least two patient identifiers") and
  /work/shared/design.md's safety rule: two identifiers (name + date of birth) are shown and
  confirmed before rooming starts — an entered patient is confirmed like a picked one.
- FHIR R4 Identifier.use (hl7.org/fhir/R4/valueset-identifier-use.html): `temp` "A temporary
  identifier"; US Core 6.1/7.0/8.0 StructureDefinitions through tests/conformance/us_core.py.
- HL7 v2.5.1 Table 0203 Identifier Type: "PT" Patient external identifier, "MR" Medical
  record number; PID-3 is required (R) in ORU^R01, held by hl7apy's strict validation.
- JSON Schema validation of the message against docs/schemas/vitals.schema.json (formats on).
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from pydantic import ValidationError

from station.gateway.config import GatewayHl7
from station.gateway.hl7v2 import oru_r01
from station.rooming_data import Refusal, RoomingEvent, RoomingState
from station.rooming_record import record_to_submission
from station.submission import Identification, PatientIdentifiers
from station.sync import payloads
from station.sync.contract import Appointment, to_json
from station.sync.fhir import build_bundle
from station.workflow import IllegalTransitionError, RefusedError
from tests.conformance import us_core
from tests.sync.samples import AT, MESSAGE_ID, submission
from tests.sync.test_contract import check
from tests.workflows.helpers import ALPHA, T0, offer, review_lists, spo2
from tests.workflows.test_rooming import make

KILO_BORN = date(1961, 3, 14)


def test_an_entered_patient_is_confirmed_like_a_picked_one_never_skipped() -> None:
    rooming, _ = make()
    rooming.sign_in("BADGE-0042")
    patient = rooming.enter_patient("  ZZTEST ", "Kilo", KILO_BORN)
    assert rooming.state is RoomingState.PATIENT_PICKED  # the two-identifier check is next
    assert (patient.family_name, patient.given_name, patient.birth_date, patient.mrn) == (
        "ZZTEST", "Kilo", KILO_BORN, None)
    assert patient.identification is Identification.MANUAL
    assert patient.appointment_id == "MANUAL-20260302090000-1"
    # Nothing attaches before the MA confirms both identifiers with the patient.
    with pytest.raises(RefusedError) as info:
        rooming.set_complaint(free_text="cough")
    assert info.value.reason is Refusal.IDENTIFIERS_NOT_CONFIRMED
    rooming.confirm_identifiers()
    assert rooming.state is RoomingState.VITALS


def test_the_sent_record_is_marked_manual_without_an_mrn_and_validates() -> None:
    rooming, _ = make()
    rooming.sign_in("BADGE-0042")
    patient = rooming.enter_patient("ZZTEST", "Kilo", KILO_BORN)
    rooming.confirm_identifiers()
    offer(rooming, spo2(97), "oximeter")
    review_lists(rooming)
    rooming.go(RoomingEvent.TO_REVIEW)
    sub = record_to_submission(rooming.send(), patient)
    assert sub.identification is Identification.MANUAL
    assert sub.patient == PatientIdentifiers(
        mrn=None, family_name="ZZTEST", given_name="Kilo", birth_date=KILO_BORN)
    vitals = payloads.vitals(sub, message_id=MESSAGE_ID, site="clinic-north",
                             station_id="exam-3", sent_at=AT)
    check("vitals.schema.json", to_json(vitals))  # the published JSON Schema, formats on
    body = json.loads(to_json(vitals))
    assert body["identification"] == "manual"
    assert body["patient"]["mrn"] is None
    assert body["appointment_id"] == "MANUAL-20260302090000-1"


def test_a_typed_mrn_travels_as_the_mrn() -> None:
    rooming, _ = make()
    rooming.sign_in("BADGE-0042")
    patient = rooming.enter_patient("ZZTEST", "Kilo", KILO_BORN, " TEST200042 ")
    assert (patient.mrn, patient.identification) == ("TEST200042", Identification.MANUAL)


@pytest.mark.parametrize(
    ("family", "given", "born", "mrn", "details"),
    [
        ("", "Kilo", KILO_BORN, "", ("last name: type it",)),
        ("ZZTEST", " ", KILO_BORN, "", ("first name: type it",)),
        ("ZZTEST", "Kilo", date(2026, 3, 3), "", ("date of birth: it is after today",)),
        ("ZZTEST", "Kilo", date(1890, 1, 1), "", ("date of birth: more than 130 years ago",)),
        ("ZZTEST", "Kilo", KILO_BORN, "TEST 42",
         ("MRN: letters, digits, '-', '.', '_' or ':' only, no spaces",)),
        ("Z" * 101, "Kilo", KILO_BORN, "", ("last name: at most 100 characters",)),
    ],
)
def test_bad_identifiers_are_refused_with_what_was_wrong_and_nothing_opens(
    family: str, given: str, born: date, mrn: str, details: tuple[str, ...]
) -> None:
    rooming, _ = make()
    rooming.sign_in("BADGE-0042")
    with pytest.raises(RefusedError) as info:
        rooming.enter_patient(family, given, born, mrn)
    assert (info.value.reason, info.value.message, info.value.details) == (
        Refusal.INVALID_ENTRY, "patient not entered", details)
    assert (rooming.state, rooming.patient) == (RoomingState.SIGNED_IN, None)


def test_a_patient_on_the_list_is_picked_there_not_typed_in() -> None:
    rooming, _ = make()
    rooming.sign_in("BADGE-0042")
    with pytest.raises(RefusedError) as info:
        rooming.enter_patient(ALPHA.family_name.lower(), ALPHA.given_name, ALPHA.birth_date)
    assert info.value.reason is Refusal.ON_SCHEDULE
    assert info.value.message == f"{ALPHA.display_name} is on today's list: pick them there"
    assert rooming.state is RoomingState.SIGNED_IN


def test_only_from_the_patient_list() -> None:
    rooming, _ = make()
    with pytest.raises(IllegalTransitionError):
        rooming.enter_patient("ZZTEST", "Kilo", KILO_BORN)
    assert rooming.state is RoomingState.SIGNED_OUT


def test_not_this_patient_forgets_what_was_typed() -> None:
    rooming, _ = make()
    rooming.sign_in("BADGE-0042")
    rooming.enter_patient("ZZTEST", "Kilo", KILO_BORN)
    rooming.not_this_patient()
    assert (rooming.state, rooming.patient) == (RoomingState.SIGNED_IN, None)
    again = rooming.enter_patient("ZZTEST", "Lima", KILO_BORN)
    assert again.appointment_id == "MANUAL-20260302090000-2"  # a new visit id each time
    assert T0.date() == date(2026, 3, 2)


def test_without_an_mrn_only_a_manual_identification_is_accepted() -> None:
    nameless = PatientIdentifiers(mrn=None, family_name="ZZTEST", given_name="Kilo",
                                  birth_date=KILO_BORN)
    with pytest.raises(ValidationError, match="only a manually identified patient"):
        type(submission()).model_validate(
            {**submission().model_dump(), "patient": nameless.model_dump()})
    # The schedule always carries the MRN.
    with pytest.raises(ValidationError, match=r"patient\.mrn is required"):
        Appointment.model_validate({"appointment_id": "APT-1", "starts_at": AT.isoformat(),
                                    "patient": nameless.model_dump(mode="json")})


def _manual_submission() -> object:
    nameless = PatientIdentifiers(mrn=None, family_name="ZZTEST", given_name="Kilo",
                                  birth_date=KILO_BORN)
    return submission(appointment_id="MANUAL-20260302090000-1").model_copy(
        update={"patient": nameless, "identification": Identification.MANUAL})


@pytest.mark.parametrize("version", us_core.VERSIONS)
def test_the_fhir_subject_is_a_temporary_identifier_and_passes_us_core(version: str) -> None:
    bundle = build_bundle(_manual_submission(), message_id=MESSAGE_ID,  # type: ignore[arg-type]
                          station_id="exam-3", sent_at=AT)
    observations = [e["resource"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "Observation"]
    assert observations
    for resource in observations:
        assert resource["subject"] == {
            "type": "Patient",
            "identifier": {"use": "temp", "system": "urn:rooming-station:manual-entry",
                           "value": "MANUAL-20260302090000-1"},
            "display": "ZZTEST, Kilo",
        }
    for entry in bundle["entry"]:
        assert us_core.problems(entry["resource"], version) == []


def test_the_hl7_pid_carries_the_visit_id_as_an_external_id_never_as_an_mrn() -> None:
    vitals = payloads.vitals(_manual_submission(), message_id=MESSAGE_ID,  # type: ignore[arg-type]
                             site="clinic-north", station_id="exam-3", sent_at=AT)
    er7 = oru_r01(vitals, GatewayHl7(), sent_at=AT)
    message = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message.validate()
    pid = next(s.split("|") for s in er7.split("\r") if s.startswith("PID|"))
    assert (pid[3], pid[5], pid[7]) == (
        "MANUAL-20260302090000-1^^^ROOMING-MANUAL^PT", "ZZTEST^Kilo", "19610314")
