"""MA rooming on real Kivy widgets offscreen: taps through a whole rooming with devices."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from station.app.demo_ui import DEMO_DEVICES, cuff_frames, demo_schedule
from station.models import AnyReading, Kind, Method, Mode, PainSeverity
from station.rooming import Rooming
from station.rooming_data import MedicationStatus, VitalEntry
from station.submission import (
    CriticalAcknowledgement,
    MedicationReview,
    MedicationReviewStatus,
    MedicationUse,
    PatientIdentifiers,
    Submission,
    SubmittedMedication,
    SubmittedReading,
)
from station.ui.ports import MemoryOutbox
from station.ui.presenters import ExamPresenter
from station.units import Unit
from station.validation import validate
from tests.fixtures.kivy import Driver
from tests.workflows.helpers import FakeClock, bp, spo2, temp, weight

pytestmark = pytest.mark.ui

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
ALPHA = demo_schedule(NOW.date())[0]
AGE = ALPHA.age_years(NOW.date())


def exam(make_ui: Callable[..., Driver]) -> tuple[Driver, ExamPresenter, MemoryOutbox, FakeClock]:
    clock = FakeClock(NOW)
    rooming = Rooming(
        clock=clock,
        credentials={"BADGE-0042": "ma-042", "1234": "ma-042"},
        mode=Mode.DEMO,
        bound_devices=DEMO_DEVICES,
    )
    rooming.set_schedule(demo_schedule(NOW.date()))
    outbox = MemoryOutbox()
    presenter = ExamPresenter(rooming, outbox, outbox)
    return make_ui("exam", presenter), presenter, outbox, clock


def from_device_thread(driver: Driver, readings: list[tuple[AnyReading, str]]) -> None:
    """Readings arrive on another thread, as from a BLE/serial link; they reach the screen
    only through StationUI.deliver (Clock.schedule_once). The shared test readings carry a
    device time from another morning; here they come from clockless devices (stored ones
    still say so), so the guard judges them by arrival."""
    presenter: ExamPresenter = driver.ui.presenter

    def run() -> None:
        for sent, device in readings:
            reading = sent.model_copy(update={"measured_at": None})
            driver.ui.deliver(lambda r=reading, d=device: presenter.device_reading(r, d))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()


def to_vitals(driver: Driver) -> None:
    driver.scan("BADGE-0042")  # the HID badge reader types the id and Enter
    driver.tap("09:00   ZZTEST, Alpha   ·   born 05/17/1970")
    assert "ZZTEST, Alpha" in driver.texts()
    assert "Born 05/17/1970  (age 55)" in driver.texts()
    driver.tap("Yes — both match")
    assert driver.ui.presenter.screen == "vitals"


def review_medications(driver: Driver) -> None:
    """Every listed medication marked taking (#18: Send waits for the list's review)."""
    presenter = driver.ui.presenter
    for index, _ in enumerate(presenter.rooming.medications):
        presenter.set_medication(index, MedicationStatus.TAKING)
    driver.ui.redraw()
    driver.pump(2)


def test_full_rooming_with_four_devices_in_six_taps(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, outbox, _ = exam(make_ui)
    driver.shot("exam_signin")
    to_vitals(driver)
    # Cuff inflating: the live gauge, then the four devices' readings.
    frames = cuff_frames(peak_mmhg=150.0, steps=15)
    from_device_thread(driver, [(f, "cuff") for f in frames[:8]])
    driver.until(lambda: presenter.live_cuff() == 80.0)
    driver.until(lambda: "Cuff inflating: 80 mmHg" in driver.texts())
    driver.shot("exam_vitals_cuff_inflating")
    readings: list[tuple[AnyReading, str]] = [
        (bp(124, 80), "cuff"),
        (spo2(98), "oximeter"),
        (temp(36.8), "thermometer"),
        (weight(80.0, 180.0), "scale"),
    ]
    from_device_thread(driver, readings)
    driver.until(lambda: len(presenter.rooming.entries) == 4)
    driver.until(lambda: "124/80  mmHg" in driver.texts())
    texts = driver.texts()
    for shown in ("124/80  mmHg", "98  %", "98.2  °F", "176.4  lb", "70.9  in", "24.7  kg/m²"):
        assert shown in texts, shown
    assert "Cuff inflating: 80 mmHg" not in texts  # the final BP replaces the gauge
    assert "cuff · 14:00" in texts
    driver.shot("exam_vitals")

    driver.tap("Complaint  >")
    driver.tap("headache")
    review_medications(driver)  # the listed medication: Send is refused until reviewed (#18)
    driver.shot("exam_complaint")
    driver.tap("Review  >")
    driver.shot("exam_review")
    driver.tap("Send")
    # patient, confirm, complaint, pick, medication, review, send
    assert presenter.taps == 7
    assert "Saved — waiting for the practice system" in driver.texts()

    ((message_id, submission),) = outbox.submissions
    assert submission == Submission(
        appointment_id="APT-DEMO-0001",
        patient=PatientIdentifiers(
            mrn="TEST100001",
            family_name="ZZTEST",
            given_name="Alpha",
            birth_date=ALPHA.birth_date,
        ),
        ma_id="ma-042",
        readings=tuple(
            SubmittedReading(
                reading=r,
                verdict=validate(r, age_years=AGE),
                accepted_at=NOW,
                device_id=device,
            )
            for r, device in (
                (sent.model_copy(update={"measured_at": None}), device)
                for sent, device in readings
            )
        ),
        chief_complaint="headache",
        reason_for_visit="follow-up blood pressure",
        medication_review=MedicationReview(status=MedicationReviewStatus.REVIEWED_NO_CHANGES),
        completed_at=NOW,
        medications=(SubmittedMedication(name="lisinopril", dose="10 mg daily",
                                         use=MedicationUse.TAKING),),
    )
    outbox.ack(message_id)  # the practice system's ack, from the MQTT thread
    driver.ui.redraw()
    driver.until(lambda: "Received by the practice system" in driver.texts())
    driver.shot("exam_sent")
    driver.tap("Next patient")
    assert presenter.screen == "patients"
    assert "09:00   ZZTEST, Alpha   ·   born 05/17/1970" not in driver.texts()


def test_critical_value_needs_acknowledgement_and_raises_an_alert(
    make_ui: Callable[..., Driver],
) -> None:
    driver, _, outbox, _ = exam(make_ui)
    to_vitals(driver)
    from_device_thread(driver, [(bp(186, 92), "cuff")])
    driver.until(lambda: "186/92  mmHg" in driver.texts())
    # The tile keeps the flag's headline (SYS >= 180: "hypertensive crisis", ACC/AHA 2017
    # guideline, section 11.2) and its source; the whole words are on Review.
    assert "systolic 180 or above: hypertensive crisis · cuff · 14:00" in driver.texts()
    driver.shot("exam_vitals_critical")
    driver.tap("Review  >")
    assert driver.find("Send — not yet").disabled is True
    driver.shot("exam_review_critical")
    driver.tap("Acknowledge — clinician told")
    assert [a.code for a in outbox.alerts] == ["hypertensive_crisis"]
    review_medications(driver)
    driver.tap("Send")
    ((_, submission),) = outbox.submissions
    assert submission.critical_acknowledgements == (
        CriticalAcknowledgement(
            code="hypertensive_crisis",
            kind=Kind.BLOOD_PRESSURE,
            acknowledged_by="ma-042",
            acknowledged_at=NOW,
        ),
    )


def test_manual_pain_on_the_keypad_is_marked_manual(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, _, _ = exam(make_ui)
    to_vitals(driver)
    driver.tap(next(t for t in driver.widgets() if getattr(t, "key", "") == "pain"))
    driver.shot("exam_keypad")
    driver.tap("1")
    driver.tap("2")
    driver.tap("OK")
    # Said on the pad with the field's label (never "pain_severity"); the pain scale is the
    # 0-10 numeric rating scale (McCaffery & Pasero, Pain: Clinical Manual, 1999, p. 16).
    assert "Pain 0–10 not accepted: pain score 12 is not possible: expected 0–10" in (
        driver.texts()
    )
    assert presenter.message == ""  # nothing over the screen: OK and Cancel stay in reach
    driver.shot("exam_keypad_error")
    assert {"OK", "Cancel"} <= set(driver.texts())
    assert "Next field" not in driver.texts()  # one field: nothing to move to
    assert presenter.rooming.entries == ()
    driver.tap("Del")
    driver.tap("Del")
    driver.tap("7")
    driver.tap("OK")
    entries: list[VitalEntry] = list(presenter.rooming.entries)
    assert len(entries) == 1
    entry = entries[0]
    assert entry.reading == PainSeverity(
        pain_score=7.0,
        unit_as_sent=Unit.SCORE,
        codec="manual",
        codec_version="1",
        method=Method.MANUAL,
        mode=Mode.DEMO,
    )
    assert "severe pain (7 or more out of 10) · typed · 14:00" in driver.texts()


def test_tray_reading_accepted_to_this_patient(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, _, _ = exam(make_ui)
    driver.scan("1234")
    stored = bp(130, 85)
    # Arrives before anyone is confirmed: held back, never attached silently.
    from_device_thread(driver, [(stored, "cuff")])
    driver.until(lambda: len(presenter.rooming.tray) == 1)
    driver.tap("09:00   ZZTEST, Alpha   ·   born 05/17/1970")
    driver.tap("Yes — both match")
    assert presenter.rooming.entries == ()
    driver.shot("exam_tray")
    driver.tap("Accept to this patient")
    entries: list[VitalEntry] = list(presenter.rooming.entries)
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.reading, entry.source.value) == (
        stored.model_copy(update={"measured_at": None}),
        "tray",
    )
    assert "130/85  mmHg" in driver.texts()


def test_not_this_patient_and_sign_out_after_inactivity(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, _, clock = exam(make_ui)
    driver.scan("WRONG-BADGE")
    assert "badge or PIN not recognised" in driver.texts()
    for key in "1234":
        driver.tap(key)
    driver.tap("OK")
    driver.tap("09:30   ZZTEST, Bravo   ·   born 11/02/1985")
    driver.tap("No — not this patient")
    assert presenter.screen == "patients"
    clock.advance(300)
    driver.pump(3)  # the inactivity tick runs on the Kivy clock
    assert presenter.screen == "signin"
    assert "signed out after inactivity" in driver.texts()


def test_offline_banner_shows_the_queued_count(make_ui: Callable[..., Driver]) -> None:
    driver, presenter, outbox, _ = exam(make_ui)
    outbox.set_online(False)
    to_vitals(driver)
    from_device_thread(driver, [(spo2(97), "oximeter")])
    driver.until(lambda: len(presenter.rooming.entries) == 1)
    driver.tap("Review  >")
    review_medications(driver)
    driver.tap("Send")
    driver.ui.redraw()
    driver.pump(2)
    assert "OFFLINE — 1 queued" in driver.texts()
    assert (
        "Saved on this station — will send when the practice system is reachable (1 waiting)"
        in driver.texts()
    )
    driver.shot("exam_offline")


def test_regression_detached_nav_survives_garbage_collection(
    make_ui: Callable[..., Driver],
) -> None:
    """Kivy ids are weak proxies: the vitals nav, detached while the keypad is open, was
    collected by a full GC and the next redraw raised ReferenceError."""
    driver, presenter, _, _ = exam(make_ui)
    to_vitals(driver)
    driver.tap(next(t for t in driver.widgets() if getattr(t, "key", "") == "rr"))
    gc.collect()
    driver.tap("Cancel")
    assert presenter.keypad is None
    driver.tap("Review  >")
    assert presenter.screen == "review"


def test_a_rejected_rooming_says_not_filed_with_the_reason_and_is_resent(
    make_ui: Callable[..., Driver],
) -> None:
    """docs/mqtt.md (the contract): an `ack` with `status: "rejected"` and a `reason` means
    the practice system could not file it. The MA sees "not filed: <reason>" (issue 15) and
    Resend sends it as a new submission under a new message id."""
    driver, _, outbox, _ = exam(make_ui)
    to_vitals(driver)
    from_device_thread(driver, [(bp(124, 80), "cuff")])
    driver.until(lambda: "124/80  mmHg" in driver.texts())
    driver.tap("Review  >")
    review_medications(driver)
    driver.tap("Send")
    ((first_id, first),) = outbox.submissions
    assert "Saved — waiting for the practice system" in driver.texts()
    outbox.reject(first_id, "appointment APT-DEMO-0001 is not open in the chart")
    driver.ui.redraw()
    driver.until(
        lambda: "not filed: appointment APT-DEMO-0001 is not open in the chart" in driver.texts()
    )
    driver.shot("exam_sent_rejected")
    driver.tap("Next patient")
    # Still there on the patient list, first, until it is resent.
    row = (
        "ZZTEST, Alpha · 05/17/1970 — "
        "not filed: appointment APT-DEMO-0001 is not open in the chart"
    )
    assert row in driver.texts()
    driver.tap("Resend")
    (_, (second_id, second)) = outbox.submissions
    assert second_id != first_id and second == first
    assert row not in driver.texts()
    assert "sent again: ZZTEST, Alpha · 05/17/1970" in driver.texts()


def test_a_fever_flag_on_a_fahrenheit_screen_quotes_fahrenheit(
    make_ui: Callable[..., Driver],
) -> None:
    """38.0 °C is 100.4 °F (CDC, "Definitions of Symptoms for Reportable Illnesses": fever
    is 100.4 °F [38 °C] or greater); the demo station shows °F ([display] default)."""
    driver, _, _, _ = exam(make_ui)
    to_vitals(driver)
    from_device_thread(driver, [(temp(38.2), "thermometer")])
    driver.until(lambda: "100.8  °F" in driver.texts())
    assert "temperature 100.4 °F or above: fever · thermometer · 14:00" in driver.texts()
    assert not any("°C" in t for t in driver.texts())
