"""The FHIR Bundle: valid with fhir.resources, US Core vital-signs rules, broken ones refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation

from station.app.sync_port import site_records
from station.config import Settings
from station.sync.fhir import FhirError, build_bundle, check_bundle, us_core_problems
from tests.sync.samples import AT, MESSAGE_ID, submission


def bundle() -> dict[str, Any]:
    return build_bundle(submission(), message_id=MESSAGE_ID, station_id="exam-3", sent_at=AT)


def observations(b: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Vital-signs Observations by their first LOINC code."""
    return {
        e["resource"]["code"]["coding"][0]["code"]: e["resource"]
        for e in b["entry"]
        if e["resource"]["resourceType"] == "Observation"
    }


def test_every_resource_validates_and_passes_the_us_core_checks() -> None:
    b = bundle()
    obs = observations(b)
    assert sorted(obs) == sorted(["85354-9", "8867-4", "59408-5", "8310-5", "29463-7",
                                  "8302-2", "39156-5", "9279-1", "72514-3", "8661-1",
                                  "29299-5"])
    for code, resource in obs.items():
        Observation.model_validate(resource)
        if code not in ("8661-1", "29299-5"):
            assert us_core_problems(resource) == [], code
    assert b["type"] == "collection"
    assert [e["resource"]["resourceType"] for e in b["entry"]].count("Device") == 4


def test_blood_pressure_panel_has_its_components_device_and_method() -> None:
    bp = observations(bundle())["85354-9"]
    assert bp["component"] == [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6",
                              "display": "Systolic blood pressure"}],
                  "text": "Systolic blood pressure"},
         "valueQuantity": {"value": 128.0, "unit": "mm[Hg]",
                           "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4",
                              "display": "Diastolic blood pressure"}],
                  "text": "Diastolic blood pressure"},
         "valueQuantity": {"value": 82.0, "unit": "mm[Hg]",
                           "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8478-0",
                              "display": "Mean blood pressure"}],
                  "text": "Mean blood pressure"},
         "valueQuantity": {"value": 97.0, "unit": "mm[Hg]",
                           "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
    ]
    assert bp["effectiveDateTime"] == "2026-03-02T15:04:05Z"
    assert bp["method"]["coding"][0]["code"] == "device"
    assert bp["device"]["reference"].startswith("urn:uuid:")
    assert bp["meta"]["profile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure"]


def test_manual_entries_are_marked_manual_and_have_no_device() -> None:
    rr = observations(bundle())["9279-1"]
    assert rr["method"]["coding"][0]["code"] == "manual"
    assert "device" not in rr
    assert rr["valueQuantity"]["code"] == "/min"


def test_the_same_submission_gives_the_same_bundle() -> None:
    assert bundle() == bundle()


def vital(code: str) -> dict[str, Any]:
    return copy.deepcopy(observations(bundle())[code])


def broken(code: str, path: tuple[str | int, ...], value: Any = None, *,
           delete: bool = False) -> dict[str, Any]:
    resource = vital(code)
    target: Any = resource
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return resource


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        (broken("8867-4", ("status",), "done"),
         "Observation 8867-4 (Heart rate): status 'done' is not an Observation status"),
        (broken("8867-4", ("category",), delete=True),
         "Observation 8867-4 (Heart rate): no vital-signs category"),
        (broken("8867-4", ("code", "coding", 0, "code"), "1234-5"),
         "Observation code ['1234-5'] is not a vital-signs LOINC code"),
        (broken("8867-4", ("valueQuantity", "code"), "beats/min"),
         "Observation 8867-4 (Heart rate): unit 'beats/min', expected UCUM '/min'"),
        (broken("8867-4", ("valueQuantity", "system"), "http://example.org/units"),
         "Observation 8867-4 (Heart rate): unit system 'http://example.org/units' is not UCUM"),
        (broken("8867-4", ("valueQuantity",), delete=True),
         "Observation 8867-4 (Heart rate): no valueQuantity and no dataAbsentReason"),
        (broken("8867-4", ("subject",), delete=True),
         "Observation 8867-4 (Heart rate): no subject reference"),
        (broken("8867-4", ("effectiveDateTime",), delete=True),
         "Observation 8867-4 (Heart rate): no effectiveDateTime"),
        (broken("8867-4", ("effectiveDateTime",), "2026-03-02T15:04:05"),
         "effectiveDateTime '2026-03-02T15:04:05' has a time but no timezone"),
        (broken("8867-4", ("method",), delete=True),
         "Observation 8867-4 (Heart rate): no method"),
        (broken("8867-4", ("device",), delete=True),
         "method is device but there is no device reference"),
        (broken("8867-4", ("dataAbsentReason",), {"coding": [{"code": "unknown"}]}),
         "both a value and a dataAbsentReason"),
        (broken("85354-9", ("component",), [vital("85354-9")["component"][0]]),
         "Diastolic blood pressure component 8462-4 is missing"),
        (broken("85354-9", ("component", 0, "valueQuantity", "code"), "mmHg"),
         "component 8480-6: unit 'mmHg', expected UCUM 'mm[Hg]'"),
        (broken("59408-5", ("code", "coding"), [vital("59408-5")["code"]["coding"][0]]),
         "code must also carry LOINC 2708-6"),
        (broken("8310-5", ("bodySite",), delete=True),
         "Observation 8310-5 (Body temperature): no bodySite"),
        (broken("72514-3", ("valueQuantity", "code"), "1"),
         "Observation 72514-3 (Pain severity - 0-10 verbal numeric rating [Score] - Reported):"
         " unit '1', expected UCUM '{score}'"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_broken_resources_are_each_refused_with_the_reason(
    resource: dict[str, Any], reason: str
) -> None:
    problems = us_core_problems(resource)
    assert len(problems) == 1, problems
    assert reason in problems[0]
    # And the whole Bundle carrying it is refused, naming the same reason.
    b = bundle()
    code = resource["code"]["coding"][0]["code"]
    for entry in b["entry"]:
        if entry["resource"].get("code", {}).get("coding", [{}])[0].get("code") in (
            code, "8867-4" if code == "1234-5" else code):
            entry["resource"] = resource
            break
    with pytest.raises(FhirError, match="FHIR Bundle refused"):
        check_bundle(b)


def test_structurally_invalid_resources_are_refused_by_fhir_resources() -> None:
    b = bundle()
    b["entry"][-1]["resource"]["issued"] = "the seventies"
    with pytest.raises(FhirError, match="issued"):
        check_bundle(b)


def test_devices_carry_their_make_and_the_performer_the_sites_staff_system() -> None:
    # The make comes from the bound device's firmware profile, as a station builds it
    # (station.app.sync_port.site_records); the A&D cuff's vendor and model are as its
    # instruction manual names them ("A&D Medical", "UA-651BLE").
    settings = Settings.model_validate({
        "station": {"site": "clinic-north", "station_id": "exam-3"},
        "records": {"staff_system": "https://ehr.example.org/fhir/sid/staff"},
        "devices": [{"id": "cuff", "profile": "and-ua-651ble",
                     "address": "AA:BB:CC:DD:EE:01"}],
    })
    records = site_records(settings)
    b = build_bundle(submission(), message_id=MESSAGE_ID, station_id="exam-3", sent_at=AT,
                     records=records)
    devices = {e["resource"]["deviceName"][0]["name"]: e["resource"] for e in b["entry"]
               if e["resource"]["resourceType"] == "Device"}
    cuff = devices["cuff"]
    assert (cuff["manufacturer"], cuff["modelNumber"]) == ("A&D Medical", "UA-651BLE")
    assert {"name": "UA-651BLE", "type": "model-name"} in cuff["deviceName"]
    assert "manufacturer" not in devices["oximeter"]  # not bound here: no make is claimed
    bp = observations(b)["85354-9"]
    assert bp["performer"] == [{"type": "Practitioner", "identifier": {
        "system": "https://ehr.example.org/fhir/sid/staff", "value": "MA042"}}]
