"""The rest of rooming and intake as HL7 v2.5.1: point-of-care results, the medication list,
the allergy review, questionnaires, the insurance answer, screening alerts and help requests.

Pure, like station.gateway.hl7v2 (whose segment builders and strict check it uses). The
choices, with the section of HL7 v2.5.1 each rests on (docs/deploy-practice.md says the same
for integrators):
- point-of-care results are results: OBX in the vitals ORU^R01 (ch. 7, 7.3.1), one
  ORDER_OBSERVATION per test with OBR-4 = the test's LOINC, the urine dipstick pads under
  one OBR-4 24357-6 "Urinalysis macro (dipstick) panel - Urine"; presence answers are CWE
  with SNOMED CT qualifiers, numbers NM with UCUM; OBX-8 (table 0078) A / N for non-numeric
  results, L / H / LL / HH for numbers; an invalid test has no value and OBX-11 = X
  ("results cannot be obtained for this observation", table 0085); OBX-17 says manual;
- the medication list the patient reported is not an order: RXO/RXE/RXD/RXA (ch. 4A) are
  this practice's pharmacy orders, encodings, dispenses and administrations, and a patient's
  home medication is none of them. Each line is an OBX (TX) coded LOINC 10160-0 "History of
  Medication use Narrative" under an OBR of the same code, in the vitals ORU^R01;
- the allergy review is ADT^A60 "update adverse reaction information" (ch. 3, 3.3.60) with
  one IAM segment (3.4.7) per allergy, not AL1 (3.4.6): only IAM carries the clinical
  status (IAM-17, table 0438: C confirmed, E erroneous for "the patient is not allergic",
  U unconfirmed), an action code (IAM-6, table 0323: A for one the patient reported new,
  U for one on the practice's list) and who reviewed it when (IAM-18/20). Allergies left
  unreviewed are not sent (nothing was said about them); "no known allergies" is an IAM
  with SNOMED CT 716186003, as US Core codes it;
- questionnaires go as an ORU^R01 (ch. 7) after the check-in's ADT^A04: one
  ORDER_OBSERVATION per instrument (OBR-4 the instrument, local code), each item an OBX (CWE,
  LOINC item and answer codes as the Questionnaire carries them) and the scored total an OBX
  (NM, e.g. 44261-6 for the PHQ-9) flagged A when the station judged the screen positive
  (PHQ-2 or GAD-2 at or above the follow-up cut-point, STEADI any yes: an instrument's
  cut-point, not a reference range, hence A rather than H); a PHQ-9 or GAD-7 total goes as
  its number for the clinician to grade;
- the insurance answer is an OBX of the ADT^A04 (CWE, HL7 table 0136 Y / N) for the front
  desk;
- a screening alert (PHQ-9 item 9) is its own ORU^R01 at once: the answer flagged AA
  ("very abnormal", table 0078), TQ1-9 priority S (stat, table 0485), the alert's text in an
  NTE; the gateway sends alerts ahead of the chart queue and can route them to their own
  listener (station.gateway.routing);
- a lobby help request names no patient: an ORU^R01 without the optional PATIENT group
  (ORU_R01 in 7.3.1), stat, when the practice routes help requests to a listener at all.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message

from station.gateway.config import GatewayHl7
from station.gateway.hl7v2 import (
    Hl7BuildError,
    Observation,
    Order,
    _msh,
    _oru,
    _pid,
    _pv1,
    _st,
    _tx,
    checked,
    nm,
    ts,
)
from station.models import Mode
from station.poc import ResultKind, poc_test
from station.submission import (
    AllergyVerification,
    MedicationReviewStatus,
    MedicationUse,
    SubmittedAllergy,
    SubmittedMedication,
    SubmittedPocResult,
)
from station.sync.contract import (
    CheckinPayload,
    HelpRequestPayload,
    ScreeningAlertPayload,
    VitalsPayload,
)
from station.validation import Severity

LOCAL = "99ROOMING"  # local (99...) coding system for the station's own concepts
QUESTIONNAIRE_SYSTEM = "99RSQUEST"  # instruments and items without a LOINC code
ANSWER_SYSTEM = "99RSANSWER"  # answers without a LOINC answer code
LOINC_SYSTEM = "http://loinc.org"
YES_NO_SYSTEM = "https://schemas.rooming-station.invalid/CodeSystem/yes-no"
LOINC_CODE = re.compile(r"^\d{1,8}-\d$")

URINE_DIPSTICK_PANEL = ("24357-6", "Urinalysis macro (dipstick) panel - Urine", "LN")
MEDICATION_HISTORY = ("10160-0", "History of Medication use Narrative", "LN")
NO_KNOWN_ALLERGY = ("716186003", "No known allergy (situation)", "SCT")
SCREENING_ALERT = ("SCREENING-ALERT", "Questionnaire answer staff must act on now", LOCAL)
HELP_REQUEST = ("HELP-REQUEST", "Lobby help request", LOCAL)
POC_METHOD = ("MANUAL", "point-of-care test read by the MA")
YES_NO = {True: "Y^Yes^HL70136", False: "N^No^HL70136"}  # HL7 table 0136
SEVERITY = {"mild": "MI^Mild^HL70128", "moderate": "MO^Moderate^HL70128",
            "severe": "SV^Severe^HL70128"}  # HL7 table 0128
CLINICAL_STATUS = {  # HL7 table 0438
    AllergyVerification.CONFIRMED: "C^Confirmed or verified^HL70438",
    AllergyVerification.REFUTED: "E^Erroneous^HL70438",
}
MEDICATION_USE = {MedicationUse.TAKING: "taking", MedicationUse.NOT_TAKING: "not taking",
                  MedicationUse.CHANGED: "taking, changed",
                  MedicationUse.UNREVIEWED: "not reviewed"}
MEDICATION_REVIEW = {
    MedicationReviewStatus.REVIEWED_NO_CHANGES: "medication list reviewed: no changes",
    MedicationReviewStatus.REVIEWED_CHANGES_REPORTED: "medication list reviewed: changes reported",
    MedicationReviewStatus.PATIENT_DECLINED: "the patient declined the medication review",
    MedicationReviewStatus.NOT_REVIEWED: "",
}


def _cwe(code: str, text: str, system: str) -> str:
    """A coded value for OBX-5 (CWE), its text escaped."""
    return f"{code}^{_st(text)}^{system}"


# ------------------------------------------------------------------ point-of-care results


def _poc_observation(poc: SubmittedPocResult) -> Observation:
    result = poc.result
    test = poc_test(result.test)
    notes = []
    code = (test.loinc, test.loinc_display, "LN")
    common: dict[str, Any] = {"code": code, "alternate": None, "observed_at": poc.recorded_at,
                              "method": POC_METHOD}
    if result.kit_lot:
        notes.append(f"kit lot {result.kit_lot}")
    if result.invalid:
        notes.insert(0, "invalid test (no control line): no result")
        return Observation(value_type="", value="", result_status="X",
                           note="; ".join(notes), **common)
    note = "; ".join(notes)
    if test.kind is ResultKind.QUANTITY:
        if result.value is None:
            raise Hl7BuildError(f"point-of-care {test.key} has no value")
        flags: tuple[str, ...] = ()
        if result.flags:
            flag = result.flags[0]
            letter = "L" if flag.code.startswith("hypo") else "H"
            flags = (letter * 2 if flag.severity == Severity.CRITICAL else letter,)
        return Observation(value_type="NM", value=nm(result.value), ucum=test.ucum,
                           flags=flags, note=note, **common)
    step = test.step(result.result)
    if step is None:
        raise Hl7BuildError(f"point-of-care {test.key}: {result.result!r} is no result of "
                            "this test")
    if step.value is not None:
        # A pad read as a number (specific gravity, pH): outside the normal blocks is low or
        # high by where it lies beside them.
        normal = [s.value for s in test.steps if not s.abnormal and s.value is not None]
        flags = ()
        if step.abnormal and normal:
            flags = ("L",) if step.value < min(normal) else ("H",)
        # The block as printed on the chart ("1.000", "6.5"): NM keeps its decimals.
        return Observation(value_type="NM", value=step.code, ucum=test.ucum,
                           flags=flags, note=note, **common)
    judged = ("A",) if step.abnormal else ("N",)
    if step.snomed is not None:
        return Observation(value_type="CWE", value=_cwe(step.snomed[0], step.snomed[1], "SCT"),
                           flags=judged, note=note, **common)
    return Observation(value_type="ST", value=_st(step.label), flags=judged, note=note,
                       **common)


def poc_alert_order(poc: SubmittedPocResult, message: str) -> Order:
    """A critical point-of-care result on the alert channel: one stat order with the result's
    observation, the alert's words in an NTE under the OBR."""
    test = poc_test(poc.result.test)
    return Order((test.loinc, test.loinc_display, "LN"), poc.recorded_at,
                 (_poc_observation(poc),), stat=True, note=message)


def poc_orders(payload: VitalsPayload) -> tuple[Order, ...]:
    """One ORDER_OBSERVATION per test, the dipstick pads together, in the order recorded."""
    orders: list[Order] = []
    dipstick: list[SubmittedPocResult] = []
    for poc in payload.poc_results:
        test = poc_test(poc.result.test)
        if test.group == "urine_dipstick":
            dipstick.append(poc)
            continue
        orders.append(Order((test.loinc, test.loinc_display, "LN"), poc.recorded_at,
                            (_poc_observation(poc),)))
    if dipstick:
        orders.append(Order(URINE_DIPSTICK_PANEL, dipstick[0].recorded_at,
                            tuple(_poc_observation(p) for p in dipstick)))
    return tuple(orders)


# ------------------------------------------------------------------------ medication list


def _medication_line(medication: SubmittedMedication) -> str:
    said = medication.name + (f" {medication.dose}" if medication.dose else "")
    said += f": {MEDICATION_USE[medication.use]}"
    if medication.new_dose:
        said += f", now {medication.new_dose}"
    if medication.note:
        said += f"; {medication.note}"
    if medication.patient_reported_new:
        said += " (reported by the patient today; not on the practice's list)"
    return said


def medication_order(payload: VitalsPayload) -> Order | None:
    """The reviewed medication list as narrative OBX lines (None: nothing was reviewed)."""
    lines = [_medication_line(m) for m in payload.medications]
    if payload.no_medications:
        lines.append("the patient takes no medications")
    review = MEDICATION_REVIEW[payload.medication_review.status]
    if payload.medication_review.note:
        review = "; ".join(x for x in (review, payload.medication_review.note) if x)
    if not lines and not review:
        return None
    observations = tuple(
        Observation(value_type="TX", code=MEDICATION_HISTORY, alternate=None, value=_tx(line),
                    observed_at=payload.completed_at, sub_id=str(number))
        for number, line in enumerate(lines, start=1))
    return Order(MEDICATION_HISTORY, payload.completed_at, observations, note=review)


def vitals_extra_orders(payload: VitalsPayload) -> tuple[Order, ...]:
    """What the vitals ORU^R01 carries after the device data."""
    medications = medication_order(payload)
    return (*poc_orders(payload), *((medications,) if medications is not None else ()))


# ------------------------------------------------------------------------- allergy review


def _iam(iam: Any, set_id: int, allergy: SubmittedAllergy | None, payload: VitalsPayload
         ) -> None:
    iam.iam_1 = str(set_id)
    if allergy is None:  # "no known allergies"
        iam.iam_3 = _cwe(*NO_KNOWN_ALLERGY)
        iam.iam_6 = "A^Add/Insert^HL70323"
        iam.iam_17 = CLINICAL_STATUS[AllergyVerification.CONFIRMED]
    else:
        # Free text: CE.1 (a code) stays empty, the substance is CE.2 (text).
        iam.iam_3 = f"^{_st(allergy.substance)}"
        if allergy.severity is not None:
            iam.iam_4 = SEVERITY[allergy.severity]
        if allergy.reaction:
            iam.iam_5 = _st(allergy.reaction)
        iam.iam_6 = ("A^Add/Insert^HL70323" if allergy.patient_reported_new
                     else "U^Update^HL70323")
        iam.iam_17 = CLINICAL_STATUS[allergy.verification]
        if allergy.patient_reported_new:
            iam.iam_15 = "SEL^Self^HL70063"  # reported by the patient
    iam.iam_13.ts_1 = ts(payload.completed_at)
    iam.iam_18.xcn_1 = payload.ma_id
    iam.iam_20.ts_1 = ts(payload.completed_at)


def adt_a60(payload: VitalsPayload, hl7: GatewayHl7, *, sent_at: datetime, part: int
            ) -> str | None:
    """The ADT^A60 with one IAM per reviewed allergy (None: no allergy was reviewed)."""
    reviewed = [a for a in payload.allergies if a.verification != AllergyVerification.UNREVIEWED]
    if not reviewed and not payload.no_known_allergies:
        return None
    message = Message("ADT_A60", version="2.5.1", validation_level=VALIDATION_LEVEL.TOLERANT)
    test_data = any(item.reading.mode != Mode.REAL for item in payload.readings)
    _msh(message, hl7, kind=("ADT", "A60", "ADT_A60"), sent_at=sent_at,
         message_id=payload.message_id, test_data=test_data, part=part)
    evn = message.evn
    evn.evn_1 = "A60"
    evn.evn_2.ts_1 = ts(payload.completed_at)
    evn.evn_5.xcn_1 = payload.ma_id  # operator: the MA who reviewed them
    _pid(message.pid, payload.patient, hl7, payload.appointment_id)
    _pv1(message.pv1, payload.appointment_id)
    entries: list[SubmittedAllergy | None] = list(reviewed)
    if payload.no_known_allergies:
        entries.append(None)
    for set_id, allergy in enumerate(entries, start=1):
        _iam(message.add_segment("IAM"), set_id, allergy, payload)
    return checked(message.to_er7())


# ------------------------------------------------------------------ check-in: intake data


def _answer(coding: Any) -> str:
    system, code = str(coding.get("system", "")), str(coding.get("code", ""))
    display = str(coding.get("display", ""))
    if system == YES_NO_SYSTEM and code in ("yes", "no"):
        return YES_NO[code == "yes"]
    if system == LOINC_SYSTEM:
        return _cwe(code, display, "LN")
    return _cwe(code, display, ANSWER_SYSTEM)


def _full_url(message_id: UUID, name: str) -> str:
    # As station.sync.fhir.screening_bundle names its entries.
    return f"urn:uuid:{uuid5(message_id, name)}"


def screening_orders(payload: CheckinPayload) -> tuple[Order, ...]:
    """One ORDER_OBSERVATION per instrument answered: its items, then its total."""
    bundle: dict[str, Any] = payload.fhir_bundle or {}
    entries = {str(e.get("fullUrl")): e.get("resource", {})
               for e in bundle.get("entry", []) if isinstance(e, dict)}
    orders: list[Order] = []
    for summary in payload.screenings:
        response = entries.get(_full_url(payload.message_id, f"screening/{summary.instrument}"))
        if response is None:
            raise Hl7BuildError(f"the check-in's FHIR Bundle has no QuestionnaireResponse for "
                                f"{summary.instrument}")
        observations: list[Observation] = []
        for item in response.get("item", []):
            link = str(item.get("linkId", ""))
            code = (link, "", "LN" if LOINC_CODE.match(link) else QUESTIONNAIRE_SYSTEM)
            for answer in item.get("answer", []):
                coding = answer.get("valueCoding")
                if coding is None:
                    raise Hl7BuildError(f"{summary.instrument} item {link}: the answer is "
                                        "not coded (expected valueCoding)")
                observations.append(Observation(
                    value_type="CWE", code=code, alternate=None, value=_answer(coding),
                    observed_at=payload.checked_in_at))
        score = entries.get(_full_url(payload.message_id,
                                      f"screening/{summary.instrument}/score"))
        if summary.score is not None and summary.score_loinc is not None:
            display = ""
            if score is not None:
                display = next((str(c.get("display", "")) for c in
                                score.get("code", {}).get("coding", [])
                                if c.get("code") == summary.score_loinc), "")
            observations.append(Observation(
                value_type="NM", code=(summary.score_loinc, display, "LN"), alternate=None,
                value=nm(summary.score), ucum="{score}", flags=("A",) if summary.positive else (),
                observed_at=payload.checked_in_at))
        note = f"{summary.title}: positive screen" if summary.positive else ""
        orders.append(Order((summary.instrument, summary.title, QUESTIONNAIRE_SYSTEM),
                            payload.checked_in_at, tuple(observations), note=note))
    return tuple(orders)


def screening_oru(payload: CheckinPayload, hl7: GatewayHl7, *, sent_at: datetime, part: int
                  ) -> str | None:
    """The questionnaires of a check-in as an ORU^R01 (None: none answered)."""
    orders = screening_orders(payload)
    if not orders:
        return None
    return _oru(hl7, message_id=payload.message_id, sent_at=sent_at, patient=payload.patient,
                appointment_id=payload.appointment_id, orders=list(orders), test_data=False,
                device_profile=False, part=part)


# ------------------------------------------------------------------------ alerts and help


def screening_alert_oru(payload: ScreeningAlertPayload, hl7: GatewayHl7, *,
                        sent_at: datetime) -> str:
    """The answer staff must act on now, flagged AA, stat, with the alert's text."""
    item = (payload.item_loinc, "", "LN") if payload.item_loinc else (
        payload.instrument, "", QUESTIONNAIRE_SYSTEM)
    system = "LN" if payload.answer_code.startswith("LA") else ANSWER_SYSTEM
    answer = Observation(value_type="CWE", code=item, alternate=None,
                         value=_cwe(payload.answer_code, payload.answer_display, system),
                         flags=("AA",), observed_at=payload.raised_at)
    order = Order(SCREENING_ALERT, payload.raised_at, (answer,), stat=True,
                  note=payload.message)
    return _oru(hl7, message_id=payload.message_id, sent_at=sent_at, patient=payload.patient,
                appointment_id=payload.appointment_id, orders=[order], test_data=False,
                device_profile=False)


def help_request_oru(payload: HelpRequestPayload, hl7: GatewayHl7, *, sent_at: datetime
                     ) -> str:
    """A lobby help request: no patient (the kiosk does not know who asked), stat."""
    text = (f"someone at the lobby kiosk {payload.station_id} ({payload.site}) asked for help "
            f"at the '{payload.screen}' step; language {payload.language}")
    said = Observation(value_type="TX", code=HELP_REQUEST, alternate=None, value=_tx(text),
                       observed_at=payload.requested_at)
    order = Order(HELP_REQUEST, payload.requested_at, (said,), stat=True)
    return _oru(hl7, message_id=payload.message_id, sent_at=sent_at, patient=None,
                appointment_id="", orders=[order], test_data=False, device_profile=False)
