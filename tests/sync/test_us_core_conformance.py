"""Every vitals Bundle passes the real US Core 6.1.0, 7.0.0 and 8.0.0 StructureDefinitions,
evaluated with an independent FHIRPath engine, and every unit it carries is valid UCUM.

Outside truths:
- US Core StructureDefinitions at the HL7/US-Core tags 6.1.0, 7.0.0 and 8.0.0 (CC0), and the
  FHIR R4 Observation / vital-signs invariants from a published US Core snapshot
  (tests/conformance/us-core/README.md says where each file comes from), checked by
  tests/conformance/us_core.py with fhirpathpy;
- NLM's UCUM library `@lhncbc/ucum-lhc` 7.1.10 (npm) decides what is valid UCUM;
- terminology.hl7.org: v3 ObservationInterpretation (H "High", L "Low", HH "Critical high",
  LL "Critical low"), v3 ActReason HTEST "test health data", v2-0203 MR "Medical record
  number" and VN "Visit number";
- US Core 6.1.0 / 7.0.0 us-core-patient: Patient.gender min 1; 8.0.0: min 0 (the files).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from station.models import (
    BloodPressure,
    BodyHeight,
    BodyWeight,
    HeadCircumference,
    Method,
    Mode,
    PainSeverity,
    PulseOximetry,
    RespiratoryRate,
    Temperature,
    TemperatureSite,
)
from station.submission import (
    CriticalAcknowledgement,
    PatientIdentifiers,
    Submission,
)
from station.sync.fhir import SiteRecords, build_bundle
from station.units import Unit
from tests.conformance import us_core
from tests.sync.samples import AT, MESSAGE_ID, item

UCUM_CHECK = us_core.HERE.parent / "asyncapi" / "ucum.mjs"
CHICAGO = SiteRecords(zone=ZoneInfo("America/Chicago"),
                      mrn_system="urn:oid:2.16.840.1.113883.19.5.99999.1",
                      appointment_system="urn:oid:2.16.840.1.113883.19.5.99999.2")
TODDLER = PatientIdentifiers(mrn="TEST0HC1", family_name="ZZTEST", given_name="Tot",
                             birth_date=date(2025, 3, 1))


def every_kind(mode: Mode = Mode.REAL) -> Submission:
    """One reading of every kind the station sends, device and manual, flagged and not."""
    device_clock = datetime(2026, 3, 2, 9, 2)  # a device's local wall time, no zone
    common: dict[str, Any] = {"codec_version": "1", "mode": mode}
    manual: dict[str, Any] = {**common, "codec": "manual", "method": Method.MANUAL}
    readings = (
        # Verdicts by validate() with adult limits (no age), as tests/sync/samples.item does.
        item(BloodPressure(systolic_mmhg=186.0, diastolic_mmhg=96.0, mean_arterial_mmhg=126.0,
                           pulse_rate_bpm=134.0, unit_as_sent=Unit.MMHG, codec="ble:2a35",
                           measured_at=device_clock, **common), "cuff"),
        item(PulseOximetry(spo2_percent=86.0, pulse_rate_bpm=88.0, unit_as_sent=Unit.PERCENT,
                           codec="serial:masimo", measured_at=device_clock, **common),
             "oximeter"),
        item(Temperature(temperature_c=34.6, site=TemperatureSite.TYMPANUM,
                         unit_as_sent=Unit.CELSIUS, codec="ble:2a1c", **common), "thermometer"),
        item(Temperature(temperature_c=36.6, unit_as_sent=Unit.CELSIUS, codec="ble:2a1c",
                         **common), "thermometer"),
        item(BodyWeight(weight_kg=12.1, height_cm=80.0, bmi_kg_m2=18.9, unit_as_sent=Unit.KG,
                        codec="ble:2a9d", **common), "scale"),
        item(BodyHeight(height_cm=80.5, unit_as_sent=Unit.CM, **manual), None),
        item(RespiratoryRate(respiratory_rate_per_min=30.0, unit_as_sent=Unit.PER_MIN,
                             **manual), None),
        item(PainSeverity(pain_score=7.0, unit_as_sent=Unit.SCORE, **manual), None),
        item(HeadCircumference(head_circumference_cm=46.0, unit_as_sent=Unit.CM, **manual),
             None),
    )
    acks = tuple(
        CriticalAcknowledgement(code=flag.code, kind=r.reading.kind, acknowledged_by="MA042",
                                acknowledged_at=AT)
        for r in readings for flag in r.verdict.flags if flag.severity == "critical"
    )
    return Submission(appointment_id="APT-0001", patient=TODDLER, ma_id="MA042",
                      readings=readings, chief_complaint="cough", reason_for_visit="tos",
                      critical_acknowledgements=acks, completed_at=AT)


def bundle(mode: Mode = Mode.REAL) -> dict[str, Any]:
    return build_bundle(every_kind(mode), message_id=MESSAGE_ID, station_id="exam-3",
                        sent_at=AT, records=CHICAGO)


def observations(b: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Observation"]


def by_code(b: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [o for o in observations(b) if o["code"]["coding"][0]["code"] == code]


@pytest.mark.parametrize("version", us_core.VERSIONS)
@pytest.mark.parametrize("mode", [Mode.REAL, Mode.DEMO])
def test_every_observation_passes_us_core(version: str, mode: Mode) -> None:
    b = bundle(mode)
    checked = {}
    for resource in b["entry"]:
        found = us_core.problems(resource["resource"], version)
        assert found == [], (resource["resource"].get("code"), found)
        checked[resource["resource"].get("code", {}).get("coding", [{}])[0].get("code")] = (
            resource["resource"].get("meta", {}).get("profile"))
    profile = "http://hl7.org/fhir/us/core/StructureDefinition/"
    # Every vital kind, each under the profile US Core gives it (pain: screening assessment).
    assert checked == {
        None: None,  # the Devices
        "85354-9": [profile + "us-core-blood-pressure"],
        "8867-4": [profile + "us-core-heart-rate"],
        "59408-5": [profile + "us-core-pulse-oximetry"],
        "8310-5": [profile + "us-core-body-temperature"],
        "29463-7": [profile + "us-core-body-weight"],
        "8302-2": [profile + "us-core-body-height"],
        "39156-5": [profile + "us-core-bmi"],
        "9279-1": [profile + "us-core-respiratory-rate"],
        "72514-3": [profile + "us-core-observation-screening-assessment"],
        "9843-4": [profile + "us-core-head-circumference"],
        "8661-1": None,
        "29299-5": None,
    }


def ucum(codes: list[str]) -> dict[str, str]:
    node = shutil.which("node")
    assert node is not None, "node is missing: run `make venv`"
    done = subprocess.run([node, str(UCUM_CHECK)], input=json.dumps(codes), text=True,
                          capture_output=True, timeout=60, check=True)
    return {r["code"]: r["status"] for r in map(json.loads, done.stdout.splitlines())}


def test_every_unit_is_valid_ucum_and_the_checker_knows_invalid_ones() -> None:
    codes = sorted({q["code"] for o in observations(bundle()) for q in us_core.quantities(o)
                    if q["system"] == "http://unitsofmeasure.org"})
    assert codes == ["%", "/min", "Cel", "cm", "kg", "kg/m2", "mm[Hg]", "{score}"]
    assert ucum([*codes, "mmHg", "beats/min"]) == {
        **{c: "valid" for c in codes}, "mmHg": "invalid", "beats/min": "invalid"}


def test_the_patient_is_a_logical_mr_reference_valid_in_every_version() -> None:
    b = bundle()
    assert "Patient" not in [e["resource"]["resourceType"] for e in b["entry"]]
    [hr, *_] = by_code(b, "8867-4")
    assert hr["subject"] == {
        "type": "Patient",
        "identifier": {
            "use": "usual",
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                 "code": "MR", "display": "Medical record number"}]},
            "system": "urn:oid:2.16.840.1.113883.19.5.99999.1",
            "value": "TEST0HC1",
        },
        "display": "ZZTEST, Tot",
    }
    assert hr["encounter"]["identifier"]["type"]["coding"][0]["code"] == "VN"
    assert hr["encounter"]["identifier"]["value"] == "APT-0001"


def test_why_not_a_patient_resource_from_the_schedule_6_1_and_7_0_need_gender() -> None:
    patient = {"resourceType": "Patient",
               "meta": {"profile": [us_core.US_CORE + "us-core-patient"]},
               "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5.99999.1",
                               "value": "TEST0HC1"}],
               "name": [{"family": "ZZTEST", "given": ["Tot"]}], "birthDate": "2025-03-01"}
    assert us_core.problems(patient, "6.1.0") == [
        "us-core-patient Patient.gender: 0 present, min 1"]
    assert us_core.problems(patient, "7.0.0") == [
        "us-core-patient Patient.gender: 0 present, min 1"]
    assert us_core.problems(patient, "8.0.0") == []


def test_effective_is_when_measured_in_the_sites_zone_issued_is_the_stations_receipt() -> None:
    b = bundle()
    [bp] = by_code(b, "85354-9")
    # 09:02 on the device's clock in Chicago on 2 March 2026 is CST, UTC-6 (DST starts 8 March).
    assert bp["effectiveDateTime"] == "2026-03-02T09:02:00-06:00"
    assert bp["issued"] == "2026-03-02T15:04:05Z"
    # A reading without a device clock was measured when the station took it.
    [temp, _] = by_code(b, "8310-5")
    assert temp["effectiveDateTime"] == "2026-03-02T15:04:05Z"


def test_flagged_values_carry_their_interpretation() -> None:
    b = bundle()
    system = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

    def codes(holder: dict[str, Any]) -> list[tuple[str, str]]:
        return [(c["system"], c["code"]) for i in holder.get("interpretation", [])
                for c in i["coding"]]

    # Verdicts from validate() without an age: adult limits (station.validation).
    [bp] = by_code(b, "85354-9")
    systolic, diastolic, _ = bp["component"]
    assert codes(systolic) == [(system, "HH")]  # 186: hypertensive crisis (critical)
    assert codes(diastolic) == []  # 96 is below the crisis line of 120
    assert "interpretation" not in bp
    [spo2] = by_code(b, "59408-5")
    assert codes(spo2) == [(system, "LL")]  # 86 %: critical hypoxaemia
    [hr, hr_ox] = by_code(b, "8867-4")
    assert codes(hr) == [(system, "HH")]  # 134/min: above 130, critical
    assert codes(hr_ox) == []  # 88/min
    [cold, normal] = by_code(b, "8310-5")
    assert codes(cold) == [(system, "LL")]  # 34.6 °C: hypothermia, critical
    assert codes(normal) == []
    [rr] = by_code(b, "9279-1")
    assert codes(rr) == [(system, "HH")]  # 30/min: 25 or more, critical
    [pain] = by_code(b, "72514-3")
    assert codes(pain) == [(system, "H")]  # 7/10: severe pain, an information flag
    [weight] = by_code(b, "29463-7")
    assert codes(weight) == []


def test_a_demo_reading_is_visibly_test_data_to_any_fhir_consumer() -> None:
    tag = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST",
           "display": "test health data"}
    demo = bundle(Mode.DEMO)
    assert demo["meta"]["tag"] == [tag]
    for entry in demo["entry"]:
        assert tag in entry["resource"]["meta"]["tag"], entry["resource"]["resourceType"]
    real = bundle()
    assert "meta" not in real
    assert all(tag not in e["resource"].get("meta", {}).get("tag", []) for e in real["entry"])


def test_identifiers_are_stable_for_idempotent_upserts() -> None:
    first, again = bundle(), bundle()
    ids = [o["identifier"] for o in observations(first)]
    assert ids == [o["identifier"] for o in observations(again)]
    assert len({i[0]["value"] for i in ids}) == len(ids)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("valueQuantity", "code"), "[degF]", None),  # allowed by ucum-bodytemp
        (("valueQuantity", "code"), "K",
         "us-core-body-temperature Observation.valueQuantity.code: ['K'] not in"),
        (("dataAbsentReason",), {"text": "x"}, "obs-6 fails"),
        (("category",), [{"text": "vitals"}], "VSCat: 0 present, min 1"),
        (("code", "coding", 0, "code"), "8331-1", "patternCodeableConcept"),
    ],
)
def test_the_checker_catches_what_breaks_a_profile(
    path: tuple[str | int, ...], value: Any, expected: str | None
) -> None:
    [resource, _] = by_code(bundle(), "8310-5")
    target: Any = resource
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    for version in us_core.VERSIONS:
        found = us_core.problems(resource, version)
        if expected is None:
            assert found == []
        else:
            assert any(expected in p for p in found), found


def test_the_checker_sees_a_missing_diastolic_and_an_empty_element() -> None:
    [bp] = by_code(bundle(), "85354-9")
    bp["component"] = [bp["component"][0]]
    assert "us-core-blood-pressure Observation.component:diastolic: 0 present, min 1" in (
        us_core.problems(bp, "6.1.0"))
    [hr, _] = by_code(bundle(), "8867-4")
    hr["note"] = []
    assert us_core.problems(hr, "8.0.0") == [".note: empty (ele-1)"]


def test_effective_with_a_time_but_no_seconds_zone_is_still_checked() -> None:
    [hr, _] = by_code(bundle(), "8867-4")
    hr["effectiveDateTime"] = "2026"  # a year: shorter than vs-1's 8 characters
    assert any("vs-1 fails" in p for p in us_core.problems(hr, "6.1.0"))
    assert datetime(2026, 3, 2, tzinfo=UTC)  # (keeps the UTC import honest)
