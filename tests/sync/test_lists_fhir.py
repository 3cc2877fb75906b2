"""The medication list, the allergy review and point-of-care results as FHIR (#18), held to the
real US Core StructureDefinitions and the FHIR R4 invariants — never to the station's own rules.

Outside truths:
- US Core 6.1.0 / 7.0.0 / 8.0.0 us-core-medicationrequest, us-core-allergyintolerance and
  us-core-observation-lab (tests/conformance/us-core/, HL7/US-Core tags, CC0), checked by
  tests/conformance/us_core.py with fhirpathpy;
- US Core "Medication List" guidance (input/pagecontent/medication-list.md, 6.1.0): reported
  medications are MedicationRequest with intent "plan" and reported[x]; a self-prescribed one
  SHOULD name the patient as requester; US Core profiles no MedicationStatement;
- FHIR R4 AllergyIntolerance invariants ait-1 / ait-2 and List lst-1 (hl7.org/fhir/R4,
  allergyintolerance.html and list.html, "Constraints"), evaluated here with fhirpathpy;
- FHIR R4 List empty reason `nilknown` "Nil Known" (terminology.hl7.org CodeSystem
  list-empty-reason); AllergyIntolerance.reaction.severity mild | moderate | severe;
- LOINC: 78012-2 Streptococcus pyogenes Ag [Presence] in Throat by Rapid immunoassay,
  41653-7 Glucose [Mass/volume] in Capillary blood by Glucometer, 5803-2 pH of Urine by Test
  strip, 5794-3 Hemoglobin [Presence] in Urine by Test strip (loinc.org long common names);
- SNOMED CT 10828004 Positive, 260385009 Negative, 716186003 No known allergy (situation);
- ADA Standards of Care, section 6: level 1 hypoglycaemia < 70 mg/dL, level 2 < 54 mg/dL;
- NLM's UCUM library (@lhncbc/ucum-lhc, npm) decides what is valid UCUM.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from station.poc import judge
from station.submission import (
    AllergyVerification,
    MedicationUse,
    Submission,
    SubmittedAllergy,
    SubmittedMedication,
    SubmittedPocResult,
)
from station.sync.fhir import build_bundle
from tests.conformance import us_core
from tests.sync.samples import AT, MESSAGE_ID, PATIENT
from tests.sync.test_us_core_conformance import ucum

R4 = models["r4"]
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
AIT_1 = ("verificationStatus.coding.where(system = 'http://terminology.hl7.org/CodeSystem/"
         "allergyintolerance-verification' and code = 'entered-in-error').exists() or "
         "clinicalStatus.exists()")
AIT_2 = ("verificationStatus.coding.where(system = 'http://terminology.hl7.org/CodeSystem/"
         "allergyintolerance-verification' and code = 'entered-in-error').empty() or "
         "clinicalStatus.empty()")
LST_1 = "emptyReason.empty() or entry.empty()"


def lists_submission(*, no_known_allergies: bool = False) -> Submission:
    allergies = () if no_known_allergies else (
        SubmittedAllergy(substance="penicillin", reaction="hives", severity="moderate",
                         verification=AllergyVerification.CONFIRMED),
        SubmittedAllergy(substance="latex", verification=AllergyVerification.REFUTED),
        SubmittedAllergy(substance="peanuts", reaction="throat swelling", severity="severe",
                         verification=AllergyVerification.CONFIRMED, patient_reported_new=True),
    )
    at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    low = judge("glucose_capillary", 52)
    return Submission(
        appointment_id="APT-0001", patient=PATIENT, ma_id="MA042", completed_at=AT,
        medications=(
            SubmittedMedication(name="lisinopril", dose="10 mg daily", use=MedicationUse.TAKING),
            SubmittedMedication(name="metformin", dose="500 mg twice daily",
                                use=MedicationUse.CHANGED, new_dose="1000 mg twice daily",
                                note="dose raised by the cardiologist"),
            SubmittedMedication(name="aspirin", use=MedicationUse.NOT_TAKING),
            SubmittedMedication(name="ibuprofen", dose="200 mg as needed",
                                use=MedicationUse.TAKING, patient_reported_new=True),
        ),
        allergies=allergies,
        no_known_allergies=no_known_allergies,
        poc_results=(
            SubmittedPocResult(result=judge("strep_a", "positive", "LOT-A1"), recorded_at=at),
            SubmittedPocResult(result=judge("influenza_a", "invalid"), recorded_at=at),
            SubmittedPocResult(result=low, recorded_at=at, acknowledged_by="MA042",
                               acknowledged_at=at),
            SubmittedPocResult(result=judge("urine_ph", "6.5"), recorded_at=at),
            SubmittedPocResult(result=judge("urine_blood", "trace"), recorded_at=at),
            SubmittedPocResult(result=judge("urine_nitrite", "negative"), recorded_at=at),
        ),
    )


def resources(submission: Submission) -> list[dict[str, Any]]:
    bundle = build_bundle(submission, message_id=MESSAGE_ID, station_id="exam-3", sent_at=AT)
    return [e["resource"] for e in bundle["entry"]]  # type: ignore[index,union-attr]


def of(kind: str, submission: Submission | None = None) -> list[dict[str, Any]]:
    return [r for r in resources(submission or lists_submission()) if r["resourceType"] == kind]


@pytest.mark.parametrize("version", us_core.VERSIONS)
@pytest.mark.parametrize("nka", [False, True])
def test_every_new_resource_passes_the_us_core_profile_it_claims(version: str, nka: bool) -> None:
    claimed: dict[str, int] = {}
    for resource in resources(lists_submission(no_known_allergies=nka)):
        assert us_core.problems(resource, version) == [], resource
        for profile in resource.get("meta", {}).get("profile", []):
            name = profile.removeprefix(US_CORE)
            claimed[name] = claimed.get(name, 0) + 1
    assert claimed == {
        "us-core-medicationrequest": 4,
        "us-core-allergyintolerance": 1 if nka else 3,
        "us-core-observation-lab": 6,
    }


def test_the_checker_sees_an_order_without_requester_and_a_bad_status() -> None:
    [request, *_] = of("MedicationRequest")
    request["intent"] = "order"  # an order names its prescriber (us-core-21)
    request["status"] = "taking"
    found = us_core.problems(request, "6.1.0")
    assert any("us-core-21 fails" in p for p in found)
    assert any("['taking'] not in http://hl7.org/fhir/ValueSet/medicationrequest-status" in p
               for p in found)


def test_medications_are_reported_plan_requests_as_us_core_guides() -> None:
    lisinopril, metformin, aspirin, ibuprofen = of("MedicationRequest")
    for request in (lisinopril, metformin, aspirin, ibuprofen):
        assert (request["intent"], request["reportedBoolean"]) == ("plan", True)
        assert request["subject"]["identifier"]["value"] == PATIENT.mrn
    assert [r["status"] for r in (lisinopril, metformin, aspirin, ibuprofen)] == [
        "active", "active", "stopped", "active"]
    assert metformin["dosageInstruction"] == [{"text": "1000 mg twice daily"}]
    assert metformin["note"] == [{"text": "changed; listed dose was 500 mg twice daily"},
                                 {"text": "dose raised by the cardiologist"}]
    # Self-prescribed (added today): the patient is the requester; the listed ones have none.
    assert ibuprofen["requester"]["identifier"]["value"] == PATIENT.mrn
    assert "requester" not in lisinopril
    assert ibuprofen["medicationCodeableConcept"] == {"text": "ibuprofen"}


def test_takes_no_medications_is_an_empty_list_with_reason_nil_known() -> None:
    none = Submission(appointment_id="APT-0001", patient=PATIENT, ma_id="MA042",
                      completed_at=AT, no_medications=True)
    [empty] = of("List", none)
    assert empty["emptyReason"]["coding"] == [{
        "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
        "code": "nilknown", "display": "Nil Known"}]
    assert evaluate(empty, f"List.all({LST_1})", {}, R4) == [True]
    assert of("MedicationRequest", none) == []


def test_allergies_carry_verification_reaction_and_severity() -> None:
    penicillin, latex, peanuts = of("AllergyIntolerance")
    system = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
    assert penicillin["verificationStatus"]["coding"] == [{"system": system, "code": "confirmed"}]
    assert latex["verificationStatus"]["coding"] == [{"system": system, "code": "refuted"}]
    assert penicillin["reaction"] == [{"manifestation": [{"text": "hives"}],
                                       "severity": "moderate"}]
    assert peanuts["reaction"][0]["severity"] == "severe"
    assert "asserter" in peanuts and "asserter" not in penicillin
    for allergy in (penicillin, latex, peanuts):
        for invariant in (AIT_1, AIT_2):
            assert evaluate(allergy, f"AllergyIntolerance.all({invariant})", {}, R4) == [True]


def test_no_known_allergies_is_snomed_716186003_confirmed() -> None:
    [nka] = of("AllergyIntolerance", lists_submission(no_known_allergies=True))
    assert nka["code"]["coding"] == [{"system": "http://snomed.info/sct", "code": "716186003",
                                      "display": "No known allergy (situation)"}]
    assert nka["verificationStatus"]["coding"][0]["code"] == "confirmed"


def test_a_confirmed_allergy_beside_no_known_allergies_is_refused() -> None:
    with pytest.raises(ValueError, match="'no known allergies' beside a confirmed allergy"):
        Submission(appointment_id="APT-0001", patient=PATIENT, ma_id="MA042", completed_at=AT,
                   no_known_allergies=True, allergies=(SubmittedAllergy(
                       substance="penicillin", verification=AllergyVerification.CONFIRMED),))


def test_point_of_care_results_are_lab_observations_marked_manual() -> None:
    observations = of("Observation")
    by_code = {o["code"]["coding"][0]["code"]: o for o in observations}
    strep = by_code["78012-2"]
    assert strep["category"][0]["coding"][0]["code"] == "laboratory"
    assert strep["valueCodeableConcept"]["coding"] == [
        {"system": "http://snomed.info/sct", "code": "10828004", "display": "Positive"}]
    assert strep["interpretation"][0]["coding"][0]["code"] == "POS"
    assert strep["method"]["coding"][0]["code"] == "manual"
    [kit] = of("Device")
    assert kit["lotNumber"] == "LOT-A1" and strep["device"]["reference"].startswith("urn:uuid:")
    flu = by_code["80382-5"]
    assert flu["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert "valueCodeableConcept" not in flu
    glucose = by_code["41653-7"]
    assert glucose["valueQuantity"] == {"value": 52.0, "unit": "mg/dL",
                                        "system": "http://unitsofmeasure.org", "code": "mg/dL"}
    assert glucose["interpretation"][0]["coding"][0]["code"] == "LL"  # < 54: level 2
    assert by_code["5803-2"]["valueQuantity"]["value"] == 6.5
    assert by_code["5794-3"]["valueCodeableConcept"] == {"text": "trace"}
    assert by_code["5802-4"]["valueCodeableConcept"]["coding"][0]["code"] == "260385009"


def test_new_units_are_valid_ucum() -> None:
    codes = sorted({q["code"] for o in of("Observation") for q in us_core.quantities(o)
                    if q["system"] == "http://unitsofmeasure.org"})
    assert codes == ["[pH]", "mg/dL"]
    assert ucum(codes) == {"[pH]": "valid", "mg/dL": "valid"}
    assert ucum(["1"]) == {"1": "valid"}  # specific gravity


@pytest.mark.parametrize(
    ("mg_dl", "flags"),
    [
        (53, [("hypoglycaemia_level_2", "critical")]),
        (54, [("hypoglycaemia_level_1", "warning")]),  # < 54 is level 2: 54 is level 1
        (69, [("hypoglycaemia_level_1", "warning")]),
        (70, []),
        (249, []),
        (250, [("hyperglycaemia", "warning")]),
    ],
)
def test_glucose_flags_follow_the_ada_levels(mg_dl: float, flags: list[tuple[str, str]]) -> None:
    assert [(f.code, f.severity.value) for f in judge("glucose_capillary", mg_dl).flags] == flags
