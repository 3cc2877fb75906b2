"""The medication, allergy and point-of-care steps on real Kivy widgets offscreen (#18): every
change made by taps and typing, refusals said on the form with nothing typed lost, Review
listing what the lists still need first, and the documented tap count.

Outside truths:
- ADA Standards of Care in Diabetes-2024, section 6 "Glycemic Goals and Hypoglycemia",
  table 6.4: level 1 hypoglycaemia is glucose < 70 mg/dL, level 2 < 54 mg/dL ("requires
  immediate action") — so 48 mg/dL must be acknowledged before Send and 62 mg/dL must not;
- Roche Accu-Chek Guide user manual ("Technical information"): the meter measures 10–600
  mg/dL and shows HI above — so 700 is no number a meter can show;
- FHIR R4 AllergyIntolerance.reaction.severity (hl7.org/fhir/R4/valueset-reaction-event-
  severity.html): mild | moderate | severe, the only severities offered;
- LOINC 78012-2 answer list LL2021-5 (loinc.org/78012-2): Positive / Negative / Invalid,
  the only rapid strep results offered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest

from station.app.demo_ui import DEMO_DEVICES
from station.models import Mode
from station.rooming import Rooming
from station.rooming_data import (
    Allergy,
    AllergySeverity,
    AllergyStatus,
    Medication,
    MedicationStatus,
    ScheduledPatient,
)
from station.submission import AllergyVerification, MedicationUse
from station.ui.ports import MemoryOutbox
from station.ui.presenters import ExamPresenter
from tests.fixtures.kivy import Driver
from tests.workflows.helpers import FakeClock

pytestmark = pytest.mark.ui

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
DELTA = ScheduledPatient(
    appointment_id="APT-TEST-0044",
    mrn="TEST100044",
    family_name="ZZTEST",
    given_name="Delta",
    birth_date=date(1958, 8, 21),
    start_time="11:00",
    medications=(
        Medication(name="lisinopril", dose="10 mg daily"),
        Medication(name="metformin", dose="500 mg twice daily"),
    ),
    allergies=(
        Allergy(substance="penicillin", reaction="hives", severity=AllergySeverity.MODERATE),
        Allergy(substance="sulfa drugs"),
    ),
    reason_for_visit="sore throat for three days",
)
ROW = "11:00   ZZTEST, Delta   ·   born 08/21/1958"


def exam(
    make_ui: Callable[..., Driver], patient: ScheduledPatient = DELTA
) -> tuple[Driver, ExamPresenter, MemoryOutbox]:
    rooming = Rooming(
        clock=FakeClock(NOW),
        credentials={"BADGE-0042": "ma-042"},
        mode=Mode.DEMO,
        bound_devices=DEMO_DEVICES,
    )
    rooming.set_schedule((patient,))
    outbox = MemoryOutbox()
    presenter = ExamPresenter(rooming, outbox, outbox)
    driver = make_ui("exam", presenter)
    driver.scan("BADGE-0042")
    driver.tap(ROW)
    driver.tap("Yes — both match")
    return driver, presenter, outbox


def field(driver: Driver, hint: str) -> Any:
    """The one text field on screen with this hint."""
    from kivy.uix.textinput import TextInput

    hits = [
        w
        for w in driver.widgets()
        if isinstance(w, TextInput) and w.hint_text == hint and driver._on_screen(w)
    ]
    assert len(hits) == 1, f"expected one field {hint!r}, found {len(hits)}"
    return hits[0]


def in_row(driver: Driver, text: str, button: str) -> Any:
    """The button `button` in the list row whose words start with `text`."""
    from kivy.uix.button import Button
    from kivy.uix.label import Label

    rows = [
        w.parent
        for w in driver.widgets()
        if isinstance(w, Label)
        and not isinstance(w, Button)
        and w.text.startswith(text)
        and driver._on_screen(w)
    ]
    assert len(rows) == 1, f"expected one row {text!r}, found {len(rows)}"
    hits = [w for w in rows[0].children if isinstance(w, Button) and w.text == button]
    assert len(hits) == 1, f"no {button!r} in the row {text!r}"
    return hits[0]


def scroll_to(driver: Driver, widget: Any) -> None:
    """Scroll the step's list until the widget is in view (a finger would)."""
    scroll = driver.ui.screen.ids.scroll
    scroll.scroll_to(widget, padding=10, animate=False)
    driver.pump(3)


def test_medications_updated_by_taps_and_typing(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, _ = exam(make_ui)
    driver.tap("Complaint  >")
    driver.tap("Medications  >")
    assert presenter.screen == "medications"
    assert "lisinopril 10 mg daily\nnot asked yet" in driver.texts()
    driver.shot("exam_medications")
    driver.tap(in_row(driver, "lisinopril", "changed…"))
    assert presenter.form is not None
    # Nothing typed: said on the form (what was expected), the form stays open.
    driver.tap("Save")
    assert "say what changed: the new dose, a note, or both" in driver.texts()
    driver.type_into(field(driver, "the dose the patient takes now"), "20 mg daily")
    driver.type_into(field(driver, "what the patient said (optional)"), "cardiologist, March")
    driver.shot("exam_medication_change")
    driver.tap("Save")
    driver.tap(in_row(driver, "metformin", "not taking"))
    driver.tap("+ Add a medication")
    driver.type_into(field(driver, "e.g. 10 mg daily"), "400 mg as needed")
    driver.tap("Save")  # no name: refused on the form, the dose typed is kept
    assert "type the medication name" in driver.texts()
    assert field(driver, "e.g. 10 mg daily").text == "400 mg as needed"
    driver.type_into(field(driver, "name, as the patient says it"), "ibuprofen")
    driver.tap("Save")
    assert presenter.form is None
    meds = presenter.rooming.medications
    assert [(m.medication.name, m.status, m.new_dose, m.note, m.added) for m in meds] == [
        ("lisinopril", MedicationStatus.CHANGED, "20 mg daily", "cardiologist, March", False),
        ("metformin", MedicationStatus.NOT_TAKING, "", "", False),
        ("ibuprofen", MedicationStatus.TAKING, "", "", True),
    ]
    assert meds[2].medication.dose == "400 mg as needed"
    # "Takes no medications" beside medications taken: refused, nothing changes.
    scroll_to(driver, driver.find("Takes no medications"))
    driver.tap("Takes no medications")
    assert presenter.rooming.no_medications is False
    assert presenter.message.startswith("these are marked as taken")
    driver.tap(in_row(driver, "ibuprofen", "remove"))
    assert [m.medication.name for m in presenter.rooming.medications] == [
        "lisinopril",
        "metformin",
    ]


def test_allergies_confirmed_refuted_and_added(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, _ = exam(make_ui)
    driver.tap("Complaint  >")
    driver.tap("Medications  >")
    driver.tap("Allergies  >")
    assert presenter.screen == "allergies"
    driver.shot("exam_allergies")
    driver.tap(in_row(driver, "penicillin — hives (moderate)", "confirmed"))
    driver.tap(in_row(driver, "sulfa drugs", "not allergic"))
    driver.tap("+ Add an allergy")
    # The severities offered are FHIR's, and only those (plus none chosen).
    assert {"mild", "moderate", "severe"} <= set(driver.texts())
    driver.type_into(field(driver, "what happens, e.g. hives"), "throat swelling")
    driver.tap("severe")
    driver.tap("Save")  # no substance: said, the reaction and severity kept
    assert "type the substance" in driver.texts()
    assert field(driver, "what happens, e.g. hives").text == "throat swelling"
    driver.type_into(field(driver, "e.g. penicillin, peanuts, latex"), "peanuts")
    driver.shot("exam_allergy_add")
    driver.tap("Save")
    allergies = presenter.rooming.allergies
    assert [
        (a.allergy.substance, a.allergy.reaction, a.allergy.severity, a.status, a.added)
        for a in allergies
    ] == [
        ("penicillin", "hives", AllergySeverity.MODERATE, AllergyStatus.CONFIRMED, False),
        ("sulfa drugs", "", None, AllergyStatus.REFUTED, False),
        ("peanuts", "throat swelling", AllergySeverity.SEVERE, AllergyStatus.CONFIRMED, True),
    ]
    scroll_to(driver, driver.find("No known allergies"))
    driver.tap("No known allergies")  # a confirmed allergy stands: refused
    assert presenter.rooming.no_known_allergies is False


def test_point_of_care_results_flags_and_acknowledgement(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, outbox = exam(make_ui)
    for index, _ in enumerate(presenter.rooming.medications):
        presenter.set_medication(index, MedicationStatus.TAKING)
    for index, _ in enumerate(presenter.rooming.allergies):
        presenter.set_allergy_status(index, AllergyStatus.CONFIRMED)
    driver.tap("Review  >")
    driver.tap("Point-of-care tests")
    assert presenter.screen == "poc"
    driver.shot("exam_poc")
    driver.tap("Rapid strep A")
    # LOINC 78012-2's answer list: positive / negative / invalid, nothing else.
    assert {"negative", "positive", "invalid (no control line)"} <= set(driver.texts())
    driver.tap("positive")
    driver.type_into(field(driver, "optional"), "LOT-STREP-01")
    driver.tap("Save")
    driver.tap("Fingerstick glucose")
    for key in "700":
        driver.tap(key)
    driver.tap("Save")  # beyond a meter's range (10-600 mg/dL): refused on the form
    assert any("outside what a meter can show" in t for t in driver.texts())
    for _ in range(3):
        driver.tap("Del")
    driver.tap("4")
    driver.tap("8")
    # Before Save, the pad says what 48 mg/dL is: level 2 hypoglycaemia (ADA: < 54).
    assert any("level 2 hypoglycaemia" in t for t in driver.texts())
    driver.shot("exam_poc_glucose")
    driver.tap("Save")
    results = presenter.rooming.poc_results
    assert [
        (r.result.test, r.result.result, r.result.value, r.result.kit_lot) for r in results
    ] == [
        ("strep_a", "positive", None, "LOT-STREP-01"),
        ("glucose_capillary", "", 48.0, ""),
    ]
    assert [r.result.critical for r in results] == [False, True]
    driver.tap("Review  >")
    # Review: the critical result first, beside its acknowledge button; Send waits.
    assert driver.find("Send — not yet").disabled is True
    driver.shot("exam_review_lists")
    driver.tap("Acknowledge — clinician told")
    driver.tap("Send")
    ((_, submission),) = outbox.submissions
    assert [(p.result.test, p.acknowledged_by) for p in submission.poc_results] == [
        ("strep_a", None),
        ("glucose_capillary", "ma-042"),
    ]


def test_a_glucose_of_62_is_flagged_but_needs_no_acknowledgement(
    make_ui: Callable[..., Driver],
) -> None:
    driver, presenter, _ = exam(make_ui)
    driver.tap("Review  >")
    scroll_to(driver, driver.find("Point-of-care tests"))  # under the four items to review
    driver.tap("Point-of-care tests")
    driver.tap("Fingerstick glucose")
    driver.tap("6")
    driver.tap("2")
    assert any("level 1 hypoglycaemia" in t for t in driver.texts())  # ADA: < 70, >= 54
    driver.tap("Save")
    ((entry),) = presenter.rooming.poc_results
    assert entry.result.abnormal and not entry.result.critical
    assert not any(
        b.text == "Acknowledge — clinician told" for b in driver.widgets() if hasattr(b, "text")
    )


def test_review_lists_unreviewed_items_first_with_a_button_to_fix_each(
    make_ui: Callable[..., Driver],
) -> None:
    driver, presenter, outbox = exam(make_ui)
    taps_before = presenter.taps
    driver.tap("Complaint  >")
    driver.tap("sore throat")
    driver.tap("Review  >")
    texts = driver.texts()
    fixes = [t for t in texts if t.startswith(("Medication not reviewed", "Allergy not"))]
    assert fixes == [
        "Medication not reviewed: lisinopril 10 mg daily",
        "Medication not reviewed: metformin 500 mg twice daily",
        "Allergy not reviewed: penicillin — hives (moderate)",
        "Allergy not reviewed: sulfa drugs",
    ]
    # First on the screen: above every other row of the review.
    first = driver.ui.screen.ids.rows.children[-1]
    assert any(getattr(w, "text", "") == fixes[0] for w in first.children)
    assert driver.find("Send — not yet").disabled is True
    driver.tap(in_row(driver, "Medication not reviewed: metformin", "Medications"))
    assert presenter.screen == "medications"
    driver.tap(in_row(driver, "lisinopril", "taking"))
    driver.tap(in_row(driver, "metformin", "taking"))
    driver.tap("Allergies  >")
    driver.tap(in_row(driver, "penicillin", "confirmed"))
    driver.tap(in_row(driver, "sulfa drugs", "confirmed"))
    driver.tap("Review  >")
    assert not [t for t in driver.texts() if "not reviewed" in t]
    driver.tap("Send")
    assert len(outbox.submissions) == 1
    # The documented count (docs/ui.md) for two medications and two allergies, nothing
    # changed: complaint, a pick, review, fix, 2 x taking, allergies, 2 x confirmed, review,
    # send.
    assert presenter.taps - taps_before == 11
    ((_, submission),) = outbox.submissions
    assert [(m.name, m.use) for m in submission.medications] == [
        ("lisinopril", MedicationUse.TAKING),
        ("metformin", MedicationUse.TAKING),
    ]
    assert [(a.substance, a.verification) for a in submission.allergies] == [
        ("penicillin", AllergyVerification.CONFIRMED),
        ("sulfa drugs", AllergyVerification.CONFIRMED),
    ]


def test_the_straight_path_through_the_steps_in_ten_taps(make_ui: Callable[..., Driver]) -> None:
    patient = DELTA.model_copy(
        update={"medications": DELTA.medications[:1], "allergies": DELTA.allergies[:1]}
    )
    driver, presenter, outbox = exam(make_ui, patient)
    driver.tap("Complaint  >")
    driver.tap("sore throat")
    driver.tap("Medications  >")
    driver.tap("taking")
    driver.tap("Allergies  >")
    driver.tap("confirmed")
    driver.tap("Review  >")
    driver.tap("Send")
    assert len(outbox.submissions) == 1
    # patient, confirm, complaint, a pick, medications, taking, allergies, confirmed,
    # review, send (docs/ui.md; the badge scan is not a tap)
    assert presenter.taps == 10


def test_sign_out_wipes_the_form_and_the_next_rooming_starts_on_vitals(
    make_ui: Callable[..., Driver],
) -> None:
    driver, presenter, _ = exam(make_ui)
    driver.tap("Complaint  >")
    driver.tap("Medications  >")
    driver.tap("+ Add a medication")
    name = field(driver, "name, as the patient says it")
    driver.type_into(name, "warfarin")
    driver.tap("Sign out")
    assert (presenter.form, presenter.step, presenter.screen) == (None, None, "signin")
    assert name.text == ""  # the widget kept nothing for the next person
    driver.scan("BADGE-0042")
    driver.tap(ROW)
    driver.tap("Yes — both match")
    assert presenter.screen == "vitals"
    assert not any("warfarin" in t for t in driver.texts())
