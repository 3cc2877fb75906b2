"""The HL7 v2.5.1 the gateway builds, held to outside sources and to hl7apy's STRICT validation.

Sources for the expected values (none is the code's own output):
- IEEE 11073-10101 term codes as signove/antidote lists them (src/specializations/
  blood_pressure_monitor.h: MDC_PRESS_BLD_NONINV_SYS 18949, _DIA 18950, _MEAN 18951,
  MDC_PULS_RATE_NON_INV 18474; pulse_oximeter.h: MDC_PULS_OXIM_SAT_O2 19384,
  MDC_PULS_OXIM_PULS_RATE 18458, MDC_DIM_BEAT_PER_MIN 2720; weighing_scale.h:
  MDC_LEN_BODY_ACTUAL 57668, MDC_RATIO_MASS_BODY_LEN_SQ 57680). A 32-bit MDC code is
  partition << 16 | term, partition 2 = MDC_PART_SCADA, 4 = MDC_PART_DIM (IEEE 11073-10101
  clause "code structure"; 150021 for NIBP systolic is the code IHE PCD-01 examples carry).
- LOINC codes of the US Core vital signs (8480-6, 8462-4, 8867-4, 59408-5, 8310-5, 29463-7,
  8302-2, 39156-5, 9279-1), 8661-1 chief complaint, 29299-5 reason for visit (loinc.org).
- HL7 v2.5.1 ch. 2: escape sequences \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ (2.7.4); MSH-10 is ST(20);
  table 0078 abnormal flags (HH = above upper panic limit); ch. 3: ADT^A04 uses the ADT_A01
  message structure; ch. 7: ORU^R01 structure ORU_R01.
- IHE PCD TF-2 (PCD-01): MSH-21 IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO and OBR-4
  182777000^monitoring of patient^SNOMED-CT.
- AHA/ACC 2017: systolic >= 180 is a hypertensive crisis (the station flags it critical).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from station.gateway.config import GatewayHl7
from station.gateway.hl7v2 import AckError, adt_a04, oru_r01, parse_ack
from station.sync import payloads
from station.sync.contract import CheckinPayload, ContactUpdate
from tests.sync.samples import AT, PATIENT, submission

MID = uuid.UUID("3f6c8a2e-9b1d-4c7e-a5f0-1d2e3f405162")
SENT = datetime(2026, 3, 2, 15, 10, 0, tzinfo=UTC)


def mdc(partition: int, term: int) -> str:
    return str((partition << 16) | term)


def strict(er7: str) -> object:
    message = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
    message.validate()
    return message


def segments(er7: str, name: str) -> list[list[str]]:
    return [seg.split("|") for seg in er7.split("\r") if seg.startswith(name + "|")]


def vitals_oru(**changes: object) -> str:
    sub = submission(systolic=185.0)
    if changes:
        sub = sub.model_copy(update=changes)
    payload = payloads.vitals(sub, message_id=MID, site="clinic-north", station_id="exam-3",
                              sent_at=AT)
    return oru_r01(payload, GatewayHl7(), sent_at=SENT)


def test_every_measured_value_is_one_obx_with_loinc_mdc_ucum_and_the_abnormal_flag() -> None:
    er7 = vitals_oru()
    strict(er7)
    rows = [(s[3], s[5], s[6], s[8]) for s in segments(er7, "OBX") if s[2] == "NM"]
    scada, dim = 2, 4
    mmhg = f"mm[Hg]^mm[Hg]^UCUM^{mdc(dim, 3872)}^MDC_DIM_MMHG^MDC"
    bpm = f"/min^/min^UCUM^{mdc(dim, 2720)}^MDC_DIM_BEAT_PER_MIN^MDC"
    assert rows == [
        (f"8480-6^Systolic blood pressure^LN^{mdc(scada, 18949)}^MDC_PRESS_BLD_NONINV_SYS^MDC",
         "185", mmhg, "HH"),
        (f"8462-4^Diastolic blood pressure^LN^{mdc(scada, 18950)}^MDC_PRESS_BLD_NONINV_DIA^MDC",
         "82", mmhg, ""),
        (f"8478-0^Mean blood pressure^LN^{mdc(scada, 18951)}^MDC_PRESS_BLD_NONINV_MEAN^MDC",
         "97", mmhg, ""),
        (f"8867-4^Heart rate^LN^{mdc(scada, 18474)}^MDC_PULS_RATE_NON_INV^MDC", "64", bpm, ""),
        (f"59408-5^Oxygen saturation by pulse oximetry^LN^{mdc(scada, 19384)}"
         "^MDC_PULS_OXIM_SAT_O2^MDC", "97", f"%^%^UCUM^{mdc(dim, 544)}^MDC_DIM_PERCENT^MDC", ""),
        (f"8867-4^Heart rate^LN^{mdc(scada, 18458)}^MDC_PULS_OXIM_PULS_RATE^MDC", "66", bpm, ""),
        (f"8310-5^Body temperature^LN^{mdc(scada, 57352)}^MDC_TEMP_ORAL^MDC", "36.8",
         f"Cel^Cel^UCUM^{mdc(dim, 6048)}^MDC_DIM_DEGC^MDC", ""),
        (f"29463-7^Body weight^LN^{mdc(scada, 57664)}^MDC_MASS_BODY_ACTUAL^MDC", "81.2",
         f"kg^kg^UCUM^{mdc(dim, 1731)}^MDC_DIM_KILO_G^MDC", ""),
        (f"8302-2^Body height^LN^{mdc(scada, 57668)}^MDC_LEN_BODY_ACTUAL^MDC", "178",
         f"cm^cm^UCUM^{mdc(dim, 1297)}^MDC_DIM_CENTI_M^MDC", ""),
        (f"39156-5^Body mass index (BMI) [Ratio]^LN^{mdc(scada, 57680)}"
         "^MDC_RATIO_MASS_BODY_LEN_SQ^MDC", "25.6",
         f"kg/m2^kg/m2^UCUM^{mdc(dim, 1952)}^MDC_DIM_KG_PER_M_SQ^MDC", ""),
        (f"9279-1^Respiratory rate^LN^{mdc(scada, 20490)}^MDC_RESP_RATE^MDC", "16",
         f"/min^/min^UCUM^{mdc(dim, 2784)}^MDC_DIM_RESP_PER_MIN^MDC", ""),
        ("72514-3^Pain severity - 0-10 verbal numeric rating [Score] - Reported^LN", "3",
         "{score}^{score}^UCUM", ""),
    ]
    # The codes IHE PCD-01 examples carry for NIBP systolic and mmHg.
    assert rows[0][0].split("^")[3] == "150021"
    assert rows[0][2].split("^")[3] == "266016"


def test_header_patient_visit_order_and_traceability() -> None:
    er7 = vitals_oru()
    msh = er7.split("\r")[0].split("|")
    # MSH-9, MSH-10 (ST 20: the message id's first 20 hex digits), MSH-11, MSH-12, MSH-21.
    assert msh[8] == "ORU^R01^ORU_R01"
    assert msh[9] == "3f6c8a2e9b1d4c7ea5f0"
    assert (msh[10], msh[11]) == ("P", "2.5.1")
    assert msh[20] == "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"
    assert msh[6] == "20260302151000+0000"
    pid = segments(er7, "PID")[0]
    assert (pid[3], pid[5], pid[7]) == ("TEST100001^^^EHR^MR", "ZZTEST^Alpha", "19700102")
    pv1 = segments(er7, "PV1")[0]
    assert (pv1[2], pv1[19]) == ("O", "APT-0001")
    obr = segments(er7, "OBR")[0]
    assert obr[3] == f"{MID}^ROOMING"  # the whole message_id, for tracing back to the station
    assert obr[4] == "182777000^monitoring of patient^SCT"
    obx = segments(er7, "OBX")[0]
    # OBX-11 final, OBX-14 measured at (UTC here), OBX-17 device + codec, OBX-18 equipment.
    assert (obx[11], obx[14], obx[17], obx[18]) == (
        "F", "20260302150405+0000", "DEVICE^ble:2a35 1^99RSMETHOD", "exam-3/cuff^ROOMING")
    texts = [(s[3], s[5]) for s in segments(er7, "OBX") if s[2] == "TX"]
    assert texts == [("8661-1^Chief complaint - Reported^LN", "cough for a week"),
                     ("29299-5^Reason for visit Narrative^LN", "follow-up")]


def test_delimiters_in_free_text_are_escaped_not_structure() -> None:
    er7 = vitals_oru(chief_complaint="pain | left arm ^ & back ~ \\ now")
    strict(er7)
    texts = [s[5] for s in segments(er7, "OBX") if s[3].startswith("8661-1")]
    assert texts == ["pain \\F\\ left arm \\S\\ \\T\\ back \\R\\ \\E\\ now"]


def test_a_test_data_reading_goes_as_training_not_production() -> None:
    sub = submission()
    demo = tuple(item.model_copy(update={"reading": item.reading.model_copy(
        update={"mode": "demo"})}) for item in sub.readings)
    er7 = vitals_oru(readings=demo)
    # HL7 table 0103: T = training. A production EHR does not file it as a patient's.
    assert er7.split("\r")[0].split("|")[10] == "T"


def test_checkin_is_adt_a04_with_the_reason_and_the_contact_update_for_staff() -> None:
    payload = CheckinPayload(
        message_id=MID, station_id="lobby-1", site="clinic-north", sent_at=AT,
        appointment_id="APT-0001", patient=PATIENT, contact_details_confirmed=False,
        contact_update_requested=True, contact_update=ContactUpdate(phone="555-0100"),
        reason_for_visit="dolor de garganta", language="es", checked_in_at=AT)
    er7 = adt_a04(payload, GatewayHl7(), sent_at=SENT)
    strict(er7)
    names = [seg.split("|")[0] for seg in er7.split("\r") if seg]
    assert names == ["MSH", "EVN", "PID", "PV1", "OBX", "OBX"]
    assert er7.split("\r")[0].split("|")[8] == "ADT^A04^ADT_A01"
    assert segments(er7, "EVN")[0][1:3] == ["A04", "20260302150405+0000"]
    obx = segments(er7, "OBX")
    assert (obx[0][3], obx[0][5]) == ("29299-5^Reason for visit Narrative^LN",
                                      "dolor de garganta")
    assert obx[1][5] == "confirm with the patient before changing the record: phone: 555-0100"
    # Never written into PID-13 (phone): staff confirm it with the patient first.
    assert len(segments(er7, "PID")[0]) <= 8


# An ACK as node-hl7-server 2.5.0 built it (tests/conformance/mllp/server.cjs, --reject-mrn).
NODE_HL7_SERVER_AR = (
    "MSH|^~\\&|EHR|PRACTICE|ROOMING|CLINIC|20261124175953||ACK^R01^ACK_R01|ACK|P|2.5.1\r"
    "MSA|AR|1544f704daa345688452|Unknown \\F\\ patient\r"
    "ERR|||204^Unknown key identifier^HL70357|E||||Unknown \\F\\ patient"
)


def test_an_ack_gives_its_code_the_control_id_and_the_ehr_text() -> None:
    ack = parse_ack(NODE_HL7_SERVER_AR)
    assert (ack.code, ack.control_id, ack.text, ack.accepted) == (
        "AR", "1544f704daa345688452", "Unknown | patient", False)
    accepted = parse_ack("MSH|^~\\&|EHR|PRACTICE|ROOMING|CLINIC|20260302||ACK^R01^ACK|ACK|P|"
                         "2.5.1\rMSA|AA|1544f704daa345688452")
    assert (accepted.code, accepted.text, accepted.accepted) == ("AA", "", True)


@pytest.mark.parametrize("reply", ["", "hello", "MSH|^~\\&|EHR||||||ACK|1|P|2.5.1",
                                   "MSH|^~\\&|EHR||||||ACK|1|P|2.5.1\rMSA|XX|1"])
def test_a_reply_that_is_no_ack_is_an_ack_error_never_a_success(reply: str) -> None:
    with pytest.raises(AckError):
        parse_ack(reply)


def test_a_critical_alert_is_an_oru_with_the_flagged_value_and_the_alert_text() -> None:
    from station.gateway.hl7v2 import oru_r01_alert

    sub = submission(systolic=185.0)
    (alert,) = payloads.alerts(sub, message_ids=[MID], site="clinic-north", station_id="exam-3",
                               sent_at=AT)
    er7 = oru_r01_alert(alert, GatewayHl7(), sent_at=SENT)
    strict(er7)
    rows = [(s[3].split("^")[0], s[5], s[8]) for s in segments(er7, "OBX")]
    # AHA/ACC 2017: systolic >= 180 is the crisis; diastolic 82 is not what fired.
    assert rows == [("8480-6", "185", "HH"), ("8462-4", "82", ""), ("8478-0", "97", ""),
                    ("8867-4", "64", "")]
    notes = segments(er7, "NTE")
    assert len(notes) == 1
    assert notes[0][3] == alert.message.replace("|", "\\F\\")
