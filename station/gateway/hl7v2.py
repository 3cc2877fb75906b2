"""Station messages as HL7 v2.5.1 (IHE PCD-01 ORU^R01, ADT^A04), built and checked with hl7apy.

Pure: payload models and a timestamp in, ER7 text out; the ACK the EHR returns, parsed. Every
message is built with hl7apy's element tree (free text escaped by hl7apy's own ST/TX types,
never concatenated by hand) and parsed back with hl7apy's STRICT validation of the v2.5.1
structures before it may leave.

Choices (docs/deploy-practice.md says the same for integrators):
- one ORU^R01 per `vitals` message, one OBR (OBR-3 = the station's message_id, so a resend is
  recognisable), one OBX per measured value: OBX-3 LOINC first with the IEEE 11073-10101 MDC
  code as the alternate where one is defined, OBX-6 UCUM with the MDC unit as the alternate,
  OBX-8 the abnormal flags the station's validation gave (H/L/HH/LL/A/AA, HL7 table 0078),
  OBX-14 when it was measured, OBX-17 device or manual with the codec, OBX-18 the device;
  the chief complaint (8661-1) and reason for visit (29299-5) as TX observations;
- MSH-10 (message control id, 20 characters in v2.5.1) is the message_id's first 20 hex
  digits: the same message sent again carries the same control id, so an EHR that drops
  duplicate control ids files it once;
- a lobby check-in is ADT^A04 (register an outpatient: the patient has arrived); the reason
  they typed is an OBX, contact details they asked to change are an OBX for staff, never PID;
- a critical-value `alert` is an ORU^R01 with that reading alone, flagged, an NTE with the
  alert's message and TQ1-9 priority S (stat);
- the rest of intake (point-of-care results, the medication list, allergies, questionnaires,
  the insurance answer, screening alerts, help requests): station.gateway.hl7v2_intake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid5

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.exceptions import HL7apyException
from hl7apy.factories import datatype_factory
from hl7apy.parser import parse_message

from station.gateway.config import GatewayHl7
from station.models import Kind, Method, Mode, TemperatureSite
from station.submission import PatientIdentifiers, SubmittedReading
from station.sync.contract import AlertPayload, CheckinPayload, VitalsPayload
from station.units import Unit
from station.validation import CLINICAL_RULES, Severity
from station.vitals import vital_field

VERSION = "2.5.1"
# IHE PCD TF-2: MSH-21 of a PCD-01 message names the profile by this OID.
PCD_01_PROFILE = ("IHE_PCD_001", "IHE PCD", "1.3.6.1.4.1.19376.1.6.1.1.1", "ISO")
# IHE PCD TF-2 OBR-4 for device data not ordered by anyone: SNOMED CT "monitoring of patient".
PCD_OBR_4 = ("182777000", "monitoring of patient", "SCT")
METHOD_SYSTEM = "99RSMETHOD"  # local (99...) coding system for OBX-17 device / manual
CONTACT_UPDATE_CODE = ("CONTACT-UPDATE", "Contact details update requested", "99ROOMING")
INSURANCE_CHANGED = ("INSURANCE-CHANGED", "Insurance changed since the last visit", "99ROOMING")
CHIEF_COMPLAINT = ("8661-1", "Chief complaint - Reported")
REASON_FOR_VISIT = ("29299-5", "Reason for visit Narrative")


class Hl7BuildError(ValueError):
    """A message that would not pass strict v2.5.1 validation: never sent, the text says why."""


# ------------------------------------------------------------- IEEE 11073-10101 nomenclature

# 32-bit MDC codes = partition << 16 | term code. Partition 2 is SCADA (measurements),
# partition 4 is DIM (units). Term codes as IEEE 11073-10101 lists them.
_SCADA, _DIM = 2 << 16, 4 << 16


def _mdc(term: int, refid: str, partition: int = _SCADA) -> tuple[str, str]:
    return str(partition | term), refid


# (kind of reading, LOINC) -> the MDC measurement. Pulse rate depends on the device measuring
# it (NIBP cuff vs oximeter); pain and head circumference have no MDC term.
MDC_MEASUREMENT: dict[tuple[Kind, str], tuple[str, str]] = {
    (Kind.BLOOD_PRESSURE, "8480-6"): _mdc(18949, "MDC_PRESS_BLD_NONINV_SYS"),
    (Kind.BLOOD_PRESSURE, "8462-4"): _mdc(18950, "MDC_PRESS_BLD_NONINV_DIA"),
    (Kind.BLOOD_PRESSURE, "8478-0"): _mdc(18951, "MDC_PRESS_BLD_NONINV_MEAN"),
    (Kind.BLOOD_PRESSURE, "8867-4"): _mdc(18474, "MDC_PULS_RATE_NON_INV"),
    (Kind.PULSE_OXIMETRY, "59408-5"): _mdc(19384, "MDC_PULS_OXIM_SAT_O2"),
    (Kind.PULSE_OXIMETRY, "8867-4"): _mdc(18458, "MDC_PULS_OXIM_PULS_RATE"),
    (Kind.BODY_WEIGHT, "29463-7"): _mdc(57664, "MDC_MASS_BODY_ACTUAL"),
    (Kind.BODY_WEIGHT, "8302-2"): _mdc(57668, "MDC_LEN_BODY_ACTUAL"),
    (Kind.BODY_WEIGHT, "39156-5"): _mdc(57680, "MDC_RATIO_MASS_BODY_LEN_SQ"),
    (Kind.BODY_HEIGHT, "8302-2"): _mdc(57668, "MDC_LEN_BODY_ACTUAL"),
    (Kind.RESPIRATORY_RATE, "9279-1"): _mdc(20490, "MDC_RESP_RATE"),
}
# Body temperature by site; a thermometer that names no site reports MDC_TEMP_BODY.
MDC_TEMPERATURE: dict[TemperatureSite | None, tuple[str, str]] = {
    None: _mdc(19292, "MDC_TEMP_BODY"),
    TemperatureSite.BODY: _mdc(19292, "MDC_TEMP_BODY"),
    TemperatureSite.TYMPANUM: _mdc(19320, "MDC_TEMP_TYMP"),
    TemperatureSite.RECTUM: _mdc(57348, "MDC_TEMP_RECT"),
    TemperatureSite.MOUTH: _mdc(57352, "MDC_TEMP_ORAL"),
    TemperatureSite.EAR: _mdc(57356, "MDC_TEMP_EAR"),
    TemperatureSite.FINGER: _mdc(57360, "MDC_TEMP_FINGER"),
    TemperatureSite.TOE: _mdc(57376, "MDC_TEMP_TOE"),
    TemperatureSite.ARMPIT: _mdc(57380, "MDC_TEMP_AXILLA"),
    TemperatureSite.GI_TRACT: _mdc(57384, "MDC_TEMP_GIT"),
}
MDC_UNIT: dict[str, tuple[str, str]] = {
    Unit.MMHG.value: _mdc(3872, "MDC_DIM_MMHG", _DIM),
    Unit.PER_MIN.value: _mdc(2720, "MDC_DIM_BEAT_PER_MIN", _DIM),
    Unit.PERCENT.value: _mdc(544, "MDC_DIM_PERCENT", _DIM),
    Unit.CELSIUS.value: _mdc(6048, "MDC_DIM_DEGC", _DIM),
    Unit.KG.value: _mdc(1731, "MDC_DIM_KILO_G", _DIM),
    Unit.CM.value: _mdc(1297, "MDC_DIM_CENTI_M", _DIM),
    Unit.KG_M2.value: _mdc(1952, "MDC_DIM_KG_PER_M_SQ", _DIM),
}
# Respiratory rate's unit is /min like a pulse, but MDC counts breaths, not beats.
MDC_RESP_PER_MIN = _mdc(2784, "MDC_DIM_RESP_PER_MIN", _DIM)


def mdc_measurement(kind: Kind, loinc: str, site: TemperatureSite | None) -> tuple[str, str] | None:
    if kind == Kind.TEMPERATURE:
        return MDC_TEMPERATURE.get(site, MDC_TEMPERATURE[None])
    return MDC_MEASUREMENT.get((kind, loinc))


def mdc_unit(kind: Kind, ucum: str) -> tuple[str, str] | None:
    if kind == Kind.RESPIRATORY_RATE:
        return MDC_RESP_PER_MIN
    return MDC_UNIT.get(ucum)


# ------------------------------------------------------------------------ value formatting


def ts(moment: datetime) -> str:
    """HL7 v2 TS (DTM) with the offset: 2026-03-02T09:02:00-06:00 -> 20260302090200-0600."""
    if moment.tzinfo is None:
        raise Hl7BuildError(f"a time without an offset cannot be sent: {moment.isoformat()}")
    return moment.strftime("%Y%m%d%H%M%S%z")


def dt(day: date) -> str:
    return day.strftime("%Y%m%d")


def nm(value: float) -> str:
    """An NM value as the device gave it: 128.0 -> "128", 36.8 -> "36.8" (never rounded)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def control_id(message_id: UUID, part: int = 0) -> str:
    """MSH-10: 20 characters in v2.5.1; the same station message always gets the same one.

    A station message that becomes several HL7 messages (vitals with an allergy review: the
    ORU^R01 and the ADT^A60) numbers them: part 0 is the message_id's first 20 hex digits,
    part n a name-based UUID of (message_id, n), so each has its own stable control id.
    """
    source = message_id if part == 0 else uuid5(message_id, f"hl7/part/{part}")
    return source.hex[:20]


def _st(text: str) -> str:
    """Free text escaped by hl7apy's ST type (| ^ & ~ \\ become \\F\\ \\S\\ \\T\\ \\R\\ \\E\\)."""
    return str(datatype_factory("ST", text, version=VERSION,
                                validation_level=VALIDATION_LEVEL.TOLERANT).to_er7())


def _tx(text: str) -> str:
    return str(datatype_factory("TX", text, version=VERSION,
                                validation_level=VALIDATION_LEVEL.TOLERANT).to_er7())


# ------------------------------------------------------------------------------- segments


def _msh(message: Message, hl7: GatewayHl7, *, kind: tuple[str, str, str], sent_at: datetime,
         message_id: UUID, test_data: bool, part: int = 0) -> None:
    msh = message.msh
    msh.msh_3.hd_1 = hl7.sending_application
    msh.msh_4.hd_1 = hl7.sending_facility
    msh.msh_5.hd_1 = hl7.receiving_application
    msh.msh_6.hd_1 = hl7.receiving_facility
    msh.msh_7.ts_1 = ts(sent_at)
    msh.msh_9.msg_1, msh.msh_9.msg_2, msh.msh_9.msg_3 = kind
    msh.msh_10 = control_id(message_id, part)
    # Simulated devices' readings go as training data (HL7 table 0103 "T"), never production.
    msh.msh_11.pt_1 = "T" if test_data else hl7.processing_id
    msh.msh_12.vid_1 = VERSION
    # Original acknowledgment mode: an ACK per message, which is what the gateway waits for.
    msh.msh_15 = "AL"
    msh.msh_16 = "NE"
    msh.msh_18 = "UNICODE UTF-8"


# Assigning authority of the station's own visit id for a patient the MA entered by hand
# without the MRN (identification "manual"): the EHR matches PID-5 + PID-7 to the chart.
MANUAL_ENTRY_AUTHORITY = "ROOMING-MANUAL"


def _pid(pid: Any, patient: PatientIdentifiers, hl7: GatewayHl7, visit_id: str = "") -> None:
    pid.pid_1 = "1"
    if patient.mrn is None:
        # No chart number typed: PID-3 is required, so it carries the station's visit id as
        # a patient external identifier (HL7 table 0203 "PT"), never as an MRN.
        pid.pid_3.cx_1 = visit_id
        pid.pid_3.cx_4.hd_1 = MANUAL_ENTRY_AUTHORITY
        pid.pid_3.cx_5 = "PT"
    else:
        pid.pid_3.cx_1 = patient.mrn
        pid.pid_3.cx_4.hd_1 = hl7.mrn_authority
        pid.pid_3.cx_5 = "MR"
    pid.pid_5.xpn_1.fn_1 = _st(patient.family_name)
    pid.pid_5.xpn_2 = _st(patient.given_name)
    pid.pid_7.ts_1 = dt(patient.birth_date)


def _pv1(pv1: Any, appointment_id: str) -> None:
    pv1.pv1_1 = "1"
    pv1.pv1_2 = "O"  # outpatient (HL7 table 0004)
    pv1.pv1_19.cx_1 = appointment_id  # visit number: the appointment the EHR links to


@dataclass(frozen=True)
class Observation:
    """One OBX worth of data, before it becomes a segment."""

    value_type: str  # NM, TX, ST or CWE
    code: tuple[str, str, str]  # identifier, text, coding system
    alternate: tuple[str, str] | None  # MDC code + reference id
    value: str  # already escaped ER7
    ucum: str = ""
    mdc_unit: tuple[str, str] | None = None
    flags: tuple[str, ...] = ()
    observed_at: datetime | None = None
    method: tuple[str, str] | None = None  # (DEVICE|MANUAL, codec and version)
    equipment: str = ""
    sub_id: str = ""
    note: str = ""
    reference_range: str = ""  # OBX-7, as the source states it ("1.005-1.030")
    result_status: str = "F"  # OBX-11 (HL7 table 0085): F final, X no result could be obtained


def _obx(group: Any, set_id: int, obs: Observation, hl7: GatewayHl7) -> None:
    obx = group.obx
    obx.obx_1 = str(set_id)
    if obs.value_type:  # empty only for a result that could not be obtained (OBX-11 X)
        obx.obx_2 = obs.value_type
    obx.obx_3.ce_1, obx.obx_3.ce_2, obx.obx_3.ce_3 = (
        obs.code[0], _st(obs.code[1]), obs.code[2])
    if obs.alternate is not None:
        obx.obx_3.ce_4, obx.obx_3.ce_5 = obs.alternate
        obx.obx_3.ce_6 = "MDC"
    if obs.sub_id:
        obx.obx_4 = obs.sub_id
    if obs.value:
        obx.obx_5 = obs.value
    if obs.ucum:
        obx.obx_6.ce_1, obx.obx_6.ce_2, obx.obx_6.ce_3 = obs.ucum, obs.ucum, "UCUM"
        if obs.mdc_unit is not None:
            obx.obx_6.ce_4, obx.obx_6.ce_5 = obs.mdc_unit
            obx.obx_6.ce_6 = "MDC"
    if obs.reference_range:
        obx.obx_7 = _st(obs.reference_range)
    for index, flag in enumerate(obs.flags):
        if index == 0:
            obx.obx_8 = flag
        else:
            obx.add_field("OBX_8").value = flag
    obx.obx_11 = obs.result_status
    if obs.observed_at is not None:
        obx.obx_14.ts_1 = ts(obs.observed_at)
    if obs.method is not None:
        obx.obx_17.ce_1 = obs.method[0]
        obx.obx_17.ce_2 = _st(obs.method[1])
        obx.obx_17.ce_3 = METHOD_SYSTEM
    if obs.equipment:
        obx.obx_18.ei_1 = _st(obs.equipment)
        obx.obx_18.ei_2 = hl7.sending_application
    if obs.note:
        note = group.add_segment("NTE")
        note.nte_1 = "1"
        note.nte_3 = _st(obs.note)


# ------------------------------------------------------------------- vitals -> observations


def _loinc(concept: Any) -> tuple[str, str]:
    for coding in concept.get("coding", []):
        if coding.get("system") == "http://loinc.org":
            return str(coding["code"]), str(coding.get("display", ""))
    raise Hl7BuildError("an Observation in the FHIR Bundle has no LOINC coding")


def _flags(holder: Any) -> tuple[str, ...]:
    # v3 ObservationInterpretation H/L/HH/LL/A/AA are the same codes as HL7 v2 table 0078.
    codes: list[str] = []
    for concept in holder.get("interpretation", []):
        for coding in concept.get("coding", []):
            code = str(coding.get("code", ""))
            if code and code not in codes:
                codes.append(code)
    return tuple(codes)


def _reading_context(item: SubmittedReading, station_id: str) -> dict[str, Any]:
    reading = item.reading
    method = ("DEVICE" if reading.method == Method.DEVICE else "MANUAL",
              f"{reading.codec} {reading.codec_version}")
    return {
        "method": method,
        "equipment": f"{station_id}/{item.device_id}" if item.device_id else "",
    }


def _entry_url(message_id: UUID, index: int, part: int) -> str:
    return f"urn:uuid:{uuid5(message_id, f'reading/{index}/{part}')}"


def vitals_observations(payload: VitalsPayload) -> list[Observation]:
    """One Observation per measured value, in the order of the readings and of the Bundle.

    The values, times and abnormal flags are the FHIR Bundle's (the station built and checked
    it, with the patient's age for the clinical limits); the reading adds its kind (for the
    MDC code), device, codec and method. The Bundle's entries are found by their fullUrl,
    which the station derives from the message_id (station.sync.fhir: uuid5 "reading/i/part").
    """
    bundle: dict[str, Any] = payload.fhir_bundle
    entries: dict[str, Any] = {str(e.get("fullUrl")): e.get("resource", {})
                               for e in bundle.get("entry", []) if isinstance(e, dict)}
    out: list[Observation] = []
    for index, item in enumerate(payload.readings):
        context = _reading_context(item, payload.station_id)
        site = getattr(item.reading, "site", None)
        part = 0
        while (resource := entries.get(_entry_url(payload.message_id, index, part))) is not None:
            observed_at = datetime.fromisoformat(str(resource["effectiveDateTime"]))
            holders = resource.get("component") or [resource]
            for number, holder in enumerate(holders, start=1):
                quantity = holder.get("valueQuantity")
                if quantity is None:  # the device said "not available": nothing to file
                    continue
                loinc, display = _loinc(holder["code"])
                ucum = str(quantity["code"])
                out.append(Observation(
                    value_type="NM",
                    code=(loinc, display, "LN"),
                    alternate=mdc_measurement(item.reading.kind, loinc, site),
                    value=nm(float(quantity["value"])),
                    ucum=ucum,
                    mdc_unit=mdc_unit(item.reading.kind, ucum),
                    flags=_flags(holder),
                    observed_at=observed_at,
                    sub_id=f"1.0.{index + 1}.{part + 1}.{number}",
                    **context,
                ))
            part += 1
        if part == 0:
            raise Hl7BuildError(f"reading {index} ({item.reading.kind.value}) has no "
                                "Observation in the FHIR Bundle")
    for (loinc, display), text in ((CHIEF_COMPLAINT, payload.chief_complaint),
                                   (REASON_FOR_VISIT, payload.reason_for_visit)):
        if text:
            out.append(Observation(value_type="TX", code=(loinc, display, "LN"),
                                   alternate=None, value=_tx(text),
                                   observed_at=payload.completed_at))
    return out


def _test_data(readings: tuple[SubmittedReading, ...]) -> bool:
    return any(item.reading.mode != Mode.REAL for item in readings)


@dataclass(frozen=True)
class Order:
    """One ORDER_OBSERVATION group of an ORU^R01: an OBR (what was observed) and its OBX."""

    service: tuple[str, str, str]  # OBR-4 universal service identifier (code, text, system)
    observed_at: datetime  # OBR-7
    observations: tuple[Observation, ...]
    stat: bool = False  # TQ1-9 priority S (stat, HL7 table 0485): staff must see it now
    note: str = ""  # an NTE under the OBR


def _oru(hl7: GatewayHl7, *, message_id: UUID, sent_at: datetime,
         patient: PatientIdentifiers | None, appointment_id: str, orders: list[Order],
         test_data: bool, device_profile: bool = True, part: int = 0) -> str:
    message = Message("ORU_R01", version=VERSION, validation_level=VALIDATION_LEVEL.TOLERANT)
    _msh(message, hl7, kind=("ORU", "R01", "ORU_R01"), sent_at=sent_at,
         message_id=message_id, test_data=test_data, part=part)
    if device_profile:
        profile = message.msh.msh_21
        profile.ei_1, profile.ei_2, profile.ei_3, profile.ei_4 = PCD_01_PROFILE
    result = message.add_group("ORU_R01_PATIENT_RESULT")
    if patient is not None:
        patient_group = result.add_group("ORU_R01_PATIENT")
        _pid(patient_group.pid, patient, hl7, appointment_id)
        _pv1(patient_group.add_group("ORU_R01_VISIT").pv1, appointment_id)
    set_id = 0
    for number, item in enumerate(orders, start=1):
        order = result.add_group("ORU_R01_ORDER_OBSERVATION")
        obr = order.obr
        obr.obr_1 = str(number)
        # Filler order number: the station's message, traceable (".n" for the n-th order).
        obr.obr_3.ei_1 = str(message_id) if number == 1 else f"{message_id}.{number}"
        obr.obr_3.ei_2 = hl7.sending_application
        obr.obr_4.ce_1, obr.obr_4.ce_2, obr.obr_4.ce_3 = (
            item.service[0], _st(item.service[1]), item.service[2])
        obr.obr_7.ts_1 = ts(item.observed_at)
        obr.obr_25 = "F"
        if item.note:
            note = order.add_segment("NTE")
            note.nte_1 = "1"
            note.nte_3 = _st(item.note)
        if item.stat:
            tq1 = order.add_group("ORU_R01_TIMING_QTY").tq1
            tq1.tq1_1 = "1"
            tq1.tq1_9.cwe_1, tq1.tq1_9.cwe_2, tq1.tq1_9.cwe_3 = "S", "Stat", "HL70485"
        for obs in item.observations:
            set_id += 1
            _obx(order.add_group("ORU_R01_OBSERVATION"), set_id, obs, hl7)
    return checked(message.to_er7())


def oru_r01(payload: VitalsPayload, hl7: GatewayHl7, *, sent_at: datetime,
            extra_orders: tuple[Order, ...] = ()) -> str:
    """The ORU^R01 for one `vitals` message, strictly valid v2.5.1 ER7 (segments end in CR).

    The first ORDER_OBSERVATION is the device data (IHE PCD-01); `extra_orders` follow it
    (the point-of-care results and the medication list, station.gateway.hl7v2_intake)."""
    orders = [Order(PCD_OBR_4, payload.completed_at, tuple(vitals_observations(payload))),
              *extra_orders]
    return _oru(hl7, message_id=payload.message_id, sent_at=sent_at, patient=payload.patient,
                appointment_id=payload.appointment_id, orders=orders,
                test_data=_test_data(payload.readings))


def _age_years(birth: date, on: date) -> float:
    return (on - birth).days / 365.25  # as validation reckons it (station.rooming_data)


def alert_observations(payload: AlertPayload) -> list[Observation]:
    """The alert's reading, each value the alert's rule fired on flagged LL/HH (or L/H)."""
    item = payload.reading
    if item is None:
        raise Hl7BuildError("the alert carries a point-of-care result, not a reading")
    reading = item.reading
    age = _age_years(payload.patient.birth_date, item.accepted_at.date())
    critical = payload.severity == Severity.CRITICAL
    context = _reading_context(item, payload.station_id)
    site = getattr(reading, "site", None)
    observed_at = reading.measured_at if (
        reading.measured_at is not None and reading.measured_at.tzinfo is not None
    ) else item.accepted_at
    out: list[Observation] = []
    for name, value in reading.model_dump().items():
        try:
            row = vital_field(name)
        except LookupError:
            continue
        if value is None or row.loinc is None:
            continue
        fired = [r for r in CLINICAL_RULES if r.code == payload.code and r.field == name
                 and r.applies_to(age) and r.fires(float(value), age)]
        flags: tuple[str, ...] = ()
        if fired:
            flag = "L" if fired[0].compare == "<" else "H"
            flags = (flag * 2 if critical else flag,)
        out.append(Observation(
            value_type="NM", code=(row.loinc, row.loinc_display, "LN"),
            alternate=mdc_measurement(reading.kind, row.loinc, site), value=nm(float(value)),
            ucum=row.unit.value, mdc_unit=mdc_unit(reading.kind, row.unit.value), flags=flags,
            observed_at=observed_at, sub_id=f"1.0.1.1.{len(out) + 1}",
            note=payload.message if fired else "", **context))
    if not out:
        raise Hl7BuildError(f"the alert's {reading.kind.value} reading has no value to send")
    return out


def oru_r01_alert(payload: AlertPayload, hl7: GatewayHl7, *, sent_at: datetime) -> str:
    if payload.poc_result is not None:
        # A critical point-of-care result (glucose < 54 mg/dL): its own test's OBR and OBX,
        # flagged LL/HH as in the vitals ORU, marked stat, the alert's words in NTE.
        from station.gateway.hl7v2_intake import poc_alert_order

        return _oru(hl7, message_id=payload.message_id, sent_at=sent_at,
                    patient=payload.patient, appointment_id=payload.appointment_id,
                    orders=[poc_alert_order(payload.poc_result, payload.message)],
                    test_data=False)
    assert payload.reading is not None  # AlertPayload holds exactly one of the two
    order = Order(PCD_OBR_4, payload.reading.accepted_at, tuple(alert_observations(payload)),
                  stat=True)
    return _oru(hl7, message_id=payload.message_id, sent_at=sent_at, patient=payload.patient,
                appointment_id=payload.appointment_id, orders=[order],
                test_data=payload.reading.reading.mode != Mode.REAL)


def adt_a04(payload: CheckinPayload, hl7: GatewayHl7, *, sent_at: datetime) -> str:
    """The ADT^A04 (register a patient: an outpatient arrived) for one lobby check-in."""
    message = Message("ADT_A01", version=VERSION, validation_level=VALIDATION_LEVEL.TOLERANT)
    _msh(message, hl7, kind=("ADT", "A04", "ADT_A01"), sent_at=sent_at,
         message_id=payload.message_id, test_data=False)
    evn = message.evn
    evn.evn_1 = "A04"
    evn.evn_2.ts_1 = ts(payload.checked_in_at)
    evn.evn_6.ts_1 = ts(payload.checked_in_at)
    _pid(message.pid, payload.patient, hl7)
    _pv1(message.pv1, payload.appointment_id)
    notes: list[Observation] = []
    if payload.reason_for_visit:
        notes.append(Observation(value_type="TX", code=(*REASON_FOR_VISIT, "LN"),
                                 alternate=None, value=_tx(payload.reason_for_visit),
                                 observed_at=payload.checked_in_at))
    update = payload.contact_update
    if payload.contact_update_requested:
        said = ", ".join(f"{k}: {v}" for k, v in (("phone", update.phone if update else ""),
                                                  ("email", update.email if update else ""))
                         if v) or "the patient asked to change their contact details"
        notes.append(Observation(value_type="TX", code=CONTACT_UPDATE_CODE, alternate=None,
                                 value=_tx(f"confirm with the patient before changing the "
                                           f"record: {said}"),
                                 observed_at=payload.checked_in_at))
    if payload.insurance_changed is not None:
        # The front desk's question; HL7 table 0136 yes/no (local code: no LOINC asks it).
        notes.append(Observation(
            value_type="CWE", code=INSURANCE_CHANGED, alternate=None,
            value="Y^Yes^HL70136" if payload.insurance_changed else "N^No^HL70136",
            observed_at=payload.checked_in_at))
    for set_id, obs in enumerate(notes, start=1):
        obx = message.add_segment("OBX")
        holder = _SegmentHolder(obx)
        _obx(holder, set_id, obs, hl7)
    return checked(message.to_er7())


class _SegmentHolder:
    """Lets _obx fill an OBX that sits directly in the message (ADT) rather than in a group."""

    def __init__(self, obx: Any) -> None:
        self.obx = obx

    def add_segment(self, name: str) -> Any:  # pragma: no cover - ADT OBX carry no NTE
        raise Hl7BuildError(f"no {name} after an OBX in ADT^A04")


# ------------------------------------------------------------------------ strict validation


def checked(er7: str) -> str:
    """Parse the ER7 back with hl7apy's STRICT v2.5.1 validation; raise Hl7BuildError if not."""
    try:
        parsed = parse_message(er7, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        parsed.validate()
    except HL7apyException as exc:
        raise Hl7BuildError(f"not valid HL7 v2.5.1: {exc}") from exc
    return er7


# ------------------------------------------------------------------------------- the ACK


@dataclass(frozen=True)
class Ack:
    code: str  # MSA-1: AA accept, AE error, AR reject (or CA/CE/CR in enhanced mode)
    control_id: str  # MSA-2: the MSH-10 it acknowledges
    text: str  # MSA-3 and ERR-8 / ERR-3 text, for the MA

    @property
    def accepted(self) -> bool:
        return self.code in ("AA", "CA")


class AckError(ValueError):
    """What came back is no HL7 ACK the gateway can read."""


def _unescape(text: str) -> str:
    for escaped, plain in (("\\F\\", "|"), ("\\S\\", "^"), ("\\T\\", "&"), ("\\R\\", "~"),
                           ("\\E\\", "\\")):
        text = text.replace(escaped, plain)
    return text


def parse_ack(er7: str) -> Ack:
    """MSA-1/2/3 and the ERR text of an ACK; anything else raises AckError with what came."""
    text = er7.replace("\n", "\r").strip("\r")
    try:
        message = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT)
    except HL7apyException as exc:
        raise AckError(f"not an HL7 message: {exc}") from exc
    segments = {seg.name: seg for seg in message.children if hasattr(seg, "name")}
    msa = segments.get("MSA")
    if msa is None:
        raise AckError("no MSA segment in the reply (expected an ACK)")
    code = msa.msa_1.to_er7()
    if code not in ("AA", "AE", "AR", "CA", "CE", "CR"):
        raise AckError(f"MSA-1 is {code!r}, expected AA, AE or AR (HL7 table 0008)")
    # The text for the MA: ERR-8 (user message) if the EHR wrote one, else MSA-3 (text
    # message, deprecated in v2.5.1 but still what many engines fill), else ERR-3's text.
    err = segments.get("ERR")
    error_code = err.err_3.to_er7().split("^") if err is not None else [""]
    candidates = [err.err_8.to_er7() if err is not None else "", msa.msa_3.to_er7(),
                  error_code[1] if len(error_code) > 1 else error_code[0]]
    said = next((c for c in candidates if c), "")
    return Ack(code=code, control_id=msa.msa_2.to_er7(), text=_unescape(said))
