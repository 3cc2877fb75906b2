"""The vitals as a FHIR R4 (R4B) Bundle, built with fhir.resources and held to US Core vital signs.

fhir.resources checks structure (types, cardinality) but not profiles, codes or units, so
`us_core_problems` checks the US Core vital-signs rules this station relies on, and every
Observation is checked before a Bundle leaves `build_bundle` (the suite checks the Bundles
against the US Core 6.1, 7.0 and 8.0 StructureDefinitions with an independent FHIRPath
engine). Pure: values in, dict out; ids are derived from the message id so the same
submission always gives the same Bundle. The time model and the choices the standard leaves
open are written down in docs/mqtt.md.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from uuid import UUID, uuid5

from fhir.resources.R4B.bundle import Bundle
from pydantic import JsonValue, ValidationError

from station.errors import StationError
from station.models import (
    BloodPressure,
    BodyWeight,
    Flag,
    Kind,
    Method,
    Mode,
    PulseOximetry,
    Temperature,
    TemperatureSite,
)
from station.poc import ResultKind, poc_test
from station.questionnaires import ScreeningResult
from station.submission import (
    AllergyVerification,
    MedicationUse,
    PatientIdentifiers,
    Submission,
    SubmittedAllergy,
    SubmittedMedication,
    SubmittedPocResult,
    SubmittedReading,
)
from station.validation import CLINICAL_RULES, ClinicalFlag, Severity
from station.vitals import FIELDS, vital_field, vital_kind

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# No standard code system says "read from a device" vs "typed by hand"; this one is ours.
METHOD_SYSTEM = "https://schemas.rooming-station.invalid/CodeSystem/method"
# Stand-ins until a site sets its own (`[records]` in station.toml): the EHR's identifier
# systems are the site's to name, never ours to invent.
DEFAULT_MRN_SYSTEM = "urn:rooming-station:mrn"
DEFAULT_APPOINTMENT_SYSTEM = "urn:rooming-station:appointment"
# A patient the MA entered by hand without the MRN: the station's own visit id (temporary).
MANUAL_ENTRY_SYSTEM = "urn:rooming-station:manual-entry"
DEVICE_SYSTEM = "urn:rooming-station:device"
MA_SYSTEM = "urn:rooming-station:ma"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"  # identifier types: MR, VN
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# FHIR R4 "test health data" (v3 ActReason HTEST), on every resource of a demo/test reading.
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
TEST_DATA_TAG = {"system": ACT_REASON, "code": "HTEST", "display": "test health data"}
RFC3986 = "urn:ietf:rfc:3986"
XHTML = "http://www.w3.org/1999/xhtml"

# The Observation.status values FHIR R4 allows (the required binding fhir.resources skips).
OBSERVATION_STATUS = frozenset(
    {
        "registered",
        "preliminary",
        "final",
        "amended",
        "corrected",
        "cancelled",
        "entered-in-error",
        "unknown",
    }
)


class FhirError(StationError):
    """A resource the station refuses to send: says which resource and why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("FHIR Bundle refused: " + "; ".join(problems))


@dataclass(frozen=True)
class DeviceModel:
    """What the station knows of a bound device's make (its firmware profile)."""

    manufacturer: str
    model: str


@dataclass(frozen=True)
class SiteRecords:
    """What one site's records need from the station: its time zone (device clocks are local
    wall time without a zone), the identifier systems of its EHR, and the make of each bound
    device (device id -> DeviceModel)."""

    zone: tzinfo = UTC
    mrn_system: str = DEFAULT_MRN_SYSTEM
    appointment_system: str = DEFAULT_APPOINTMENT_SYSTEM
    staff_system: str = MA_SYSTEM
    devices: Mapping[str, DeviceModel] = field(default_factory=dict)


@dataclass(frozen=True)
class VitalSign:
    loinc: str
    display: str
    ucum: str  # "" for a panel (the value is in its components)
    profile: str
    category: str = "vital-signs"


def _field_sign(field: str) -> VitalSign:
    """A measured field's code, unit and profile, from the one table of vitals."""
    row = vital_field(field)
    assert row.loinc is not None, f"{field} is not sent on its own"
    return VitalSign(row.loinc, row.loinc_display, row.unit.value, row.us_core_profile)


def _panel_sign(kind: Kind) -> VitalSign:
    panel = vital_kind(kind).panel
    assert panel is not None, f"{kind.value} is not sent as a panel"
    loinc, display, profile = panel
    return VitalSign(loinc, display, "", profile)


BP_PANEL = _panel_sign(Kind.BLOOD_PRESSURE)
SYSTOLIC = _field_sign("systolic_mmhg")
DIASTOLIC = _field_sign("diastolic_mmhg")
MEAN_ARTERIAL = _field_sign("mean_arterial_mmhg")
HEART_RATE = _field_sign("pulse_rate_bpm")
SPO2 = _field_sign("spo2_percent")
# US Core pulse oximetry: the Observation also carries the arterial saturation code.
SPO2_ARTERIAL = VitalSign("2708-6", "Oxygen saturation in Arterial blood", "%", "")
BODY_TEMPERATURE = _field_sign("temperature_c")
BODY_WEIGHT = _field_sign("weight_kg")
BODY_HEIGHT = _field_sign("height_cm")
BMI = _field_sign("bmi_kg_m2")
RESPIRATORY_RATE = _field_sign("respiratory_rate_per_min")
# Pain is no vital sign in US Core (72514-3 is outside its vital-signs value set, {score}
# outside the UCUM vital-signs units): a patient-reported assessment, category `survey`.
PAIN = VitalSign(
    "72514-3",
    vital_field("pain_score").loinc_display,
    "{score}",
    "us-core-observation-screening-assessment",
    "survey",
)

# The primary code of each vital-signs Observation the station sends -> its rules.
VITAL_SIGNS: dict[str, VitalSign] = {
    v.loinc: v
    for v in (
        BP_PANEL,
        PAIN,
        *(_field_sign(f.field) for f in FIELDS if f.us_core_profile),
    )
}
BP_COMPONENTS_REQUIRED = (SYSTOLIC, DIASTOLIC)

# SNOMED CT body structures for the GATT Temperature Type sites.
TEMPERATURE_SITE_SNOMED: dict[TemperatureSite, tuple[str, str]] = {
    TemperatureSite.ARMPIT: ("91470000", "Axillary region structure"),
    TemperatureSite.BODY: ("38266002", "Entire body as a whole"),
    TemperatureSite.EAR: ("117590005", "Ear structure"),
    TemperatureSite.FINGER: ("7569003", "Finger structure"),
    TemperatureSite.GI_TRACT: ("122865005", "Gastrointestinal tract structure"),
    TemperatureSite.MOUTH: ("123851003", "Mouth region structure"),
    TemperatureSite.RECTUM: ("34402009", "Rectum structure"),
    TemperatureSite.TOE: ("29707007", "Toe structure"),
    TemperatureSite.TYMPANUM: ("42859004", "Tympanic membrane structure"),
}

# The medication list, allergies and point-of-care results (#18). US Core 6.1-8.0 profile no
# MedicationStatement: a patient's medication list is MedicationRequest, the reported ones with
# intent `plan` and `reported[x]` (US Core "Medication List" guidance), so each line of the
# updated list is a us-core-medicationrequest; "takes no medications" is a FHIR R4 List with
# emptyReason `nilknown` (no profile claimed). docs/mqtt.md says why.
LIST_EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
MEDICATION_LIST = ("10160-0", "History of Medication use Narrative")
# SNOMED CT 716186003 |No known allergy (situation)|: US Core AllergyIntolerance guidance for
# "no known allergies".
NO_KNOWN_ALLERGY = ("716186003", "No known allergy (situation)")
MEDICATION_STATUS: dict[MedicationUse, str] = {
    MedicationUse.TAKING: "active",
    MedicationUse.CHANGED: "active",
    MedicationUse.NOT_TAKING: "stopped",
    MedicationUse.UNREVIEWED: "unknown",
}
ALLERGY_STATUS: dict[AllergyVerification, tuple[str, str]] = {
    # verification -> (clinicalStatus, verificationStatus); ait-1 wants a clinical status
    # beside every verification but entered-in-error.
    AllergyVerification.CONFIRMED: ("active", "confirmed"),
    AllergyVerification.REFUTED: ("inactive", "refuted"),
    AllergyVerification.UNREVIEWED: ("active", "unconfirmed"),
}
CHIEF_COMPLAINT = ("8661-1", "Chief complaint - Reported")
REASON_FOR_VISIT = ("29299-5", "Reason for visit Narrative")


# ------------------------------------------------------------------------------------ builder


def local_time(moment: datetime, zone: tzinfo) -> datetime:
    """A device clock's wall time (no zone) read in the station's zone; aware times as they are."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def measured_at(item: SubmittedReading, zone: tzinfo) -> datetime:
    """When the measurement was taken: the device's clock in the station's zone when the device
    gave one it trusts, else when the station accepted the reading (a live reading)."""
    reading = item.reading
    if reading.measured_at is not None and not reading.has(Flag.CLOCK_NOT_SET):
        return local_time(reading.measured_at, zone)
    return item.accepted_at


def patient_reference(
    patient: PatientIdentifiers, site: SiteRecords, *, visit_id: str = ""
) -> dict[str, Any]:
    """The patient as a logical reference by the site's MRN (identifier type MR): valid in US
    Core 6.1, 7.0 and 8.0 without a Patient resource the schedule cannot fill. A patient the
    MA entered by hand without the MRN gets a temporary identifier (FHIR R4 IdentifierUse
    `temp`) from the station's visit id, so the practice, which matches it to the chart by name
    and date of birth (the message says `identification: manual`), finds this visit's
    resources together."""
    display = f"{patient.family_name}, {patient.given_name}"
    if patient.mrn is None:
        return {
            "type": "Patient",
            "identifier": {"use": "temp", "system": MANUAL_ENTRY_SYSTEM, "value": visit_id},
            "display": display,
        }
    return {
        "type": "Patient",
        "identifier": {
            "use": "usual",
            "type": {"coding": [{"system": V2_0203, "code": "MR",
                                 "display": "Medical record number"}]},
            "system": site.mrn_system,
            "value": patient.mrn,
        },
        "display": display,
    }


def encounter_reference(appointment_id: str, site: SiteRecords) -> dict[str, Any]:
    """The visit as a logical reference by the site's appointment number (type VN)."""
    return {
        "type": "Encounter",
        "identifier": {
            "type": {"coding": [{"system": V2_0203, "code": "VN", "display": "Visit number"}]},
            "system": site.appointment_system,
            "value": appointment_id,
        },
    }


def localized(item: SubmittedReading, zone: tzinfo) -> SubmittedReading:
    """The submitted reading with its device time given the station's offset (as sent)."""
    reading = item.reading
    if reading.measured_at is None or reading.measured_at.tzinfo is not None:
        return item
    moved = reading.model_copy(update={"measured_at": local_time(reading.measured_at, zone)})
    return item.model_copy(update={"reading": moved})


def _code(sign: VitalSign) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": sign.loinc, "display": sign.display}],
            "text": sign.display}


def _quantity(value: float, ucum: str) -> dict[str, Any]:
    return {"value": value, "unit": ucum, "system": UCUM, "code": ucum}


def _absent() -> dict[str, Any]:
    return {"coding": [{"system": DATA_ABSENT_REASON, "code": "unknown"}]}


def _value(value: float | None, ucum: str) -> dict[str, Any]:
    if value is None:
        return {"dataAbsentReason": _absent()}
    return {"valueQuantity": _quantity(value, ucum)}


# v3 ObservationInterpretation: (low, high) for a warning / for a critical value; A / AA when a
# flag names no direction.
_INTERPRETATION_CODES = {
    ("low", False): ("L", "Low"),
    ("high", False): ("H", "High"),
    ("low", True): ("LL", "Critical low"),
    ("high", True): ("HH", "Critical high"),
    ("", False): ("A", "Abnormal"),
    ("", True): ("AA", "Critical abnormal"),
}


def _interpretation(
    flags: tuple[ClinicalFlag, ...], field: str, value: float | None, age_years: float
) -> dict[str, Any]:
    """Observation.interpretation for the flags that fired on one measured field ({} if none).

    A flag names its rule's code, and one code can cover several fields (a hypertensive
    crisis is systolic or diastolic), so the rules are asked which of them fired here."""
    codings = []
    for flag in flags:
        rules = [r for r in CLINICAL_RULES if r.code == flag.code]
        if rules:
            here = [
                r for r in rules
                if r.field == field and value is not None and r.applies_to(age_years)
                and r.fires(value, age_years)
            ]
            if not here:  # judged at other limits (no age given): the rule's own youngest age
                here = [
                    r for r in rules
                    if r.field == field and value is not None and r.fires(value, r.min_age_years)
                ]
            if not here:
                continue
            direction = "low" if here[0].compare == "<" else "high"
        elif flag.severity == Severity.INFO:
            continue
        else:
            direction = ""  # a flag with no rule behind it: abnormal, no direction
        code, display = _INTERPRETATION_CODES[(direction, flag.severity == Severity.CRITICAL)]
        coding = {"system": INTERPRETATION, "code": code, "display": display}
        if coding not in codings:
            codings.append(coding)
    return {"interpretation": [{"coding": [c], "text": c["display"]} for c in codings]} if (
        codings) else {}


def _measurements(
    item: SubmittedReading, age_years: float
) -> Iterator[tuple[VitalSign, dict[str, Any], str]]:
    """The Observations one canonical reading becomes: (sign, extra fields, narrative)."""
    r = item.reading
    flags = item.verdict.flags

    def single(sign: VitalSign, field: str, value: float | None) -> dict[str, Any]:
        return {**_value(value, sign.ucum), **_interpretation(flags, field, value, age_years)}

    def said(sign: VitalSign, value: float | None) -> str:
        return f"{sign.display}: " + ("not available" if value is None else
                                      f"{value:g} {sign.ucum}")

    if isinstance(r, BloodPressure):
        components = [
            {"code": _code(SYSTOLIC), **single(SYSTOLIC, "systolic_mmhg", r.systolic_mmhg)},
            {"code": _code(DIASTOLIC), **single(DIASTOLIC, "diastolic_mmhg", r.diastolic_mmhg)},
        ]
        if r.mean_arterial_mmhg is not None:
            components.append(
                {"code": _code(MEAN_ARTERIAL),
                 **single(MEAN_ARTERIAL, "mean_arterial_mmhg", r.mean_arterial_mmhg)}
            )
        text = "; ".join((said(SYSTOLIC, r.systolic_mmhg), said(DIASTOLIC, r.diastolic_mmhg)))
        yield BP_PANEL, {"component": components}, text
        if r.pulse_rate_bpm is not None:
            yield (HEART_RATE, single(HEART_RATE, "pulse_rate_bpm", r.pulse_rate_bpm),
                   said(HEART_RATE, r.pulse_rate_bpm))
    elif isinstance(r, PulseOximetry):
        code = _code(SPO2)
        code["coding"].append(
            {"system": LOINC, "code": SPO2_ARTERIAL.loinc, "display": SPO2_ARTERIAL.display}
        )
        yield (SPO2, {"code": code, **single(SPO2, "spo2_percent", r.spo2_percent)},
               said(SPO2, r.spo2_percent))
        if r.pulse_rate_bpm is not None:
            yield (HEART_RATE, single(HEART_RATE, "pulse_rate_bpm", r.pulse_rate_bpm),
                   said(HEART_RATE, r.pulse_rate_bpm))
    elif isinstance(r, Temperature):
        if r.site is None:
            site: dict[str, Any] = {"text": "site not stated by the device"}
        else:
            snomed, display = TEMPERATURE_SITE_SNOMED[r.site]
            site = {"coding": [{"system": SNOMED, "code": snomed, "display": display}],
                    "text": r.site.value}
        yield (BODY_TEMPERATURE,
               {"bodySite": site, **single(BODY_TEMPERATURE, "temperature_c", r.temperature_c)},
               said(BODY_TEMPERATURE, r.temperature_c))
    elif isinstance(r, BodyWeight):
        yield BODY_WEIGHT, single(BODY_WEIGHT, "weight_kg", r.weight_kg), said(
            BODY_WEIGHT, r.weight_kg)
        if r.height_cm is not None:
            yield BODY_HEIGHT, single(BODY_HEIGHT, "height_cm", r.height_cm), said(
                BODY_HEIGHT, r.height_cm)
        if r.bmi_kg_m2 is not None:
            yield BMI, single(BMI, "bmi_kg_m2", r.bmi_kg_m2), said(BMI, r.bmi_kg_m2)
    else:
        # One value, one Observation: its code, unit and profile from the table of vitals.
        name = vital_kind(r.kind).required[0]
        sign = PAIN if name == "pain_score" else _field_sign(name)
        value = getattr(r, name)
        yield sign, single(sign, name, value), said(sign, value)


def _dt(moment: datetime) -> str:
    return moment.isoformat()


def _narrative(text: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="{XHTML}"><p>{html.escape(text)}</p></div>'}


def build_bundle(
    submission: Submission,
    *,
    message_id: UUID,
    station_id: str,
    sent_at: datetime,
    records: SiteRecords | None = None,
) -> dict[str, JsonValue]:
    """The Bundle (type collection) for one submission; raises FhirError if any check fails.

    The patient is a logical reference by the site's MRN (Reference.identifier, type MR): the
    station does not know the EHR's Patient ids, and a Patient resource from the schedule
    (no gender) would break us-core-patient 6.1 and 7.0, where gender is 1..1.
    """
    site = records or SiteRecords()

    def url(name: str) -> str:
        return f"urn:uuid:{uuid5(message_id, name)}"

    patient = submission.patient
    subject = patient_reference(patient, site, visit_id=submission.appointment_id)
    encounter = encounter_reference(submission.appointment_id, site)
    test_data = any(item.reading.mode != Mode.REAL for item in submission.readings)
    # Age as validation reckons it (station.rooming_data), for which clinical rules applied.
    age_years = (submission.completed_at.date() - patient.birth_date).days / 365.25
    entries: list[dict[str, Any]] = []
    device_urls: dict[str, str] = {}
    for item in submission.readings:
        if item.device_id is not None and item.device_id not in device_urls:
            device_urls[item.device_id] = url(f"device/{item.device_id}")
            device: dict[str, Any] = {
                "resourceType": "Device",
                "identifier": [
                    {"system": DEVICE_SYSTEM, "value": f"{station_id}/{item.device_id}"}
                ],
                "deviceName": [{"name": item.device_id, "type": "user-friendly-name"}],
            }
            make = site.devices.get(item.device_id)
            if make is not None:
                device["manufacturer"] = make.manufacturer
                device["modelNumber"] = make.model
                device["deviceName"].append({"name": make.model, "type": "model-name"})
            if test_data:
                device["meta"] = {"tag": [TEST_DATA_TAG]}
            entries.append({"fullUrl": device_urls[item.device_id], "resource": device})
    performer = [{"type": "Practitioner",
                  "identifier": {"system": site.staff_system, "value": submission.ma_id}}]
    for index, item in enumerate(submission.readings):
        method = item.reading.method
        effective = _dt(measured_at(item, site.zone))
        for part, (sign, extra, text) in enumerate(_measurements(item, age_years)):
            full_url = url(f"reading/{index}/{part}")
            meta: dict[str, Any] = {}
            if sign.profile:
                meta["profile"] = [US_CORE + sign.profile]
            if item.reading.mode != Mode.REAL:
                meta["tag"] = [TEST_DATA_TAG]
            category_display = "Vital Signs" if sign.category == "vital-signs" else "Survey"
            observation: dict[str, Any] = {
                "resourceType": "Observation",
                "meta": meta or None,
                "text": _narrative(
                    text + (" (TEST DATA, not a patient's)" if item.reading.mode != Mode.REAL
                            else "")),
                "identifier": [{"system": RFC3986, "value": full_url}],
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": OBSERVATION_CATEGORY,
                                "code": sign.category,
                                "display": category_display,
                            }
                        ]
                    }
                ],
                "code": _code(sign),
                "subject": subject,
                "encounter": encounter,
                "effectiveDateTime": effective,
                "issued": _dt(item.accepted_at),
                "performer": performer,
                "method": {
                    "coding": [{"system": METHOD_SYSTEM, "code": method.value}],
                    "text": "read from a device" if method == Method.DEVICE else "entered by hand",
                },
                **extra,
            }
            if item.device_id is not None:
                observation["device"] = {"reference": device_urls[item.device_id]}
            entries.append(
                {
                    "fullUrl": full_url,
                    "resource": {k: v for k, v in observation.items() if v is not None},
                }
            )
    context = _Context(subject, encounter, performer, _dt(submission.completed_at), test_data)
    for index, medication in enumerate(submission.medications):
        full_url = url(f"medication/{index}")
        entries.append({"fullUrl": full_url,
                        "resource": _medication_request(medication, full_url, context)})
    if submission.no_medications:
        full_url = url("medication/none")
        entries.append({"fullUrl": full_url, "resource": _no_medications(full_url, context)})
    for index, allergy in enumerate(submission.allergies):
        full_url = url(f"allergy/{index}")
        entries.append({"fullUrl": full_url,
                        "resource": _allergy(allergy, full_url, context)})
    if submission.no_known_allergies:
        full_url = url("allergy/none")
        entries.append({"fullUrl": full_url, "resource": _no_known_allergy(full_url, context)})
    for index, poc in enumerate(submission.poc_results):
        full_url = url(f"poc/{index}")
        kit = None
        if poc.result.kit_lot:
            kit = url(f"poc/{index}/kit")
            entries.append({"fullUrl": kit, "resource": {
                "resourceType": "Device",
                **({"meta": {"tag": [TEST_DATA_TAG]}} if test_data else {}),
                "identifier": [{"system": RFC3986, "value": kit}],
                "lotNumber": poc.result.kit_lot,
                "deviceName": [{"name": f"{poc_test(poc.result.test).loinc_display} kit",
                                "type": "user-friendly-name"}],
            }})
        entries.append({"fullUrl": full_url,
                        "resource": _poc_observation(poc, full_url, kit, context)})
    for (loinc, display), text in (
        (CHIEF_COMPLAINT, submission.chief_complaint),
        (REASON_FOR_VISIT, submission.reason_for_visit),
    ):
        if not text:
            continue
        full_url = url(f"narrative/{loinc}")
        entries.append(
            {
                "fullUrl": full_url,
                "resource": {
                    "resourceType": "Observation",
                    **({"meta": {"tag": [TEST_DATA_TAG]}} if test_data else {}),
                    "text": _narrative(f"{display}: {text}"),
                    "identifier": [{"system": RFC3986, "value": full_url}],
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}]},
                    "subject": subject,
                    "encounter": encounter,
                    "effectiveDateTime": _dt(submission.completed_at),
                    "performer": performer,
                    "valueString": text,
                },
            }
        )
    bundle = {
        "resourceType": "Bundle",
        **({"meta": {"tag": [TEST_DATA_TAG]}} if test_data else {}),
        "identifier": {"system": RFC3986, "value": f"urn:uuid:{message_id}"},
        "type": "collection",
        "timestamp": _dt(sent_at),
        "entry": entries,
    }
    return check_bundle(bundle)


@dataclass(frozen=True)
class _Context:
    subject: dict[str, Any]
    encounter: dict[str, Any]
    performer: list[dict[str, Any]]
    at: str  # when the MA recorded it (the submission's completion)
    test_data: bool


def _common(kind: str, full_url: str, context: _Context, profile: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if profile:
        meta["profile"] = [US_CORE + profile]
    if context.test_data:
        meta["tag"] = [TEST_DATA_TAG]
    return {"resourceType": kind, **({"meta": meta} if meta else {}),
            "identifier": [{"system": RFC3986, "value": full_url}]}


def _medication_request(
    medication: SubmittedMedication, full_url: str, context: _Context
) -> dict[str, Any]:
    """One line of the reviewed list: us-core-medicationrequest, intent plan, reported by the
    patient (reportedBoolean); an added one names the patient as requester (self-reported)."""
    words = {MedicationUse.TAKING: "taking", MedicationUse.NOT_TAKING: "not taking",
             MedicationUse.CHANGED: "taking, changed", MedicationUse.UNREVIEWED: "not reviewed"}
    said = f"{medication.name}: {words[medication.use]}" + (
        f" ({medication.new_dose})" if medication.new_dose else "")
    dose = medication.new_dose or medication.dose
    resource: dict[str, Any] = {
        **_common("MedicationRequest", full_url, context, "us-core-medicationrequest"),
        "text": _narrative(said + (f"; {medication.note}" if medication.note else "")),
        "status": MEDICATION_STATUS[medication.use],
        "intent": "plan",
        "reportedBoolean": True,
        "medicationCodeableConcept": {"text": medication.name},
        "subject": context.subject,
        "encounter": context.encounter,
        "authoredOn": context.at,
    }
    if medication.patient_reported_new:
        resource["requester"] = {**context.subject, "display": "self-reported by the patient"}
    if dose:
        resource["dosageInstruction"] = [{"text": dose}]
    notes = [n for n in (
        f"changed; listed dose was {medication.dose}" if (
            medication.use == MedicationUse.CHANGED and medication.dose) else "",
        medication.note) if n]
    if notes:
        resource["note"] = [{"text": n} for n in notes]
    return resource


def _no_medications(full_url: str, context: _Context) -> dict[str, Any]:
    """"Takes no medications": an empty List with emptyReason nilknown (FHIR R4 List)."""
    code, display = MEDICATION_LIST
    return {
        **_common("List", full_url, context),
        "text": _narrative("The patient takes no medications"),
        "status": "current",
        "mode": "snapshot",
        "title": "Medication list",
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": context.subject,
        "encounter": context.encounter,
        "date": context.at,
        "emptyReason": {"coding": [{"system": LIST_EMPTY_REASON, "code": "nilknown",
                                    "display": "Nil Known"}],
                        "text": "takes no medications"},
    }


def _allergy(allergy: SubmittedAllergy, full_url: str, context: _Context) -> dict[str, Any]:
    clinical, verification = ALLERGY_STATUS[allergy.verification]
    resource: dict[str, Any] = {
        **_common("AllergyIntolerance", full_url, context, "us-core-allergyintolerance"),
        "text": _narrative(f"{allergy.substance}: {verification}"
                           + (f"; {allergy.reaction}" if allergy.reaction else "")),
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": clinical}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION,
                                           "code": verification}]},
        "code": {"text": allergy.substance},
        "patient": context.subject,
        "encounter": context.encounter,
        "recordedDate": context.at,
        "recorder": context.performer[0],
    }
    if allergy.patient_reported_new:
        resource["asserter"] = context.subject
    if allergy.reaction or allergy.severity:
        reaction: dict[str, Any] = {
            "manifestation": [{"text": allergy.reaction or "not stated"}]}
        if allergy.severity:
            reaction["severity"] = allergy.severity
        resource["reaction"] = [reaction]
    return resource


def _no_known_allergy(full_url: str, context: _Context) -> dict[str, Any]:
    code, display = NO_KNOWN_ALLERGY
    return {
        **_common("AllergyIntolerance", full_url, context, "us-core-allergyintolerance"),
        "text": _narrative("No known allergies"),
        "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": ALLERGY_VERIFICATION,
                                           "code": "confirmed"}]},
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}],
                 "text": "No known allergies"},
        "patient": context.subject,
        "encounter": context.encounter,
        "recordedDate": context.at,
        "recorder": context.performer[0],
    }


_POC_INTERPRETATION = {"positive": ("POS", "Positive"), "negative": ("NEG", "Negative")}


def _poc_observation(
    poc: SubmittedPocResult, full_url: str, kit: str | None, context: _Context
) -> dict[str, Any]:
    """A point-of-care result: us-core-observation-lab (category laboratory), method manual."""
    test = poc_test(poc.result.test)
    result = poc.result
    value: dict[str, Any]
    step = test.step(result.result)
    if result.invalid:
        value = {"dataAbsentReason": {
            "coding": [{"system": DATA_ABSENT_REASON, "code": "error", "display": "Error"}],
            "text": "invalid test (no control line)"}}
        said = "invalid test"
    elif test.kind is ResultKind.QUANTITY:
        assert result.value is not None
        value = {"valueQuantity": _quantity(result.value, test.ucum)}
        said = f"{result.value:g} {test.symbol}"
    elif step is not None and step.value is not None:
        value = {"valueQuantity": _quantity(step.value, test.ucum)}
        said = step.code
    else:
        assert step is not None
        concept: dict[str, Any] = {"text": step.label}
        if step.snomed is not None:
            concept["coding"] = [{"system": SNOMED, "code": step.snomed[0],
                                  "display": step.snomed[1]}]
        value = {"valueCodeableConcept": concept}
        said = step.label
    codings: list[dict[str, str]] = []
    if result.result in _POC_INTERPRETATION and test.kind is ResultKind.PRESENCE:
        code, display = _POC_INTERPRETATION[result.result]
        codings.append({"system": INTERPRETATION, "code": code, "display": display})
    elif result.flags:
        severity = result.flags[0].severity
        low = result.flags[0].code.startswith("hypo")
        code, display = _INTERPRETATION_CODES[("low" if low else "high",
                                               severity == Severity.CRITICAL)]
        codings.append({"system": INTERPRETATION, "code": code, "display": display})
    elif result.abnormal:
        codings.append({"system": INTERPRETATION, "code": "A", "display": "Abnormal"})
    resource: dict[str, Any] = {
        **_common("Observation", full_url, context, "us-core-observation-lab"),
        "text": _narrative(f"{test.loinc_display}: {said}" + (
            " (TEST DATA, not a patient's)" if context.test_data else "")),
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "laboratory",
                                  "display": "Laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": test.loinc,
                             "display": test.loinc_display}], "text": test.loinc_display},
        "subject": context.subject,
        "encounter": context.encounter,
        "effectiveDateTime": _dt(poc.recorded_at),
        "issued": _dt(poc.recorded_at),
        "performer": context.performer,
        "method": {"coding": [{"system": METHOD_SYSTEM, "code": Method.MANUAL.value}],
                   "text": "entered by hand"},
        **value,
    }
    if codings:
        resource["interpretation"] = [{"coding": [c], "text": c["display"]} for c in codings]
    if kit is not None:
        resource["device"] = {"reference": kit}
    return resource


# ------------------------------------------------------------------------------------ checks


def _codes(concept: Any, system: str) -> list[str]:
    if not isinstance(concept, Mapping):
        return []
    return [
        c.get("code", "")
        for c in concept.get("coding") or []
        if isinstance(c, Mapping) and c.get("system") == system
    ]


def _quantity_problems(where: str, holder: Mapping[str, Any], ucum: str) -> list[str]:
    quantity = holder.get("valueQuantity")
    absent = holder.get("dataAbsentReason")
    if quantity is None and absent is None:
        return [f"{where}: no valueQuantity and no dataAbsentReason (one is required)"]
    if quantity is not None and absent is not None:
        return [f"{where}: both a value and a dataAbsentReason (give one or the other)"]
    if quantity is None:
        return []
    problems = []
    if not isinstance(quantity.get("value"), int | float) or isinstance(quantity.get("value"),
                                                                        bool):
        problems.append(f"{where}: valueQuantity.value missing (expected a number)")
    if quantity.get("system") != UCUM:
        problems.append(
            f"{where}: unit system {quantity.get('system')!r} is not UCUM (expected {UCUM})"
        )
    if quantity.get("code") != ucum:
        problems.append(f"{where}: unit {quantity.get('code')!r}, expected UCUM {ucum!r}")
    return problems


def us_core_problems(resource: Mapping[str, Any]) -> list[str]:
    """Why a vital-signs Observation breaks the US Core rules; empty when it passes."""
    if resource.get("resourceType") != "Observation":
        return [f"resourceType {resource.get('resourceType')!r}, expected 'Observation'"]
    codes = _codes(resource.get("code"), LOINC)
    primary = next((c for c in codes if c in VITAL_SIGNS), None)
    if primary is None:
        return [
            f"Observation code {codes or 'missing'} is not a vital-signs LOINC code "
            f"(expected one of {', '.join(sorted(VITAL_SIGNS))})"
        ]
    sign = VITAL_SIGNS[primary]
    where = f"Observation {sign.loinc} ({sign.display})"
    problems: list[str] = []
    status = resource.get("status")
    if status not in OBSERVATION_STATUS:
        problems.append(
            f"{where}: status {status!r} is not an Observation status "
            f"(expected one of {', '.join(sorted(OBSERVATION_STATUS))})"
        )
    if not any(
        sign.category in _codes(category, OBSERVATION_CATEGORY)
        for category in resource.get("category") or []
    ):
        problems.append(
            f"{where}: no {sign.category} category ({OBSERVATION_CATEGORY}|{sign.category})"
        )
    subject = resource.get("subject")
    if not isinstance(subject, Mapping) or not (
        subject.get("reference") or (subject.get("identifier") or {}).get("value")
    ):
        problems.append(f"{where}: no subject reference (the patient)")
    effective = resource.get("effectiveDateTime")
    if effective is None and resource.get("effectivePeriod") is None:
        problems.append(f"{where}: no effectiveDateTime")
    elif isinstance(effective, str) and "T" in effective and not (
        effective.endswith("Z") or effective[-6] in "+-"
    ):
        problems.append(f"{where}: effectiveDateTime {effective!r} has a time but no timezone")
    method = _codes(resource.get("method"), METHOD_SYSTEM)
    if not method or method[0] not in {m.value for m in Method}:
        problems.append(f"{where}: no method (expected device or manual in {METHOD_SYSTEM})")
    elif method[0] == Method.DEVICE and not (resource.get("device") or {}).get("reference"):
        problems.append(f"{where}: method is device but there is no device reference")
    if sign == BP_PANEL:
        components = {
            code: component
            for component in resource.get("component") or []
            for code in _codes(component.get("code"), LOINC)
        }
        for part in BP_COMPONENTS_REQUIRED:
            if part.loinc not in components:
                problems.append(f"{where}: {part.display} component {part.loinc} is missing")
            else:
                problems += _quantity_problems(
                    f"{where} component {part.loinc}", components[part.loinc], part.ucum
                )
        if resource.get("valueQuantity") is not None:
            problems.append(f"{where}: a panel carries its values in components, not value[x]")
    else:
        problems += _quantity_problems(where, resource, sign.ucum)
    if sign == SPO2 and SPO2_ARTERIAL.loinc not in codes:
        problems.append(f"{where}: code must also carry LOINC {SPO2_ARTERIAL.loinc} (US Core)")
    if sign == BODY_TEMPERATURE and not resource.get("bodySite"):
        problems.append(f"{where}: no bodySite (where the temperature was taken)")
    return problems


def check_bundle(bundle: Mapping[str, Any]) -> dict[str, JsonValue]:
    """Validate with fhir.resources, then the US Core rules; return the Bundle's JSON form."""
    try:
        model = Bundle.model_validate(dict(bundle))
    except ValidationError as exc:
        raise FhirError(
            [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        ) from exc
    problems: list[str] = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        category = resource.get("category") or []
        is_vital = any(
            {"vital-signs", "survey"} & set(_codes(c, OBSERVATION_CATEGORY)) for c in category
        )
        is_vital = is_vital or bool(set(_codes(resource.get("code"), LOINC)) & set(VITAL_SIGNS))
        if resource.get("resourceType") == "Observation" and is_vital:
            problems += us_core_problems(resource)
    if problems:
        raise FhirError(problems)
    dumped: dict[str, JsonValue] = model.model_dump(mode="json")
    return dumped


# ------------------------------------------------------------------------ intake screenings

# US Core Smoking Status Observation (us-core-smokingstatus, 6.1.0): code from
# us-core-smoking-status-observation-codes (LOINC 72166-2 Tobacco smoking status), category
# social-history, status final, the answer's SNOMED CT code as valueCodeableConcept.
SMOKING_STATUS_LOINC = "72166-2"


def _derived_observation(
    url: str,
    *,
    profile: str,
    narrative: str,
    category: tuple[str, str],
    code: tuple[str, str],
    value: dict[str, Any],
    response_url: str,
    subject: dict[str, Any],
    encounter: dict[str, Any],
    authored_at: datetime,
) -> dict[str, Any]:
    """An Observation the patient's QuestionnaireResponse yields (a score, the smoking status):
    performed and reported by the patient, derived from the response."""
    return {"fullUrl": url, "resource": {
        "resourceType": "Observation",
        "meta": {"profile": [US_CORE + profile]},
        "text": _narrative(narrative),
        "identifier": [{"system": RFC3986, "value": url}],
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": category[0],
                                  "display": category[1]}]}],
        "code": {"coding": [{"system": LOINC, "code": code[0], "display": code[1]}],
                 "text": code[1]},
        "subject": subject,
        "encounter": encounter,
        "effectiveDateTime": _dt(authored_at),
        "performer": [subject],
        **value,
        "derivedFrom": [{"reference": response_url}],
    }}


def _smoking_status(
    result: ScreeningResult,
    response_url: str,
    *,
    subject: dict[str, Any],
    encounter: dict[str, Any],
    authored_at: datetime,
    message_id: UUID,
) -> list[dict[str, Any]]:
    """The tobacco question's answer as the chart's smoking status, derived from the patient's
    QuestionnaireResponse (what EHRs and quality measures read, not the response itself)."""
    return [
        _derived_observation(
            f"urn:uuid:{uuid5(message_id, f'screening/{result.instrument}/smoking-status')}",
            profile="us-core-smokingstatus",
            narrative=f"Tobacco smoking status: {answer.display}",
            category=("social-history", "Social History"),
            code=(SMOKING_STATUS_LOINC, "Tobacco smoking status"),
            value={"valueCodeableConcept": {
                "coding": [{"system": SNOMED, "code": answer.code, "display": answer.display}],
                "text": answer.display}},
            response_url=response_url, subject=subject, encounter=encounter,
            authored_at=authored_at,
        )
        for answer in result.answers
        if answer.loinc == SMOKING_STATUS_LOINC and answer.system == SNOMED
    ]



def screening_bundle(
    results: tuple[ScreeningResult, ...],
    patient: PatientIdentifiers,
    *,
    appointment_id: str,
    authored_at: datetime,
    message_id: UUID,
    sent_at: datetime,
    records: SiteRecords | None = None,
) -> dict[str, JsonValue]:
    """The lobby's questionnaires: one us-core-questionnaireresponse per instrument (author and
    source: the patient) and its total as a us-core-observation-screening-assessment
    (category survey, derivedFrom the response). Checked by fhir.resources like the vitals."""
    site = records or SiteRecords()
    subject = patient_reference(patient, site)
    encounter = encounter_reference(appointment_id, site)
    entries: list[dict[str, Any]] = []
    for result in results:
        response_url = f"urn:uuid:{uuid5(message_id, f'screening/{result.instrument}')}"
        items = [
            {"linkId": a.link_id, "answer": [{"valueCoding": {
                "system": a.system, "code": a.code, "display": a.display}}]}
            for a in result.answers
        ]
        entries.append({"fullUrl": response_url, "resource": {
            "resourceType": "QuestionnaireResponse",
            "meta": {"profile": [US_CORE + "us-core-questionnaireresponse"]},
            "text": _narrative(f"{result.title}: answered on the lobby tablet "
                               f"({result.language})"),
            "identifier": {"system": RFC3986, "value": response_url},
            "questionnaire": result.questionnaire_url,
            "status": "completed",
            "subject": subject,
            "encounter": encounter,
            "authored": _dt(authored_at),
            "author": subject,
            "source": subject,
            **({"language": result.language} if result.language != "en" else {}),
            "item": items,
        }})
        entries += _smoking_status(result, response_url, subject=subject, encounter=encounter,
                                   authored_at=authored_at, message_id=message_id)
        if result.score is None or result.score_loinc is None:
            continue
        entries.append(_derived_observation(
            f"urn:uuid:{uuid5(message_id, f'screening/{result.instrument}/score')}",
            profile="us-core-observation-screening-assessment",
            narrative=f"{result.score_display}: {result.score:g}",
            category=("survey", "Survey"),
            code=(result.score_loinc, result.score_display),
            value={"valueQuantity": _quantity(result.score, "{score}")},
            response_url=response_url, subject=subject, encounter=encounter,
            authored_at=authored_at,
        ))
    bundle = {
        "resourceType": "Bundle",
        "identifier": {"system": RFC3986, "value": f"urn:uuid:{message_id}"},
        "type": "collection",
        "timestamp": _dt(sent_at),
        "entry": entries,
    }
    try:
        model = Bundle.model_validate(bundle)
    except ValidationError as exc:
        raise FhirError(
            [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        ) from exc
    dumped: dict[str, JsonValue] = model.model_dump(mode="json")
    return dumped
