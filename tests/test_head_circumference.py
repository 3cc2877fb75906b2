"""Head circumference: added as one row of the table of vitals (station/vitals.py) plus its
rules, and carried end to end — typed at the exam station for a child under 3, validated, and
sent as a US Core head-circumference Observation.

Outside truths:
- US Core 6.1.0 StructureDefinition us-core-head-circumference (tests/conformance/us-core):
  code pattern LOINC 9843-4, valueQuantity.system fixed to UCUM, code bound to body-length
  units; the profile's canonical URL.
- CDC growth charts: head circumference is charted from birth to 36 months, so the station asks
  for it for children under 3 only.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from station.config import DisplaySection
from station.models import HeadCircumference, Kind, Method
from station.rooming import Rooming
from station.rooming_data import ScheduledPatient
from station.submission import Submission
from station.sync.fhir import build_bundle, check_bundle
from station.ui.ports import MemoryOutbox
from station.ui.presenters import ExamPresenter
from station.units import Unit
from station.validation import validate
from tests.sync.samples import AT, MESSAGE_ID, item, submission
from tests.workflows.helpers import FakeClock

SD = json.loads(
    (Path(__file__).parent / "conformance" / "us-core" / "6.1.0"
     / "StructureDefinition-us-core-head-circumference.json").read_text()
)
T0 = datetime(2026, 3, 2, 10, 0)
TODDLER = ScheduledPatient(appointment_id="APT-TEST-HC1", mrn="TEST0HC1", family_name="ZZTEST",
                           given_name="Tot", birth_date=date(2025, 3, 1))  # one year old
ADULT = ScheduledPatient(appointment_id="APT-TEST-HC2", mrn="TEST0HC2", family_name="ZZTEST",
                         given_name="Grown", birth_date=date(1980, 1, 1))


def differential(element_id: str) -> dict[str, Any]:
    [element] = [e for e in SD["differential"]["element"] if e["id"] == element_id]
    return element  # type: ignore[no-any-return]


def exam(patient: ScheduledPatient, display: DisplaySection | None = None) -> ExamPresenter:
    rooming = Rooming(clock=FakeClock(T0), credentials={"1234": "ma-1"}, display=display)
    rooming.set_schedule((patient,))
    outbox = MemoryOutbox()
    presenter = ExamPresenter(rooming, outbox, outbox)
    presenter.sign_in("1234")
    presenter.pick(patient.appointment_id)
    presenter.confirm()
    return presenter


def type_on_keypad(presenter: ExamPresenter, tile: str, text: str) -> None:
    presenter.open_keypad(tile)
    for key in text:
        presenter.keypad_key(key)
    presenter.keypad_ok()


def test_a_child_under_3_has_a_head_circumference_tile_an_adult_does_not() -> None:
    assert "head" in [t.key for t in exam(TODDLER).tiles()]
    assert "head" not in [t.key for t in exam(ADULT).tiles()]


def test_typed_head_circumference_is_a_manual_reading_in_cm() -> None:
    presenter = exam(TODDLER, DisplaySection(height_unit="cm"))
    type_on_keypad(presenter, "head", "45.5")
    [entry] = presenter.rooming.entries
    assert entry.reading == HeadCircumference(
        head_circumference_cm=45.5, unit_as_sent=Unit.CM, codec="manual", codec_version="1",
        method=Method.MANUAL, mode=entry.reading.mode,
    )
    assert entry.verdict.accepted
    [tile] = [t for t in presenter.tiles() if t.key == "head"]
    assert (tile.value, tile.unit) == ("45.5", "cm")


def test_typed_in_inches_it_is_stored_in_cm() -> None:
    # 18 in × 2.54 cm/in (exact, NIST SP 811) = 45.72 cm.
    presenter = exam(TODDLER, DisplaySection(height_unit="in"))
    type_on_keypad(presenter, "head", "18")
    [entry] = presenter.rooming.entries
    assert entry.reading.unit_as_sent is Unit.INCH
    assert isinstance(entry.reading, HeadCircumference)
    assert entry.reading.head_circumference_cm == pytest.approx(45.72)


@pytest.mark.parametrize(
    ("cm", "status"),
    [(17.9, "rejected"), (18.0, "accepted"), (65.0, "accepted"), (65.1, "rejected")],
)
def test_impossible_head_circumference_is_rejected(cm: float, status: str) -> None:
    # 18–65 cm: a 22-week preterm newborn's head is ≈ 20 cm (Fenton 2013 preterm growth chart);
    # adult heads measure ≈ 52–62 cm. Outside that no head was measured.
    reading = HeadCircumference(head_circumference_cm=cm, unit_as_sent=Unit.CM, codec="manual",
                                codec_version="1", method=Method.MANUAL)
    assert validate(reading).status == status


def test_it_is_sent_as_a_us_core_head_circumference_observation() -> None:
    hc = HeadCircumference(head_circumference_cm=45.5, unit_as_sent=Unit.CM, codec="manual",
                           codec_version="1", method=Method.MANUAL)
    base = submission()
    with_hc: Submission = base.model_copy(update={"readings": (item(hc, None),)})
    bundle = build_bundle(with_hc, message_id=MESSAGE_ID, station_id="exam-1",
                          sent_at=AT + timedelta(seconds=1))
    check_bundle(bundle)
    [obs] = [e["resource"] for e in bundle["entry"]  # type: ignore[index, union-attr]
             if e["resource"]["resourceType"] == "Observation"
             and "valueQuantity" in e["resource"]]
    pattern = differential("Observation.code")["patternCodeableConcept"]["coding"][0]
    assert {"system": pattern["system"], "code": pattern["code"]} in [
        {"system": c["system"], "code": c["code"]} for c in obs["code"]["coding"]
    ]
    assert obs["meta"]["profile"] == [SD["url"]]
    system = differential("Observation.valueQuantity.system")["fixedUri"]
    assert obs["valueQuantity"] == {"value": 45.5, "unit": "cm", "system": system, "code": "cm"}
    binding = differential("Observation.valueQuantity.code")["binding"]
    assert binding["valueSet"].startswith("http://hl7.org/fhir/ValueSet/ucum-bodylength")
    assert [c["code"] for c in obs["category"][0]["coding"]] == ["vital-signs"]


def test_the_kind_is_in_the_closed_vocabulary() -> None:
    assert Kind("head_circumference") is Kind.HEAD_CIRCUMFERENCE
