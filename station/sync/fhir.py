"""The vitals as a FHIR R4 (R4B) Bundle, built with fhir.resources and held to US Core vital signs.

fhir.resources checks structure (types, cardinality) but not profiles, codes or units, so
`us_core_problems` checks the US Core 6 vital-signs rules this station relies on, and every
Observation is checked before a Bundle leaves `build_bundle`. Pure: values in, dict out; ids
are derived from the message id so the same submission always gives the same Bundle.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from fhir.resources.R4B.bundle import Bundle
from pydantic import JsonValue, ValidationError

from station.errors import StationError
from station.models import (
    BloodPressure,
    BodyWeight,
    Kind,
    Method,
    PulseOximetry,
    Temperature,
    TemperatureSite,
)
from station.submission import Submission, SubmittedReading
from station.vitals import FIELDS, vital_field, vital_kind

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# No standard code system says "read from a device" vs "typed by hand"; this one is ours.
METHOD_SYSTEM = "https://schemas.rooming-station.invalid/CodeSystem/method"
MRN_SYSTEM = "urn:rooming-station:mrn"
DEVICE_SYSTEM = "urn:rooming-station:device"
MA_SYSTEM = "urn:rooming-station:ma"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"

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
class VitalSign:
    loinc: str
    display: str
    ucum: str  # "" for a panel (the value is in its components)
    profile: str


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
PAIN = _field_sign("pain_score")

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

CHIEF_COMPLAINT = ("8661-1", "Chief complaint - Reported")
REASON_FOR_VISIT = ("29299-5", "Reason for visit Narrative")


# ------------------------------------------------------------------------------------ builder


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


def _measurements(item: SubmittedReading) -> Iterator[tuple[VitalSign, dict[str, Any]]]:
    """The vital-signs Observations one canonical reading becomes: (sign, extra fields)."""
    r = item.reading
    if isinstance(r, BloodPressure):
        components = [
            {"code": _code(SYSTOLIC), **_value(r.systolic_mmhg, "mm[Hg]")},
            {"code": _code(DIASTOLIC), **_value(r.diastolic_mmhg, "mm[Hg]")},
        ]
        if r.mean_arterial_mmhg is not None:
            components.append(
                {"code": _code(MEAN_ARTERIAL), **_value(r.mean_arterial_mmhg, "mm[Hg]")}
            )
        yield BP_PANEL, {"component": components}
        if r.pulse_rate_bpm is not None:
            yield HEART_RATE, _value(r.pulse_rate_bpm, "/min")
    elif isinstance(r, PulseOximetry):
        code = _code(SPO2)
        code["coding"].append(
            {"system": LOINC, "code": SPO2_ARTERIAL.loinc, "display": SPO2_ARTERIAL.display}
        )
        yield SPO2, {"code": code, **_value(r.spo2_percent, "%")}
        if r.pulse_rate_bpm is not None:
            yield HEART_RATE, _value(r.pulse_rate_bpm, "/min")
    elif isinstance(r, Temperature):
        if r.site is None:
            site: dict[str, Any] = {"text": "site not stated by the device"}
        else:
            snomed, display = TEMPERATURE_SITE_SNOMED[r.site]
            site = {"coding": [{"system": SNOMED, "code": snomed, "display": display}],
                    "text": r.site.value}
        yield BODY_TEMPERATURE, {"bodySite": site, **_value(r.temperature_c, "Cel")}
    elif isinstance(r, BodyWeight):
        yield BODY_WEIGHT, _value(r.weight_kg, "kg")
        if r.height_cm is not None:
            yield BODY_HEIGHT, _value(r.height_cm, "cm")
        if r.bmi_kg_m2 is not None:
            yield BMI, _value(r.bmi_kg_m2, "kg/m2")
    else:
        # One value, one Observation: its code, unit and profile from the table of vitals.
        name = vital_kind(r.kind).required[0]
        sign = _field_sign(name)
        yield sign, _value(getattr(r, name), sign.ucum)


def _dt(moment: datetime) -> str:
    return moment.isoformat()


def build_bundle(
    submission: Submission, *, message_id: UUID, station_id: str, sent_at: datetime
) -> dict[str, JsonValue]:
    """The Bundle (type collection) for one submission; raises FhirError if any check fails."""

    def url(name: str) -> str:
        return f"urn:uuid:{uuid5(message_id, name)}"

    patient = submission.patient
    patient_url = url("patient")
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_url,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": MRN_SYSTEM, "value": patient.mrn}],
                "name": [{"family": patient.family_name, "given": [patient.given_name]}],
                "birthDate": patient.birth_date.isoformat(),
            },
        }
    ]
    device_urls: dict[str, str] = {}
    for item in submission.readings:
        if item.device_id is not None and item.device_id not in device_urls:
            device_urls[item.device_id] = url(f"device/{item.device_id}")
            entries.append(
                {
                    "fullUrl": device_urls[item.device_id],
                    "resource": {
                        "resourceType": "Device",
                        "identifier": [
                            {"system": DEVICE_SYSTEM, "value": f"{station_id}/{item.device_id}"}
                        ],
                        "deviceName": [{"name": item.device_id, "type": "user-friendly-name"}],
                    },
                }
            )
    performer = [{"identifier": {"system": MA_SYSTEM, "value": submission.ma_id}}]
    for index, item in enumerate(submission.readings):
        method = item.reading.method
        for part, (sign, extra) in enumerate(_measurements(item)):
            observation: dict[str, Any] = {
                "resourceType": "Observation",
                "meta": {"profile": [US_CORE + sign.profile]} if sign.profile else None,
                "status": "final",
                "category": [
                    {
                        "coding": [
                            {
                                "system": OBSERVATION_CATEGORY,
                                "code": "vital-signs",
                                "display": "Vital Signs",
                            }
                        ]
                    }
                ],
                "code": _code(sign),
                "subject": {"reference": patient_url},
                "effectiveDateTime": _dt(item.accepted_at),
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
                    "fullUrl": url(f"reading/{index}/{part}"),
                    "resource": {k: v for k, v in observation.items() if v is not None},
                }
            )
    for (loinc, display), text in (
        (CHIEF_COMPLAINT, submission.chief_complaint),
        (REASON_FOR_VISIT, submission.reason_for_visit),
    ):
        if not text:
            continue
        entries.append(
            {
                "fullUrl": url(f"narrative/{loinc}"),
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}]},
                    "subject": {"reference": patient_url},
                    "effectiveDateTime": _dt(submission.completed_at),
                    "performer": performer,
                    "valueString": text,
                },
            }
        )
    bundle = {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{message_id}"},
        "type": "collection",
        "timestamp": _dt(sent_at),
        "entry": entries,
    }
    return check_bundle(bundle)


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
        "vital-signs" in _codes(category, OBSERVATION_CATEGORY)
        for category in resource.get("category") or []
    ):
        problems.append(f"{where}: no vital-signs category ({OBSERVATION_CATEGORY}|vital-signs)")
    subject = resource.get("subject")
    if not isinstance(subject, Mapping) or not subject.get("reference"):
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
        is_vital = any("vital-signs" in _codes(c, OBSERVATION_CATEGORY) for c in category)
        is_vital = is_vital or bool(set(_codes(resource.get("code"), LOINC)) & set(VITAL_SIGNS))
        if resource.get("resourceType") == "Observation" and is_vital:
            problems += us_core_problems(resource)
    if problems:
        raise FhirError(problems)
    dumped: dict[str, JsonValue] = model.model_dump(mode="json")
    return dumped
