"""The rest of intake as HL7 v2.5.1, held to the standards' tables and to hl7apy STRICT.

Sources for the expected values (none is the code's own output):
- HL7 v2.5.1: ch. 3 3.3.60 ADT^A60 (structure ADT_A60: MSH EVN PID [PV1] [PV2] {IAM}), 3.4.7
  IAM fields (IAM-3 allergen, -4 severity, -5 reaction, -6 action code, -17 clinical status);
  ch. 7 7.3.1 ORU^R01 (PATIENT group optional; TIMING_QTY TQ1); tables 0078 abnormal flags
  (A abnormal / N normal for non-numeric results, AA very abnormal, L/H/LL/HH for numbers),
  0085 (X: results cannot be obtained), 0128 allergy severity (MI, MO, SV), 0136 yes/no,
  0323 allergy action code (A add, U update), 0438 allergy clinical status (C confirmed or
  verified, E erroneous), 0485 priority (S stat), 0063 relationship (SEL self);
- LOINC (loinc.org): 78012-2 strep A Ag, 80382-5 influenza A Ag, 41653-7 capillary glucose by
  glucometer, 24357-6 Urinalysis macro (dipstick) panel (members 5803-2 pH, 5794-3 hemoglobin,
  5802-4 nitrite, 5811-5 specific gravity), 10160-0 History of Medication use Narrative, PHQ-9
  panel 44249-1 items 44250-9 ... 44260-8 (item 9), 44261-6 PHQ-9 total, 55758-7 PHQ-2 total,
  answers LA6568-5 Not at all, LA6569-3 Several days, LA6570-1 More than half the days;
- SNOMED CT 10828004 Positive, 260385009 Negative, 716186003 No known allergy (situation);
- ADA Standards of Care, section 6: glucose < 54 mg/dL is level 2 hypoglycaemia (critical);
- MedlinePlus "Urine pH test": normal 4.5 to 8 (pH 8.5 is high); "Urine specific gravity
  test": normal 1.005 to 1.030 (1.000 is low);
- PHQ-2 (Kroenke 2003): a total of 3 or more screens positive; the US Core PHQ-9 example
  (QuestionnaireResponse and Observation, total 12) gives the answers used here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from station.gateway.config import GatewayHl7
from station.gateway.hl7v2 import adt_a04, oru_r01
from station.gateway.hl7v2_intake import (
    adt_a60,
    help_request_oru,
    screening_alert_oru,
    screening_oru,
    vitals_extra_orders,
)
from station.poc import judge
from station.submission import (
    AllergyVerification,
    MedicationReview,
    MedicationReviewStatus,
    SubmittedAllergy,
    SubmittedPocResult,
)
from station.sync import payloads
from station.sync.contract import CheckinPayload, VitalsPayload
from tests.gateway.test_hl7v2 import segments, strict
from tests.sync.samples import AT, PATIENT
from tests.sync.test_lists_fhir import lists_submission
from tests.sync.test_mqtt_doc import item9_alert, phq9_in_spanish

MID = uuid.UUID("3f6c8a2e-9b1d-4c7e-a5f0-1d2e3f405162")
SENT = datetime(2026, 3, 2, 15, 10, 0, tzinfo=UTC)
HL7 = GatewayHl7()


def vitals(**changes: object) -> VitalsPayload:
    sub = lists_submission()
    if changes:
        sub = sub.model_copy(update=changes)
    return payloads.vitals(sub, message_id=MID, site="clinic-north", station_id="exam-3",
                           sent_at=AT)


def vitals_oru(payload: VitalsPayload) -> str:
    er7 = oru_r01(payload, HL7, sent_at=SENT, extra_orders=vitals_extra_orders(payload))
    strict(er7)
    return er7


def names(er7: str) -> list[str]:
    return [seg.split("|")[0] for seg in er7.split("\r") if seg]


def test_point_of_care_results_are_coded_obx_with_the_flags_of_table_0078() -> None:
    at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    extra = (SubmittedPocResult(result=judge("urine_specific_gravity", "1.000"), recorded_at=at),
             SubmittedPocResult(result=judge("urine_ph", "8.5"), recorded_at=at))
    payload = vitals(poc_results=(*lists_submission().poc_results, *extra))
    er7 = vitals_oru(payload)
    orders = [(s[4].split("^")[0]) for s in segments(er7, "OBR")]
    # The device data first (IHE PCD-01), one OBR per test, the dipstick pads under the panel,
    # then the medication list.
    assert orders == ["182777000", "78012-2", "80382-5", "41653-7", "24357-6", "10160-0"]
    rows = [(s[2], s[3].split("^")[0], s[5], s[8], s[11]) for s in segments(er7, "OBX")
            if not s[3].startswith("10160-0")]
    assert rows == [
        ("CWE", "78012-2", "10828004^Positive^SCT", "A", "F"),
        ("", "80382-5", "", "", "X"),  # invalid test: no value, results cannot be obtained
        ("NM", "41653-7", "52", "LL", "F"),  # < 54 mg/dL: level 2 hypoglycaemia
        ("NM", "5803-2", "6.5", "", "F"),
        ("ST", "5794-3", "trace", "A", "F"),
        ("CWE", "5802-4", "260385009^Negative^SCT", "N", "F"),
        ("NM", "5811-5", "1.000", "L", "F"),  # below 1.005
        ("NM", "5803-2", "8.5", "H", "F"),  # above 8
    ]
    glucose = next(s for s in segments(er7, "OBX") if s[3].startswith("41653-7"))
    assert glucose[6] == "mg/dL^mg/dL^UCUM"
    assert glucose[17].split("^")[0] == "MANUAL"
    notes = [s[3] for s in segments(er7, "NTE")]
    assert "kit lot LOT-A1" in notes
    assert any(n.startswith("invalid test") for n in notes)


def test_the_reported_medication_list_is_narrative_obx_never_a_pharmacy_order() -> None:
    payload = vitals(medication_review=MedicationReview(
        status=MedicationReviewStatus.REVIEWED_CHANGES_REPORTED))
    er7 = vitals_oru(payload)
    # RXO/RXE/RXD/RXA are this practice's orders, encodings, dispenses, administrations.
    assert not {"RXO", "RXE", "RXD", "RXA"} & set(names(er7))
    lines = [(s[3], s[4], s[5]) for s in segments(er7, "OBX") if s[3].startswith("10160-0")]
    code = "10160-0^History of Medication use Narrative^LN"
    assert lines == [
        (code, "1", "lisinopril 10 mg daily: taking"),
        (code, "2", "metformin 500 mg twice daily: taking, changed, now 1000 mg twice daily; "
                    "dose raised by the cardiologist"),
        (code, "3", "aspirin: not taking"),
        (code, "4", "ibuprofen 200 mg as needed: taking (reported by the patient today; not "
                    "on the practice's list)"),
    ]
    assert "medication list reviewed: changes reported" in [s[3] for s in segments(er7, "NTE")]
    none = vitals_oru(vitals(medications=(), no_medications=True))
    assert [s[5] for s in segments(none, "OBX") if s[3].startswith("10160-0")] == [
        "the patient takes no medications"]


def test_the_allergy_review_is_adt_a60_with_one_iam_per_reviewed_allergy() -> None:
    unreviewed = SubmittedAllergy(substance="sulfa", verification=AllergyVerification.UNREVIEWED)
    payload = vitals(allergies=(*lists_submission().allergies, unreviewed))
    er7 = adt_a60(payload, HL7, sent_at=SENT, part=1)
    assert er7 is not None
    strict(er7)
    assert names(er7) == ["MSH", "EVN", "PID", "PV1", "IAM", "IAM", "IAM"]  # sulfa: not sent
    msh = er7.split("\r")[0].split("|")
    assert msh[8] == "ADT^A60^ADT_A60"
    assert msh[9] != MID.hex[:20]  # its own control id beside the ORU's
    assert segments(er7, "EVN")[0][1] == "A60"
    rows = [(s[3], s[4], s[5], s[6], s[15], s[17]) for s in segments(er7, "IAM")]
    assert rows == [
        ("^penicillin", "MO^Moderate^HL70128", "hives", "U^Update^HL70323", "",
         "C^Confirmed or verified^HL70438"),
        ("^latex", "", "", "U^Update^HL70323", "", "E^Erroneous^HL70438"),
        ("^peanuts", "SV^Severe^HL70128", "throat swelling", "A^Add/Insert^HL70323",
         "SEL^Self^HL70063", "C^Confirmed or verified^HL70438"),
    ]
    assert {s[18] for s in segments(er7, "IAM")} == {"MA042"}  # statused by the MA
    nka = adt_a60(vitals(allergies=(), no_known_allergies=True), HL7, sent_at=SENT, part=1)
    assert nka is not None
    strict(nka)
    assert segments(nka, "IAM")[0][3] == "716186003^No known allergy (situation)^SCT"
    assert adt_a60(vitals(allergies=(unreviewed,)), HL7, sent_at=SENT, part=1) is None


def checkin(**changes: object) -> CheckinPayload:
    return payloads.checkin(
        appointment_id="APT-0001", patient=PATIENT, contact_details_confirmed=True,
        contact_update_requested=False, reason_for_visit="dolor de garganta",
        checked_in_at=AT, message_id=MID, language="es", site="clinic-north",
        station_id="lobby-1", sent_at=AT, **changes)  # type: ignore[arg-type]


def test_the_insurance_answer_is_a_yes_no_obx_in_the_adt_a04() -> None:
    for answer, value in ((True, "Y^Yes^HL70136"), (False, "N^No^HL70136")):
        er7 = adt_a04(checkin(insurance_changed=answer), HL7, sent_at=SENT)
        strict(er7)
        obx = [s for s in segments(er7, "OBX") if s[3].startswith("INSURANCE-CHANGED")]
        assert [(s[2], s[5]) for s in obx] == [("CWE", value)]
    unanswered = adt_a04(checkin(), HL7, sent_at=SENT)
    assert not any(s[3].startswith("INSURANCE") for s in segments(unanswered, "OBX"))


def test_questionnaires_are_an_oru_with_loinc_items_and_scored_totals() -> None:
    payload = checkin(screenings=phq9_in_spanish())
    er7 = screening_oru(payload, HL7, sent_at=SENT, part=1)
    assert er7 is not None
    strict(er7)
    msh = er7.split("\r")[0].split("|")
    assert msh[8] == "ORU^R01^ORU_R01"
    assert len(msh) < 21 or msh[20] == ""  # not device data: no IHE PCD-01 profile
    assert [s[4].split("^")[0] for s in segments(er7, "OBR")] == ["phq-2", "phq-9"]
    obx = segments(er7, "OBX")
    phq2 = [(s[2], s[3].split("^")[0], s[5].split("^")[0], s[8]) for s in obx[:3]]
    assert phq2 == [("CWE", "44250-9", "LA6570-1", ""), ("CWE", "44255-8", "LA6570-1", ""),
                    ("NM", "55758-7", "4", "A")]  # 4 >= 3: a positive screen
    phq9 = obx[3:]
    assert [s[3].split("^")[0] for s in phq9] == [
        "44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
        "44253-3", "44260-8", "44261-6"]
    assert phq9[-1][2:9] == ["NM", phq9[-1][3], "", "12", "{score}^{score}^UCUM", "", ""]
    assert phq9[-1][3].startswith("44261-6^")
    assert phq9[8][5] == "LA6568-5^Not at all^LN"  # item 9: not at all


def test_a_screening_alert_is_a_stat_oru_with_the_answer_flagged_aa() -> None:
    alert = payloads.screening_alert(
        item9_alert(), appointment_id="APT-0001", patient=PATIENT, language="en",
        raised_at=AT, message_id=MID, site="clinic-north", station_id="lobby-1", sent_at=AT)
    er7 = screening_alert_oru(alert, HL7, sent_at=SENT)
    strict(er7)
    assert names(er7) == ["MSH", "PID", "PV1", "OBR", "NTE", "TQ1", "OBX"]
    (obx,) = segments(er7, "OBX")
    assert (obx[3], obx[5], obx[8]) == ("44260-8^^LN", "LA6569-3^Several days^LN", "AA")
    assert segments(er7, "TQ1")[0][9] == "S^Stat^HL70485"
    assert segments(er7, "NTE")[0][3] == alert.message


def test_a_help_request_names_no_patient() -> None:
    request = payloads.help_request(screen="find", language="es", requested_at=AT,
                                    message_id=MID, site="clinic-north", station_id="lobby-1",
                                    sent_at=AT)
    er7 = help_request_oru(request, HL7, sent_at=SENT)
    strict(er7)
    assert names(er7) == ["MSH", "OBR", "TQ1", "OBX"]
    assert "lobby-1" in segments(er7, "OBX")[0][5]


def test_a_critical_point_of_care_result_is_an_alert_oru_stat_with_its_ll_flag() -> None:
    from station.gateway.hl7v2 import oru_r01_alert

    [alert] = payloads.alerts(lists_submission(), message_ids=[MID], site="clinic-north",
                              station_id="exam-3", sent_at=AT)
    er7 = oru_r01_alert(alert, HL7, sent_at=SENT)
    strict(er7)
    [obr] = segments(er7, "OBR")
    assert obr[4].split("^")[0] == "41653-7"
    [obx] = segments(er7, "OBX")
    # < 54 mg/dL: level 2 hypoglycaemia (ADA), LL "below lower panic limits" (table 0078).
    assert (obx[3].split("^")[0], obx[5], obx[8]) == ("41653-7", "52", "LL")
    assert segments(er7, "TQ1")[0][9].split("^")[0] == "S"  # stat (table 0485)
    assert alert.message in [s[3] for s in segments(er7, "NTE")]
