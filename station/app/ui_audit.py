"""`station ui --audit`: every state of every screen, rendered and held to station.ui.audit.

The states are reached through the presenters' own intents (what a tap does) on the demo
wiring, in every mode, at the Pi touchscreen's 800x480 and at 1280x800, in every lobby
language, with normal and large text, and with the hard cases: critical values, long names,
a long complaint, offline, a rejected message, every message overlay.
"""

from __future__ import annotations

import json
import random
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from station.app.demo_ui import DEMO_BIOMED_PIN, DEMO_STAFF_PIN, build_presenter
from station.checkin import CheckinState
from station.locale import CODES, STAFF_CODES
from station.models import BloodPressure, Mode, PulseOximetry, Temperature, TemperatureSite
from station.questionnaires import load_library
from station.rooming_data import (
    Allergy,
    AllergySeverity,
    AllergyStatus,
    Medication,
    MedicationStatus,
    ScheduledPatient,
)
from station.ui.ports import MemoryOutbox
from station.units import Unit

SIZES = ((800, 480), (1280, 800))
LOBBY_LANGUAGES = CODES  # every language has the patient's screens
# The staff screens in every other language they are translated into: the states where
# longer words crowd the most (critical tiles, keypad errors, review, rejected, biomed).
STAFF_STATES_TRANSLATED = (
    "signin_wrong_pin",
    "patients_long_names",
    "confirm_long_name",
    "vitals_critical_long_name",
    "vitals_tray",
    "keypad_bp",
    "keypad_pain_error",
    "keypad_rr_missing",
    "complaint_long",
    "review_critical_long",
    "review_nothing",
    "sent_offline",
    "sent_rejected",
    "patients_rejected",
    "biomed_locked_out",
    "biomed_devices",
    "biomed_unbind_confirm",
    "biomed_test",
    "biomed_settings",
    "biomed_exported",
    "biomed_scanned",
    "biomed_no_devices",
    "biomed_test_reading",
    "patients_look_alikes",
    "patient_entry_typed_long",
    "patient_entry_refused",
    "confirm_manual_long",
    # The medication, allergy and point-of-care steps (#18): every form and its error, the
    # long lists, the contradictions, Review with what the lists still need.
    "medications_long_reviewed",
    "medications_contradiction",
    "medications_none",
    "medication_change_long",
    "medication_change_error",
    "medication_add_error",
    "allergies_empty",
    "allergies_long_reviewed",
    "allergies_contradiction",
    "allergy_add",
    "allergy_add_error",
    "poc",
    "poc_many",
    "poc_influenza_error",
    "poc_dipstick",
    "poc_glucose",
    "poc_glucose_empty",
    "poc_glucose_error",
    "poc_kit_lot_error",
    "review_lists_unreviewed",
    "review_lists_critical_poc",
    "sent_lists",
)
NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
LONG_COMPLAINT = (
    "Intermittent sharp pain behind the left eye for three weeks, worse in the mornings and "
    "when bending over, with some nausea; ibuprofen helps a little; no vision changes noticed"
)


@dataclass(frozen=True)
class State:
    name: str
    mode: str
    setup: Callable[[Any, MemoryOutbox], None]  # drives a fresh presenter to the state
    language: str = "en"
    large_text: bool = False


class _Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def _reading(kind: str, **values: float) -> Any:
    common: dict[str, Any] = {
        "codec": "sim",
        "codec_version": "1",
        "mode": Mode.DEMO,
    }
    if kind == "bp":
        return BloodPressure(unit_as_sent=Unit.MMHG, **common, **values)
    if kind == "spo2":
        return PulseOximetry(unit_as_sent=Unit.PERCENT, **common, **values)
    return Temperature(unit_as_sent=Unit.CELSIUS, site=TemperatureSite.MOUTH, **common, **values)


LONG_PATIENT = ScheduledPatient(
    appointment_id="APT-DEMO-0009",
    mrn="TEST100009",
    family_name="ZZTEST-MONTGOMERY-WORTHINGTON",
    given_name="Alexandrina Maximiliana",
    birth_date=date(1948, 12, 30),
    start_time="16:45",
    medications=(
        Medication(name="hydrochlorothiazide", dose="12.5 mg every morning with food"),
        Medication(name="atorvastatin", dose="40 mg at bedtime"),
    ),
    allergies=(
        Allergy(substance="penicillin", reaction="hives and swelling of the lips",
                severity=AllergySeverity.MODERATE),
    ),
    reason_for_visit="follow-up of blood pressure and cholesterol after the new medication",
)


# A 100-character name (#20: it was clipped to the label), with its spaces where real
# compound names have them.
HUNDRED_PATIENT = ScheduledPatient(
    appointment_id="APT-DEMO-0010",
    mrn="TEST100010",
    family_name="ZZTEST-VILLANUEVA DE LA CRUZ MONTGOMERY-WORTHINGTON",
    given_name="Maria Alexandrina Maximiliana Guadalupe Rosalba",
    birth_date=date(1951, 7, 4),
    start_time="17:00",
)
assert len(HUNDRED_PATIENT.display_name) == 100


def look_alikes() -> tuple[ScheduledPatient, ...]:
    """#20's look-alike names as the schedule brings them in (station.names cleans them): a
    plain name, the same with a zero-width space (collides once cleaned: the MRN shows), with
    a word joiner + ZWNJ, and with a Cyrillic capital IE (flagged as mixed alphabets)."""
    from station.app.sync_port import appointment_to_patient
    from station.submission import PatientIdentifiers
    from station.sync.contract import Appointment

    def appointment(number: int, family: str) -> Any:
        return appointment_to_patient(
            Appointment(
                appointment_id=f"APT-LOOK-{number}",
                patient=PatientIdentifiers(
                    mrn=f"TEST20000{number}",
                    family_name=family,
                    given_name="Echo",
                    birth_date=date(1979, 1, 30),
                ),
                starts_at=datetime(2026, 3, 2, 15, number, tzinfo=UTC),
            )
        )

    return (
        appointment(1, "ZZTEST"),
        appointment(2, "ZZ\u200bTEST"),
        appointment(3, "ZZTE\u2060\u200cST"),
        appointment(4, "ZZT\u0415ST"),
    )


def _signed_in(p: Any, _o: MemoryOutbox) -> None:
    p.sign_in("BADGE-DEMO")


def _vitals(p: Any, o: MemoryOutbox, *, long: bool = False) -> None:
    _signed_in(p, o)
    if long:
        p.rooming.set_schedule((*p.rooming.schedule, LONG_PATIENT))
        p.pick(LONG_PATIENT.appointment_id)
    else:
        p.pick(p.rooming.schedule[0].appointment_id)
    p.confirm()


def _normal(p: Any) -> None:
    p.device_reading(
        _reading("bp", systolic_mmhg=124, diastolic_mmhg=80, pulse_rate_bpm=71), "cuff"
    )
    p.device_reading(_reading("spo2", spo2_percent=98, pulse_rate_bpm=72), "oximeter")
    p.device_reading(_reading("temp", temperature_c=36.8), "thermometer")


def _critical(p: Any) -> None:
    p.device_reading(
        _reading("bp", systolic_mmhg=186, diastolic_mmhg=92, pulse_rate_bpm=128), "cuff"
    )
    p.device_reading(_reading("spo2", spo2_percent=88, pulse_rate_bpm=127), "oximeter")
    p.device_reading(_reading("temp", temperature_c=39.4), "thermometer")


Step = Callable[[Any, MemoryOutbox], None]


def then(*steps: Step) -> Step:
    """Steps one after the other (each a tap's intent on the presenter)."""

    def run(p: Any, o: MemoryOutbox) -> None:
        for step in steps:
            step(p, o)

    return run


def call(name: str, *args: Any) -> Step:
    """One intent by name, as a step."""

    def run(p: Any, _o: MemoryOutbox) -> None:
        getattr(p, name)(*args)

    return run


def _nothing(_p: Any, _o: MemoryOutbox) -> None:
    return None


def _exam_states() -> Iterator[tuple[str, Step]]:
    def vitals(p: Any, o: MemoryOutbox) -> None:
        _vitals(p, o)

    def long_vitals(p: Any, o: MemoryOutbox) -> None:
        _vitals(p, o, long=True)

    def normal(p: Any, _o: MemoryOutbox) -> None:
        _normal(p)

    def critical(p: Any, _o: MemoryOutbox) -> None:
        _critical(p)

    def offline(_p: Any, o: MemoryOutbox) -> None:
        o.set_online(False)

    def add_long(p: Any, _o: MemoryOutbox) -> None:
        p.rooming.set_schedule((*p.rooming.schedule, LONG_PATIENT))

    def add_hundred(p: Any, _o: MemoryOutbox) -> None:
        p.rooming.set_schedule((*p.rooming.schedule, HUNDRED_PATIENT))

    def add_look_alikes(p: Any, _o: MemoryOutbox) -> None:
        p.rooming.set_schedule((*p.rooming.schedule, *look_alikes()))

    def pick_first(p: Any, _o: MemoryOutbox) -> None:
        p.pick(p.rooming.schedule[0].appointment_id)

    def no_schedule(p: Any, _o: MemoryOutbox) -> None:
        p.rooming.set_schedule(())

    review = call("go", "review")
    complaint = call("go", "complaint")

    def long_text(p: Any, _o: MemoryOutbox) -> None:
        p.go("complaint")
        p.toggle_complaint("headache")
        p.toggle_complaint("abdominal pain")
        p.set_free_text(LONG_COMPLAINT[:200])

    def acknowledge_all(p: Any, _o: MemoryOutbox) -> None:
        for row in p.review_rows():
            if row.needs_ack:
                p.acknowledge(row.entry_id)

    def send(p: Any, _o: MemoryOutbox) -> None:
        _lists_reviewed(p, _o)
        p.send()

    def reject(p: Any, o: MemoryOutbox) -> None:
        assert p.sent_id is not None
        o.reject(p.sent_id, "appointment APT-DEMO-0001 is not open in the chart")

    def keypad(tile: str, *keys: str) -> Step:
        def run(p: Any, _o: MemoryOutbox) -> None:
            p.open_keypad(tile)
            for key in keys:
                p.keypad_key(key)

        return run

    def tray(p: Any, _o: MemoryOutbox) -> None:
        p.sign_in("BADGE-DEMO")
        p.device_reading(_reading("bp", systolic_mmhg=130, diastolic_mmhg=85), "cuff")
        p.device_reading(_reading("spo2", spo2_percent=97), "oximeter")
        p.pick(p.rooming.schedule[0].appointment_id)
        p.confirm()

    def cuff(p: Any, _o: MemoryOutbox) -> None:
        from station.app.demo_ui import cuff_frames

        for frame in cuff_frames(150.0, 15)[:8]:
            p.device_reading(frame, "cuff")

    def wrong_pin(p: Any, _o: MemoryOutbox) -> None:
        p.sign_in("9999")

    yield "signin", _nothing
    yield "signin_wrong_pin", wrong_pin
    yield "patients", _signed_in
    yield "patients_long_names", then(_signed_in, add_long)
    yield "patients_100_char_name", then(_signed_in, add_hundred)
    yield "patients_look_alikes", then(_signed_in, add_look_alikes)
    yield "patients_empty", then(_signed_in, no_schedule)
    yield "patients_offline", then(_signed_in, offline)
    yield "confirm", then(_signed_in, pick_first)
    yield "confirm_long_name", then(_signed_in, add_long, call("pick", LONG_PATIENT.appointment_id))
    yield "confirm_100_char_name", then(
        _signed_in, add_hundred, call("pick", HUNDRED_PATIENT.appointment_id)
    )
    yield "confirm_look_alike_hidden", then(_signed_in, add_look_alikes, call("pick", "APT-LOOK-2"))
    yield "confirm_look_alike_cyrillic", then(
        _signed_in, add_look_alikes, call("pick", "APT-LOOK-4")
    )
    yield "vitals_empty", vitals
    yield "vitals_normal", then(vitals, normal)
    yield "vitals_critical", then(vitals, critical)
    yield "vitals_critical_long_name", then(long_vitals, critical)
    yield "vitals_cuff_inflating", then(vitals, cuff)
    yield "vitals_tray", tray
    yield "vitals_offline", then(vitals, normal, offline)
    yield "keypad_bp", keypad("bp", "1", "2", "0")
    yield "keypad_bp_from_vitals", then(vitals, keypad("bp", "1", "2", "0"))
    yield "keypad_pain_error", then(vitals, keypad("pain", "1", "2"), call("keypad_ok"))
    yield "keypad_rr_missing", then(vitals, keypad("rr"), call("keypad_ok"))
    yield "keypad_not_typed", then(vitals, call("open_keypad", "bmi"))
    yield "complaint", then(vitals, complaint)
    yield "complaint_long", then(long_vitals, long_text)
    yield "review", then(vitals, normal, review)
    yield "review_critical", then(vitals, critical, review)
    yield "review_critical_long", then(long_vitals, critical, long_text, review)
    yield "review_nothing", then(vitals, review)
    yield "sent", then(vitals, normal, review, send)
    yield (
        "sent_critical_long",
        then(long_vitals, critical, long_text, review, acknowledge_all, send),
    )
    yield "sent_offline", then(vitals, normal, review, offline, send)
    yield "sent_rejected", then(vitals, normal, review, send, reject)
    yield "patients_rejected", then(vitals, normal, review, send, reject, call("next_patient"))
    # Manual patient entry (schedule empty or offline): the form, its refusals, long names,
    # the confirmation of the typed identifiers.
    entry = then(_signed_in, no_schedule, offline, call("open_patient_entry"))
    long_typed = then(
        entry,
        call("patient_entry_typed", "family", LONG_PATIENT.family_name),
        call("patient_entry_typed", "given", LONG_PATIENT.given_name),
        call("patient_entry_typed", "dob", "12301948"),
        call("patient_entry_typed", "mrn", "TEST100009"),
    )
    yield "patient_entry", entry
    yield "patient_entry_typed_long", long_typed
    yield "patient_entry_refused", then(entry, call("submit_patient_entry"))
    yield (
        "patient_entry_names_missing",
        then(entry, call("patient_entry_typed", "dob", "03141961"), call("submit_patient_entry")),
    )
    yield "confirm_manual_long", then(long_typed, call("submit_patient_entry"))
    yield from _list_states(vitals, long_vitals, review)


# A long list: the practice's medications with long names and doses, and an allergy list.
LONG_MEDICATIONS = (
    Medication(name="hydrochlorothiazide", dose="12.5 mg every morning with food"),
    Medication(name="atorvastatin", dose="40 mg at bedtime"),
    Medication(
        name="insulin glargine-yfgn (Semglee) prefilled pen 100 units/mL",
        dose="24 units subcutaneously at bedtime, adjust by 2 units every 3 days to target",
    ),
    Medication(name="metformin extended-release", dose="1000 mg twice daily with meals"),
    Medication(name="levothyroxine", dose="75 mcg every morning on an empty stomach"),
    Medication(name="sertraline", dose="50 mg daily"),
    Medication(name="albuterol HFA inhaler", dose="2 puffs every 4 hours as needed"),
    Medication(name="omeprazole", dose="20 mg daily before breakfast"),
)
LONG_ALLERGIES = (
    Allergy(substance="penicillin", reaction="hives and swelling of the lips",
            severity=AllergySeverity.MODERATE),
    Allergy(substance="sulfamethoxazole-trimethoprim (Bactrim, Septra)",
            reaction="widespread blistering rash with fever, admitted to hospital in 2019",
            severity=AllergySeverity.SEVERE),
    Allergy(substance="latex"),
    Allergy(substance="shellfish", reaction="throat tightness", severity=AllergySeverity.SEVERE),
    Allergy(substance="codeine", reaction="nausea", severity=AllergySeverity.MILD),
)
LONG_TEXT_200 = (
    "Patient says the cardiologist changed it after the echocardiogram last month and she now "
    "takes half a tablet in the morning and a whole one at night unless her pressure is low"
)[:200]


def _lists_reviewed(p: Any, _o: MemoryOutbox) -> None:
    """Every listed medication taken and every listed allergy confirmed (#18: before Send)."""
    for index, _ in enumerate(p.rooming.medications):
        p.set_medication(index, MedicationStatus.TAKING)
    for index, _ in enumerate(p.rooming.allergies):
        p.set_allergy_status(index, AllergyStatus.CONFIRMED)


def _list_states(vitals: Step, long_vitals: Step, review: Step) -> Iterator[tuple[str, Step]]:
    """The medication, allergy and point-of-care steps: empty, long, every form and error."""

    def long_lists(p: Any, _o: MemoryOutbox) -> None:
        patient = LONG_PATIENT.model_copy(
            update={"medications": LONG_MEDICATIONS, "allergies": LONG_ALLERGIES}
        )
        p.rooming.set_schedule((*p.rooming.schedule, patient))
        p.sign_in("BADGE-DEMO")
        p.pick(patient.appointment_id)
        p.confirm()
        p.go("complaint")

    def reviewed_some(p: Any, _o: MemoryOutbox) -> None:
        p.set_medication(0, MedicationStatus.TAKING)
        p.set_medication(1, MedicationStatus.NOT_TAKING)
        p.change_medication(2, "26 units at bedtime", LONG_TEXT_200)
        p.add_medication("ibuprofen (Advil) over the counter", "400 mg as needed for headache",
                         "takes it most days this month")
        p.add_medication("vitamin D3", "2000 IU daily")

    def allergies_some(p: Any, _o: MemoryOutbox) -> None:
        p.confirm_allergy(0)
        p.set_allergy_status(1, AllergyStatus.REFUTED)
        p.add_allergy("amoxicillin-clavulanate (Augmentin) — told by an urgent care in 2021",
                      "diarrhoea and a rash on the arms and chest", AllergySeverity.MILD)

    def poc_many(p: Any, _o: MemoryOutbox) -> None:
        p.record_poc("strep_a", "positive", "LOT-2026-04-ABCDEFGH-1234567890")
        p.record_poc("influenza_a", "negative")
        p.record_poc("influenza_b", "invalid")
        p.record_poc("covid_antigen", "negative")
        p.record_poc("glucose_capillary", "48")
        p.record_poc("urine_ketones", "large (160 mg/dL)")
        p.record_poc("urine_protein", "2000 mg/dL or more (++++)")

    complaint = call("go", "complaint")
    meds = call("go", "medications")
    allergies = call("go", "allergies")
    poc = call("go", "poc")
    yield "medications", then(vitals, complaint, meds)
    yield "medications_empty", then(_signed_in, call("pick", "APT-DEMO-0002"), call("confirm"),
                                    meds)
    yield "medications_none", then(_signed_in, call("pick", "APT-DEMO-0002"), call("confirm"),
                                   meds, call("set_no_medications", True))
    yield "medications_long", then(long_lists, meds)
    yield "medications_long_reviewed", then(long_lists, meds, reviewed_some)
    yield "medications_contradiction", then(long_lists, meds, reviewed_some,
                                            call("set_no_medications", True))
    yield "medication_change", then(vitals, complaint, meds, call("edit_medication", 0))
    yield "medication_change_long", then(long_lists, meds, call("edit_medication", 2),
                                         call("form_text", "new_dose", LONG_TEXT_200),
                                         call("form_text", "note", LONG_TEXT_200))
    yield "medication_change_error", then(vitals, complaint, meds, call("edit_medication", 0),
                                          call("save_form"))
    yield "medication_add", then(vitals, complaint, meds, call("open_form", "add_medication"))
    yield "medication_add_error", then(long_lists, meds, call("open_form", "add_medication"),
                                       call("form_text", "dose", LONG_TEXT_200),
                                       call("save_form"))
    yield "allergies", then(long_vitals, complaint, allergies)
    yield "allergies_empty", then(vitals, complaint, allergies)
    yield "allergies_none", then(vitals, complaint, allergies,
                                 call("set_no_known_allergies", True))
    yield "allergies_long", then(long_lists, allergies)
    yield "allergies_long_reviewed", then(long_lists, allergies, allergies_some)
    yield "allergies_contradiction", then(long_lists, allergies,
                                          call("set_no_known_allergies", True))
    yield "allergy_add", then(vitals, complaint, allergies, call("open_form", "add_allergy"),
                              call("form_pick", "severity", "severe"))
    yield "allergy_add_error", then(long_lists, allergies, call("open_form", "add_allergy"),
                                    call("form_text", "reaction", LONG_TEXT_200),
                                    call("save_form"))
    yield "poc", then(vitals, review, poc)
    yield "poc_many", then(long_vitals, review, poc, poc_many)
    yield "poc_strep", then(vitals, review, poc, call("open_form", "poc", "strep_a"),
                            call("form_pick", "strep_a", "positive"))
    yield "poc_influenza", then(vitals, review, poc, call("open_form", "poc", "influenza"),
                                call("form_pick", "influenza_a", "negative"))
    yield "poc_influenza_error", then(vitals, review, poc, call("open_form", "poc", "influenza"),
                                      call("form_pick", "influenza_a", "negative"),
                                      call("save_form"))
    yield "poc_dipstick", then(vitals, review, poc, call("open_form", "poc", "urine_dipstick"),
                               call("form_pick", "urine_protein", "2000 mg/dL or more (++++)"))
    yield "poc_glucose", then(vitals, review, poc, call("open_form", "poc", "glucose_capillary"),
                              call("form_key", "4"), call("form_key", "8"))
    yield "poc_glucose_empty", then(vitals, review, poc,
                                    call("open_form", "poc", "glucose_capillary"))
    yield "poc_glucose_error", then(vitals, review, poc,
                                    call("open_form", "poc", "glucose_capillary"),
                                    *(call("form_key", k) for k in "700"), call("save_form"))
    yield "poc_kit_lot_error", then(vitals, review, poc, call("open_form", "poc", "covid_antigen"),
                                    call("form_pick", "covid_antigen", "negative"),
                                    call("form_text", "kit_lot", "L" * 60), call("save_form"))
    yield "review_lists_unreviewed", then(long_lists, review)
    yield "review_lists_critical_poc", then(long_lists, review, poc, poc_many, review)
    yield (
        "review_lists_done",
        then(long_lists, review, poc, poc_many, _lists_reviewed, reviewed_some, allergies_some,
             review),
    )
    yield (
        "sent_lists",
        then(long_lists, review, _lists_reviewed, reviewed_some, allergies_some,
             call("record_poc", "strep_a", "positive"), review, call("send")),
    )


def _lobby_states() -> Iterator[tuple[str, Step]]:
    find = call("start")
    typed = then(find, call("typed", "Zztest-Montgomery-Worthington", "03141961"))
    found = call("scan_qr", "qr-demo-0003")

    def changing(p: Any, _o: MemoryOutbox) -> None:
        p._audit_changing = True  # the screen's own "Something changed" state

    def idle(p: Any, _o: MemoryOutbox) -> None:
        _idle(p, 61)

    def staff_open(p: Any, _o: MemoryOutbox) -> None:
        for _ in range(5):
            p.staff_corner()

    yield "welcome", _nothing
    yield "welcome_help", call("ask_for_help")
    yield "welcome_staff_pin", staff_open
    yield "welcome_staff_wrong_pin", then(staff_open, call("staff_exit", "1111"))
    yield "contact_scan_read", then(found, lambda p, _o: p.say(p.scan_elsewhere()))
    yield "find", find
    yield "find_typed", typed
    yield "find_error", then(find, call("find"))
    yield "not_found", then(typed, call("find"))
    yield "contact", found
    yield "contact_changing", then(found, changing)
    yield "reason", then(found, call("contact_ok"))
    yield "done", then(found, call("contact_ok"), call("submit_reason", "cough"))
    yield (
        "done_changed",
        then(
            found,
            call("contact_changed", "555-010-0123", ""),
            call("submit_reason", LONG_COMPLAINT[:200]),
        ),
    )
    yield "idle_warning", then(find, idle)
    yield "staff", call("staff_exit", DEMO_STAFF_PIN)
    # Intake questionnaires and the insurance question (#18). The demo patient is 64 on the
    # audit's day: PHQ-2, GAD-2, tobacco; one born earlier gets STEADI's yes/no as well.
    reason = then(found, call("contact_ok"), call("submit_reason", "cough"))

    def answer(*codes: str) -> Step:
        # A language no questionnaire is written in goes from the reason to insurance: there
        # is nothing to answer.
        def run(p: Any, _o: MemoryOutbox) -> None:
            for code in codes:
                if p.checkin.state is CheckinState.QUESTIONS:
                    p.answer(code)

        return run

    def older(p: Any, _o: MemoryOutbox) -> None:
        (appointment,) = p.checkin._appointments
        p.checkin.set_appointments((appointment.model_copy(update={
            "birth_date": appointment.birth_date.replace(year=1950),
            "last_screened": (("phq-9", NOW.date()), ("gad-7", NOW.date()),
                              ("tobacco", NOW.date()))}),))

    nearly, never = "LA6571-9", "LA6568-5"
    yield "question_first", reason
    # PHQ-2 positive, then PHQ-9 items 3-7: item 8 is the longest item, in either language.
    yield "question_phq9_longest", then(reason, answer(nearly, nearly, *[never] * 5))
    yield "question_phq9_item9", then(reason, answer(nearly, nearly, *[never] * 6))
    yield "question_after_back", then(reason, answer(nearly, nearly), call("back"))
    yield "question_tobacco", then(reason, answer(never, never, never, never))
    yield "question_steadi", then(older, reason)
    yield "insurance", then(reason, answer(never, never, never, never, "266919005"))
    yield (
        "done_insurance_changed",
        then(reason, answer(never, never, never, never, "266919005"), call("insurance", True)),
    )


def _idle(p: Any, seconds: float) -> None:
    clock = p.checkin._clock  # the audit's own clock (never the wall clock)
    clock.now += timedelta(seconds=seconds)
    p.tick()


def _biomed_states() -> Iterator[tuple[str, Step]]:
    unlocked = call("unlock", DEMO_BIOMED_PIN)
    yield "biomed_locked", _nothing
    yield "biomed_wrong_pin", call("unlock", "9999")
    yield "biomed_locked_out", then(*(call("unlock", "9999") for _ in range(5)))
    yield "biomed_devices", unlocked
    yield "biomed_unbind_confirm", then(unlocked, call("unbind", "cuff"))
    yield "biomed_unbound", then(unlocked, call("unbind", "cuff"), call("unbind_confirmed"))
    yield "biomed_bound", then(unlocked, call("bind", "scale"))
    yield "biomed_test", then(unlocked, call("test", "cuff"))
    yield "biomed_settings", then(unlocked, call("open_settings"))
    yield "biomed_exported", then(unlocked, call("open_settings"), call("export"))
    yield "biomed_devices_exported", then(unlocked, call("export"), call("dismiss_message"))
    yield "biomed_scanned", then(unlocked, call("scan_bluetooth"))

    def nothing_bound(p: Any, _o: MemoryOutbox) -> None:
        p.port.rows = ()
        p.port._bound = ()
        p.refresh()

    yield "biomed_no_devices", then(unlocked, nothing_bound)

    def test_reading(p: Any, _o: MemoryOutbox) -> None:
        from station.app.demo_ui import demo_test_reading

        reading = demo_test_reading("and-ua-651ble", random.Random(1))  # noqa: S311
        p.test_reading("cuff", reading)

    yield "biomed_test_reading", then(unlocked, call("test", "cuff"), test_reading)


def states() -> list[State]:
    out = []
    for mode, found in (("exam", _exam_states()), ("biomed", _biomed_states())):
        for name, setup in found:
            for language in STAFF_CODES:
                if language == "en" or name in STAFF_STATES_TRANSLATED:
                    out.append(State(f"{mode}/{name}", mode, setup, language))
    asked_in = question_languages()
    for name, setup in _lobby_states():
        for language in LOBBY_LANGUAGES:
            if name.startswith("question_") and language not in asked_in:
                continue  # no questionnaire in it: its lobby never shows a question
            for large in (False, True):
                out.append(State(f"lobby/{name}", "lobby", setup, language, large))
    return out


def question_languages() -> frozenset[str]:
    """The languages some intake questionnaire is written in (the others skip them all)."""
    library = load_library()
    return frozenset(
        code
        for code in LOBBY_LANGUAGES
        if any(i.speaks(code) for i in library.instruments.values())
    )


def run_state(state: State, size: tuple[int, int]) -> list[dict[str, str]]:
    """Render one state on the (already open) Kivy window; its violations."""
    from kivy.base import EventLoop
    from kivy.core.window import Window

    from station.ui.app import StationUI
    from station.ui.audit import audit
    from station.ui.theme import theme

    Window.size = size
    clock = _Clock()
    outbox = MemoryOutbox()
    # Staff screens in the station's language; the lobby's in the patient's choice.
    station_language = "en" if state.mode == "lobby" else state.language
    presenter = build_presenter(state.mode, clock=clock, outbox=outbox, language=station_language)
    if state.mode == "lobby":
        presenter.set_language(state.language)
        if state.large_text:
            presenter.toggle_large_text()
    ui = StationUI(state.mode, presenter, tick_interval_s=3600)
    Window.add_widget(ui.root)
    try:
        state.setup(presenter, outbox)
        ui.redraw()
        for _ in range(3):
            EventLoop.idle()
        if getattr(presenter, "_audit_changing", False):
            ui.screen.changing = True
            for _ in range(2):
                EventLoop.idle()
        return [v.as_dict() for v in audit(ui.root, size)]
    finally:
        ui.close()
        theme.set_high_contrast(False)


def run_audit(
    write: Callable[[str], None] = print, complain: Callable[[str], None] | None = None
) -> int:
    """Every state at every size: one JSON line each, then a summary; 1 on any violation or
    any state that could not be rendered (said with its reason, never a silent exit 1)."""
    total = bad = failed = 0
    for state in states():
        for size in SIZES:
            line: dict[str, object] = {
                "state": state.name,
                "mode": state.mode,
                "size": f"{size[0]}x{size[1]}",
                "language": state.language,
                "large_text": state.large_text,
            }
            try:
                violations = run_state(state, size)
            except Exception as exc:  # a broken state is reported; the others still run
                failed += 1
                reason = f"{type(exc).__name__}: {exc}"
                line.update(error=reason, violations=[])
                if complain is not None:
                    complain(
                        f"station ui --audit: state {state.name} at {line['size']} "
                        f"({state.language}{', large text' if state.large_text else ''}) "
                        f"could not be rendered: {reason}\n"
                        + "".join(traceback.format_exception(exc))
                    )
            else:
                bad += bool(violations)
                line["violations"] = violations
            total += 1
            write(json.dumps(line, ensure_ascii=False))
    summary: dict[str, int] = {"states": total, "with_violations": bad}
    if failed:
        summary["failed"] = failed
    write(json.dumps({"summary": summary}))
    return 1 if bad or failed else 0
