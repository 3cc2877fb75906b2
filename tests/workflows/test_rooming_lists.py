"""The MA's medication list update, allergy review and point-of-care results (#18).

Outside truths:
- the rooming practice the issue quotes (MA job descriptions: "updating the medication list";
  EHR rooming: allergies confirmed, "no known allergies"): a listed item is never dropped
  silently and "none" never stands beside an item taken / a confirmed allergy;
- FHIR R4 AllergyIntolerance.reaction.severity: mild | moderate | severe;
- ADA Standards of Care, section 6: glucose < 54 mg/dL is level 2 hypoglycaemia (here
  critical: acknowledged before Send, like a critical vital);
- LOINC 78012-2 (rapid strep), result set positive / negative / invalid.
"""

from __future__ import annotations

import pytest

from station.rooming import Rooming
from station.rooming_data import (
    Allergy,
    AllergySeverity,
    AllergyStatus,
    MedicationStatus,
    Refusal,
    RoomingEvent,
)
from station.rooming_record import record_to_submission
from station.submission import AllergyVerification, MedicationUse
from station.workflow import RefusedError
from tests.workflows.helpers import ALPHA, CREDENTIALS, FakeClock

PATIENT = ALPHA.model_copy(update={"allergies": (
    Allergy(substance="penicillin", reaction="hives", severity=AllergySeverity.MODERATE),
    Allergy(substance="latex"),
)})


def roomed() -> Rooming:
    rooming = Rooming(clock=FakeClock(), credentials=CREDENTIALS)
    rooming.set_schedule((PATIENT,))
    rooming.sign_in("BADGE-0042")
    rooming.pick_patient(PATIENT.appointment_id)
    rooming.confirm_identifiers()
    rooming.set_complaint(picks=("sore throat",))
    rooming.go(RoomingEvent.TO_REVIEW)
    return rooming


def refusals(rooming: Rooming) -> list[Refusal]:
    return [r for r, _ in rooming.send_refusals()]


def test_send_waits_until_every_listed_medication_and_allergy_is_reviewed() -> None:
    rooming = roomed()
    assert refusals(rooming) == [Refusal.MEDICATIONS_NOT_REVIEWED, Refusal.ALLERGIES_NOT_REVIEWED]
    assert rooming.send_refusals()[0][1] == "review each medication: lisinopril, aspirin"
    rooming.set_medication_status(0, MedicationStatus.TAKING)
    rooming.change_medication(1, new_dose="81 mg every other day", note="cardiologist")
    assert refusals(rooming) == [Refusal.ALLERGIES_NOT_REVIEWED]
    rooming.confirm_allergy(0)
    rooming.set_allergy_status(1, AllergyStatus.REFUTED)
    rooming.add_allergy("peanuts", "throat swelling", AllergySeverity.SEVERE)
    rooming.add_medication("ibuprofen", "200 mg as needed")
    assert refusals(rooming) == []
    submission = record_to_submission(rooming.send(), PATIENT)
    assert [(m.name, m.use, m.new_dose, m.patient_reported_new)
            for m in submission.medications] == [
        ("lisinopril", MedicationUse.TAKING, "", False),
        ("aspirin", MedicationUse.CHANGED, "81 mg every other day", False),
        ("ibuprofen", MedicationUse.TAKING, "", True),
    ]
    assert [(a.substance, a.verification, a.severity, a.patient_reported_new)
            for a in submission.allergies] == [
        ("penicillin", AllergyVerification.CONFIRMED, "moderate", False),
        ("latex", AllergyVerification.REFUTED, None, False),
        ("peanuts", AllergyVerification.CONFIRMED, "severe", True),
    ]


def test_a_change_must_say_what_changed() -> None:
    rooming = roomed()
    with pytest.raises(RefusedError) as info:
        rooming.change_medication(0)
    assert info.value.reason == Refusal.INVALID_ENTRY
    assert rooming.medications[0].status == MedicationStatus.UNREVIEWED


def test_no_medications_never_stands_beside_one_taken() -> None:
    rooming = roomed()
    rooming.set_medication_status(0, MedicationStatus.TAKING)
    with pytest.raises(RefusedError) as info:
        rooming.set_no_medications(True)
    assert (info.value.reason, info.value.details) == (Refusal.CONTRADICTION, ("lisinopril",))
    rooming.set_medication_status(0, MedicationStatus.NOT_TAKING)
    rooming.set_no_medications(True)
    assert [m.status for m in rooming.medications] == [MedicationStatus.NOT_TAKING] * 2
    with pytest.raises(RefusedError):
        rooming.add_medication("ibuprofen")


def test_no_known_allergies_only_after_each_listed_one_is_refuted() -> None:
    rooming = roomed()
    with pytest.raises(RefusedError) as info:
        rooming.set_no_known_allergies(True)
    assert info.value.details == ("penicillin", "latex")
    rooming.set_allergy_status(0, AllergyStatus.REFUTED)
    rooming.set_allergy_status(1, AllergyStatus.REFUTED)
    rooming.set_no_known_allergies(True)
    with pytest.raises(RefusedError):
        rooming.confirm_allergy(0)


def test_only_what_was_added_today_can_be_removed() -> None:
    rooming = roomed()
    with pytest.raises(RefusedError):
        rooming.remove_added_medication(0)
    rooming.add_medication("ibuprofen")
    rooming.remove_added_medication(2)
    assert [m.medication.name for m in rooming.medications] == ["lisinopril", "aspirin"]


def test_point_of_care_results_are_checked_and_a_critical_one_acknowledged() -> None:
    rooming = roomed()
    with pytest.raises(RefusedError, match="expected one of negative, positive, invalid"):
        rooming.record_poc("strep_a", "weak")
    with pytest.raises(RefusedError, match="expected 10–600 mg/dL"):
        rooming.record_poc("glucose_capillary", 700)
    strep = rooming.record_poc("strep_a", "positive", kit_lot="LOT-A1")
    low = rooming.record_poc("glucose_capillary", "48")
    assert (strep.result.abnormal, strep.result.kit_lot) == (True, "LOT-A1")
    assert Refusal.CRITICAL_NOT_ACKNOWLEDGED in refusals(rooming)
    with pytest.raises(RefusedError):
        rooming.acknowledge_poc(strep.entry_id)  # not critical
    rooming.take_alerts()  # nothing raised so far: a result is alerted once acknowledged
    alert = rooming.acknowledge_poc(low.entry_id)
    assert Refusal.CRITICAL_NOT_ACKNOWLEDGED not in refusals(rooming)
    # An alarming value raises an alert to the practice (design.md, safety rules), as a
    # critical vital sign does: 48 mg/dL is below 54 mg/dL, ADA level 2 hypoglycaemia
    # (ADA Standards of Care in Diabetes, "Glycemic Goals and Hypoglycemia", Table 6.4).
    assert rooming.take_alerts() == (alert,)
    assert (alert.code, alert.entry_id) == ("hypoglycaemia_level_2", low.entry_id)
    assert rooming.take_alerts() == ()  # handed out once


def test_a_point_of_care_result_alone_is_something_to_send() -> None:
    rooming = Rooming(clock=FakeClock(), credentials=CREDENTIALS)
    rooming.set_schedule((ALPHA.model_copy(update={"medications": (), "reason_for_visit": ""}),))
    rooming.sign_in("BADGE-0042")
    rooming.pick_patient(ALPHA.appointment_id)
    rooming.confirm_identifiers()
    rooming.go(RoomingEvent.TO_REVIEW)
    assert refusals(rooming) == [Refusal.NOTHING_TO_SEND]
    rooming.record_poc("urine_hcg", "negative")
    assert refusals(rooming) == []
