"""MA rooming workflow: every transition, every illegal intent, every safety refusal."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta

import pytest

from station.config import DisplaySection
from station.guard import TrayReason
from station.manual_entry import display_value, manual_reading
from station.models import BodyHeight, Flag, Kind, Method, Mode, RespiratoryRate, Temperature
from station.rooming import Rooming
from station.rooming_data import (
    TRANSITIONS,
    AlertRequest,
    Complaint,
    EntrySource,
    MedicationReview,
    MedicationStatus,
    Onset,
    Refusal,
    RoomingEvent,
    RoomingRecord,
    RoomingState,
    TrayItem,
    VitalEntry,
)
from station.rooming_record import record_to_submission
from station.submission import (
    CriticalAcknowledgement,
    MedicationReviewStatus,
    MedicationUse,
    PatientIdentifiers,
    Submission,
    SubmittedMedication,
    SubmittedReading,
)
from station.submission import MedicationReview as SubmittedMedicationReview
from station.units import Unit, bmi_kg_m2, fahrenheit_to_celsius
from station.validation import ClinicalFlag, Severity, Verdict, validate
from station.workflow import IllegalTransitionError, RefusedError
from tests.workflows.helpers import (
    ALPHA,
    BOUND,
    BRAVO,
    CREDENTIALS,
    T0,
    FakeClock,
    bp,
    cuff,
    offer,
    review_lists,
    spo2,
    temp,
    weight,
)

S, E = RoomingState, RoomingEvent


def make(clock: FakeClock | None = None) -> tuple[Rooming, FakeClock]:
    clock = clock or FakeClock()
    rooming = Rooming(
        clock=clock, credentials=CREDENTIALS, idle_signout_s=300, bound_devices=BOUND
    )
    rooming.set_schedule((BRAVO, ALPHA))
    return rooming, clock


def drive_to(state: RoomingState) -> tuple[Rooming, FakeClock]:
    """A rooming in `state`, reached by the ordinary path."""
    rooming, clock = make()
    steps: dict[RoomingState, list[Callable[[], object]]] = {
        S.SIGNED_OUT: [],
        S.SIGNED_IN: [lambda: rooming.sign_in("BADGE-0042")],
        S.PATIENT_PICKED: [lambda: rooming.pick_patient(ALPHA.appointment_id)],
        S.VITALS: [rooming.confirm_identifiers],
        S.COMPLAINT: [lambda: rooming.go(E.TO_COMPLAINT)],
        S.REVIEW: [lambda: rooming.go(E.TO_REVIEW)],
        S.SENT: [lambda: offer(rooming, bp(), "cuff"), lambda: review_lists(rooming),
                 rooming.send],
    }
    for target in S:
        for step in steps[target]:
            step()
        if target == state:
            return rooming, clock
    raise AssertionError(state)


# -- the transition table --------------------------------------------------------------


def fire(rooming: Rooming, event: RoomingEvent) -> None:
    """Send one event through the public intent that carries it."""
    if event == E.SIGN_IN:
        rooming.sign_in("BADGE-0042")
    elif event == E.SIGN_OUT:
        rooming.sign_out()
    elif event == E.PICK_PATIENT:
        rooming.pick_patient(ALPHA.appointment_id)
    elif event == E.CONFIRM_IDENTIFIERS:
        rooming.confirm_identifiers()
    elif event == E.NOT_THIS_PATIENT:
        rooming.not_this_patient()
    elif event in (E.TO_VITALS, E.TO_COMPLAINT, E.TO_REVIEW):
        rooming.go(event)
    elif event == E.SEND:
        offer(rooming, bp(), "cuff")
        review_lists(rooming)
        rooming.send()
    elif event == E.NEXT_PATIENT:
        rooming.next_patient()
    elif event == E.ENTER_PATIENT:
        rooming.enter_patient("ZZTEST", "Kilo", ALPHA.birth_date.replace(year=1961))
    elif event == E.RESUME_PARKED:
        raise AssertionError("fired only inside sign_in")


PUBLIC_TRANSITIONS = [(s, e, t) for (s, e), t in TRANSITIONS.items() if e != E.RESUME_PARKED]


@pytest.mark.parametrize(("state", "event", "target"), PUBLIC_TRANSITIONS)
def test_every_transition_in_the_table(
    state: RoomingState, event: RoomingEvent, target: RoomingState
) -> None:
    rooming, _ = drive_to(state)
    fire(rooming, event)
    assert rooming.state == target


ILLEGAL = [
    (s, e)
    for s in S
    for e in E
    if (s, e) not in TRANSITIONS
    and e != E.RESUME_PARKED
    # A refusal, not the table, answers these (tested below).
    and not (e == E.SEND and s in (S.VITALS, S.COMPLAINT))
]


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_every_illegal_transition_raises_and_changes_nothing(
    state: RoomingState, event: RoomingEvent
) -> None:
    rooming, _ = drive_to(state)
    with pytest.raises((IllegalTransitionError, RefusedError)):
        fire(rooming, event)
    assert rooming.state == state


def test_illegal_transition_message_names_what_is_allowed() -> None:
    rooming, _ = drive_to(S.PATIENT_PICKED)
    with pytest.raises(IllegalTransitionError) as info:
        rooming.go(E.TO_REVIEW)
    assert str(info.value) == (
        "cannot to_review while patient_picked; allowed here: "
        "confirm_identifiers, not_this_patient, sign_out"
    )


# -- sign in / out -------------------------------------------------------------------------


def test_sign_in_with_badge_or_pin_and_unknown_credential_refused() -> None:
    rooming, _ = make()
    with pytest.raises(RefusedError) as info:
        rooming.sign_in("BADGE-9999")
    assert info.value.reason == Refusal.UNKNOWN_CREDENTIAL
    assert (rooming.state, rooming.ma_id) == (S.SIGNED_OUT, None)
    rooming.sign_in(" 4321\n")  # a HID badge reader types a trailing newline
    assert rooming.ma_id == "ma-042"
    assert rooming.state == S.SIGNED_IN


def test_auto_sign_out_after_inactivity_with_the_clock_passed_in() -> None:
    rooming, clock = drive_to(S.SIGNED_IN)
    clock.advance(299)
    assert rooming.tick() is False and rooming.state == S.SIGNED_IN
    rooming.pick_patient(ALPHA.appointment_id)  # activity resets the timer
    clock.advance(299)
    assert rooming.tick() is False
    clock.advance(1)
    assert rooming.tick() is True
    assert (rooming.state, rooming.ma_id) == (S.SIGNED_OUT, None)
    assert rooming.tick() is False  # already out


def test_device_readings_do_not_count_as_activity() -> None:
    rooming, clock = drive_to(S.VITALS)
    clock.advance(200)
    offer(rooming, bp(), "cuff")
    clock.advance(100)
    assert rooming.tick() is True


def test_sign_out_mid_rooming_parks_readings_and_next_sign_in_reconfirms() -> None:
    rooming, _ = drive_to(S.VITALS)
    entry = offer(rooming, bp(), "cuff")
    rooming.sign_out()
    assert rooming.state == S.SIGNED_OUT
    rooming.sign_in("BADGE-0077")
    # Identifiers are shown again to whoever signs in; the readings are still there.
    assert (rooming.state, rooming.ma_id, rooming.patient) == (S.PATIENT_PICKED, "ma-077", ALPHA)
    assert rooming.entries == (entry,)
    with pytest.raises(RefusedError) as info:
        rooming.send()
    assert info.value.reason == Refusal.IDENTIFIERS_NOT_CONFIRMED
    rooming.confirm_identifiers()
    rooming.go(E.TO_REVIEW)
    review_lists(rooming)
    assert rooming.send().ma_id == "ma-077"


def test_parked_rooming_blocks_another_patient_until_discarded() -> None:
    rooming, _ = drive_to(S.VITALS)
    offer(rooming, bp(), "cuff")
    rooming.sign_out()
    rooming.sign_in("BADGE-0042")
    rooming.not_this_patient()
    assert rooming.parked == ALPHA
    with pytest.raises(RefusedError) as info:
        rooming.pick_patient(BRAVO.appointment_id)
    assert info.value.reason == Refusal.PARKED_ROOMING
    assert rooming.state == S.SIGNED_IN
    rooming.pick_patient(ALPHA.appointment_id)  # the same patient resumes it
    assert len(rooming.entries) == 1
    rooming.not_this_patient()
    rooming.discard_parked()
    assert rooming.parked is None
    rooming.pick_patient(BRAVO.appointment_id)
    assert (rooming.patient, rooming.entries) == (BRAVO, ())


def test_discard_parked_without_one_is_refused() -> None:
    rooming, _ = drive_to(S.SIGNED_IN)
    with pytest.raises(RefusedError) as info:
        rooming.discard_parked()
    assert info.value.reason == Refusal.UNKNOWN_ITEM


def test_sign_out_before_any_reading_keeps_nothing() -> None:
    rooming, _ = drive_to(S.VITALS)
    rooming.sign_out()
    rooming.sign_in("BADGE-0042")
    assert (rooming.state, rooming.patient) == (S.SIGNED_IN, None)


# -- patient ---------------------------------------------------------------------------------


def test_schedule_sorted_by_time_and_unknown_appointment_refused() -> None:
    rooming, _ = drive_to(S.SIGNED_IN)
    assert [p.appointment_id for p in rooming.schedule] == ["APT-TEST-0001", "APT-TEST-0002"]
    with pytest.raises(RefusedError) as info:
        rooming.pick_patient("APT-NOPE")
    assert info.value.reason == Refusal.NOT_ON_SCHEDULE
    assert rooming.state == S.SIGNED_IN


def test_not_this_patient_returns_to_the_list_with_nothing_kept() -> None:
    rooming, _ = drive_to(S.PATIENT_PICKED)
    rooming.not_this_patient()
    assert (rooming.state, rooming.patient) == (S.SIGNED_IN, None)


# -- readings ----------------------------------------------------------------------------------


def test_device_reading_fills_the_tile_with_device_and_time() -> None:
    rooming, clock = drive_to(S.VITALS)
    clock.advance(30)
    entry = offer(rooming, bp(), "A&D UA-651BLE")
    assert entry == VitalEntry(
        entry_id=1,
        reading=bp(),
        verdict=Verdict(status="accepted"),
        source=EntrySource.DEVICE,
        device="A&D UA-651BLE",
        received_at=T0 + timedelta(seconds=30),
    )
    assert rooming.latest(Kind.BLOOD_PRESSURE) == entry


def test_reading_before_identifiers_confirmed_goes_to_the_tray() -> None:
    rooming, _ = drive_to(S.PATIENT_PICKED)
    item = offer(rooming, spo2(), "oximeter")
    assert item == TrayItem(
        item_id=1,
        reading=spo2(),
        device="oximeter",
        reason="no patient was being roomed when it arrived",
        received_at=T0,
        reasons=(TrayReason.NO_SESSION,),
    )
    assert rooming.entries == ()


def test_guard_held_reading_goes_to_the_tray_with_its_reason() -> None:
    rooming, _ = drive_to(S.VITALS)
    offer(rooming, bp(flags=(Flag.FROM_STORAGE,)), "cuff")
    assert [(i.reason, i.device, i.reasons) for i in rooming.tray] == [
        ("the device says it is a stored (earlier) reading", "cuff", (TrayReason.FROM_STORAGE,))
    ]
    assert rooming.entries == ()


def test_tray_accept_is_recorded_as_a_deliberate_choice() -> None:
    rooming, _ = drive_to(S.VITALS)
    stored = bp(flags=(Flag.FROM_STORAGE,))
    item = offer(rooming, stored, "cuff")
    assert isinstance(item, TrayItem)
    entry = rooming.accept_tray(item.item_id)
    assert (entry.source, entry.tray_reason, entry.reading) == (
        EntrySource.TRAY,
        "the device says it is a stored (earlier) reading",
        stored,
    )
    assert rooming.tray == ()


def test_tray_accept_to_nobody_is_refused_and_keeps_the_item() -> None:
    rooming, _ = drive_to(S.SIGNED_IN)
    item = offer(rooming, bp(), "cuff")
    assert isinstance(item, TrayItem)
    with pytest.raises(RefusedError) as info:
        rooming.accept_tray(item.item_id)
    assert info.value.reason == Refusal.NO_PATIENT
    assert rooming.tray == (item,)


def test_tray_accept_before_identifiers_confirmed_is_refused() -> None:
    rooming, _ = drive_to(S.PATIENT_PICKED)
    item = offer(rooming, bp(), "cuff")
    assert isinstance(item, TrayItem)
    with pytest.raises(RefusedError) as info:
        rooming.accept_tray(item.item_id)
    assert info.value.reason == Refusal.IDENTIFIERS_NOT_CONFIRMED
    assert rooming.tray == (item,)


def test_tray_discard_and_unknown_item() -> None:
    rooming, _ = drive_to(S.SIGNED_IN)
    item = offer(rooming, bp(), "cuff")
    assert isinstance(item, TrayItem)
    rooming.discard_tray(item.item_id)
    assert rooming.tray == ()
    with pytest.raises(RefusedError) as info:
        rooming.discard_tray(item.item_id)
    assert info.value.reason == Refusal.UNKNOWN_ITEM


def test_retake_keeps_both_readings_and_the_tile_shows_the_newest() -> None:
    rooming, _ = drive_to(S.VITALS)
    loose = bp(150, 95, flags=(Flag.CUFF_TOO_LOOSE,))
    first = offer(rooming, loose, "cuff")
    assert isinstance(first, VitalEntry)
    assert first.verdict.flags[0].message == "cuff may be loose — retake?"
    second = offer(rooming, bp(), "cuff")
    assert rooming.entries == (first, second)
    assert rooming.latest(Kind.BLOOD_PRESSURE) == second


def test_rejected_device_reading_is_kept_but_the_tile_prefers_an_accepted_one() -> None:
    rooming, _ = drive_to(S.VITALS)
    good = offer(rooming, spo2(97), "ox")
    bad = offer(rooming, spo2(0), "ox")  # not possible: implausible
    assert isinstance(bad, VitalEntry)
    assert bad.verdict.status == "rejected"
    assert bad.reading.flags == (Flag.IMPLAUSIBLE,)
    assert rooming.latest(Kind.PULSE_OXIMETRY) == good


def test_live_cuff_pressure_moves_the_gauge_only() -> None:
    rooming, _ = drive_to(S.VITALS)
    assert offer(rooming, cuff(142.5), "cuff") is None
    assert rooming.live_cuff_mmhg == 142.5
    assert rooming.entries == ()
    offer(rooming, bp(), "cuff")
    assert rooming.live_cuff_mmhg is None


# -- manual entry ------------------------------------------------------------------------------


def test_manual_entry_in_display_units_is_stored_canonical_and_marked_manual() -> None:
    rooming, _ = drive_to(S.VITALS)
    entry = rooming.enter_manual(Kind.TEMPERATURE, {"temperature_c": 98.6})
    assert entry.reading == Temperature(
        temperature_c=fahrenheit_to_celsius(98.6),
        unit_as_sent=Unit.FAHRENHEIT,
        codec="manual",
        codec_version="1",
        method=Method.MANUAL,
    )
    assert (entry.source, entry.device, entry.verdict) == (
        EntrySource.MANUAL,
        "manual",
        Verdict(status="accepted"),
    )


def test_manual_entry_is_validated_the_same_way_and_a_typo_attaches_nothing() -> None:
    rooming, _ = drive_to(S.VITALS)
    with pytest.raises(RefusedError) as info:
        rooming.enter_manual(Kind.RESPIRATORY_RATE, {"respiratory_rate_per_min": 160})
    assert info.value.reason == Refusal.INVALID_ENTRY
    assert info.value.details == ("respiratory rate 160 /min is not possible: expected 1–120 /min",)
    assert rooming.entries == ()
    ok = rooming.enter_manual(Kind.RESPIRATORY_RATE, {"respiratory_rate_per_min": 16})
    assert ok.reading == RespiratoryRate(
        respiratory_rate_per_min=16,
        unit_as_sent=Unit.PER_MIN,
        codec="manual",
        codec_version="1",
        method=Method.MANUAL,
    )
    assert ok.verdict == validate(ok.reading, age_years=ALPHA.age_years(T0.date()))


def test_manual_entry_without_a_confirmed_patient_is_refused() -> None:
    rooming, _ = drive_to(S.PATIENT_PICKED)
    with pytest.raises(RefusedError) as info:
        rooming.enter_manual(Kind.PAIN_SEVERITY, {"pain_score": 3})
    assert info.value.reason == Refusal.IDENTIFIERS_NOT_CONFIRMED


def test_manual_entry_of_a_kind_not_typed_or_with_wrong_fields() -> None:
    display = DisplaySection()
    with pytest.raises(RefusedError) as info:
        manual_reading(Kind.CUFF_PRESSURE, {"cuff_pressure_mmhg": 100}, display)
    assert info.value.reason == Refusal.NOT_MANUAL
    with pytest.raises(RefusedError) as info:
        manual_reading(Kind.BLOOD_PRESSURE, {"systolic_mmhg": 120, "weight_kg": 3}, display)
    assert info.value.details == ("missing diastolic_mmhg", "unexpected weight_kg")


def test_manual_height_in_inches_and_bmi_computed() -> None:
    rooming, _ = drive_to(S.VITALS)
    offer(rooming, weight(80.0, None), "scale")
    assert rooming.bmi_kg_m2() is None  # no height yet
    entry = rooming.enter_manual(Kind.BODY_HEIGHT, {"height_cm": 70})
    assert entry.reading == BodyHeight(
        height_cm=177.8,
        unit_as_sent=Unit.INCH,
        codec="manual",
        codec_version="1",
        method=Method.MANUAL,
    )
    assert rooming.bmi_kg_m2() == pytest.approx(80.0 / 1.778**2)


def test_bmi_from_the_scale_height_and_display_units() -> None:
    rooming, _ = drive_to(S.VITALS)
    offer(rooming, weight(80.0, 180.0), "scale")
    assert rooming.bmi_kg_m2() == pytest.approx(24.691358)
    lb = DisplaySection()
    metric = DisplaySection(weight_unit="kg", temperature_unit="C", height_unit="cm")
    assert display_value("weight_kg", 80.0, lb) == (80.0 / 0.45359237, "lb")
    assert display_value("weight_kg", 80.0, metric) == (80.0, "kg")
    assert display_value("temperature_c", 37.0, lb) == (37.0 * 9 / 5 + 32, "°F")
    assert display_value("height_cm", 254.0, lb) == (100.0, "in")
    assert display_value("spo2_percent", 97.0, lb) == (97.0, "%")


def test_manual_entry_in_metric_display() -> None:
    metric = DisplaySection(weight_unit="kg", temperature_unit="C", height_unit="cm")
    reading = manual_reading(Kind.BODY_WEIGHT, {"weight_kg": 72.5}, metric, Mode.DEMO)
    assert reading.model_dump(include={"weight_kg", "unit_as_sent", "mode"}) == {
        "weight_kg": 72.5,
        "unit_as_sent": Unit.KG,
        "mode": Mode.DEMO,
    }


# -- critical values and alerts -----------------------------------------------------------------


def test_send_refused_until_every_critical_value_is_acknowledged_and_ack_raises_an_alert() -> None:
    rooming, clock = drive_to(S.VITALS)
    crisis = offer(rooming, bp(186, 92), "cuff")
    low = offer(rooming, spo2(88), "ox")
    assert isinstance(crisis, VitalEntry) and isinstance(low, VitalEntry)
    rooming.go(E.TO_REVIEW)
    with pytest.raises(RefusedError) as info:
        rooming.send()
    assert info.value.reason == Refusal.CRITICAL_NOT_ACKNOWLEDGED
    assert rooming.state == S.REVIEW
    clock.advance(5)
    alert = rooming.acknowledge_critical(crisis.entry_id)
    assert alert == AlertRequest(
        appointment_id="APT-TEST-0001",
        code="hypertensive_crisis",
        message="systolic 180 or above: hypertensive crisis — retake now and tell the clinician",
        entry_id=crisis.entry_id,
        acknowledged_by="ma-042",
        acknowledged_at=T0 + timedelta(seconds=5),
    )
    assert rooming.unacknowledged_critical() == (low,)
    with pytest.raises(RefusedError):
        rooming.send()
    rooming.acknowledge_critical(low.entry_id)
    assert [a.code for a in rooming.take_alerts()] == ["hypertensive_crisis", "hypoxaemia"]
    assert rooming.take_alerts() == ()  # each alert is handed out once
    review_lists(rooming)
    record = rooming.send()
    assert [e.acknowledged for e in record.entries] == [True, True]


def test_acknowledging_what_is_not_critical_or_unknown_is_refused() -> None:
    rooming, _ = drive_to(S.VITALS)
    normal = offer(rooming, bp(), "cuff")
    assert isinstance(normal, VitalEntry)
    with pytest.raises(RefusedError) as info:
        rooming.acknowledge_critical(normal.entry_id)
    assert info.value.reason == Refusal.NOT_CRITICAL
    with pytest.raises(RefusedError) as info:
        rooming.acknowledge_critical(999)
    assert info.value.reason == Refusal.UNKNOWN_ITEM


# -- complaint and medications ----------------------------------------------------------------


def test_complaint_prefilled_from_checkin_pick_list_free_text_and_onset() -> None:
    rooming, _ = drive_to(S.COMPLAINT)
    assert rooming.complaint == Complaint(reason_for_visit="follow-up blood pressure")
    rooming.toggle_complaint("cough")
    rooming.toggle_complaint("fever")
    rooming.toggle_complaint("cough")
    rooming.set_complaint(free_text="  worse at night ", onset=Onset.DAYS)
    assert rooming.complaint == Complaint(
        picks=("fever",),
        free_text="worse at night",
        onset=Onset.DAYS,
        reason_for_visit="follow-up blood pressure",
    )


def test_complaint_text_too_long_or_off_the_list_is_refused_and_nothing_changes() -> None:
    rooming, _ = drive_to(S.COMPLAINT)
    before = rooming.complaint
    with pytest.raises(RefusedError) as info:
        rooming.set_complaint(free_text="x" * 201)
    assert (info.value.reason, info.value.message) == (
        Refusal.TEXT_TOO_LONG,
        "complaint is 201 characters: at most 200",
    )
    with pytest.raises(RefusedError) as info:
        rooming.set_complaint(picks=("broken heart",))
    assert info.value.reason == Refusal.INVALID_ENTRY
    assert rooming.complaint == before


def test_complaint_before_identifiers_confirmed_is_refused() -> None:
    rooming, _ = drive_to(S.PATIENT_PICKED)
    with pytest.raises(RefusedError) as info:
        rooming.set_complaint(free_text="cough")
    assert info.value.reason == Refusal.IDENTIFIERS_NOT_CONFIRMED


def test_medication_review() -> None:
    rooming, _ = drive_to(S.COMPLAINT)
    rooming.set_medication_status(0, MedicationStatus.TAKING)
    rooming.set_medication_status(1, MedicationStatus.NOT_TAKING)
    assert [m.status for m in rooming.medications] == [
        MedicationStatus.TAKING,
        MedicationStatus.NOT_TAKING,
    ]
    with pytest.raises(RefusedError) as info:
        rooming.set_medication_status(2, MedicationStatus.CHANGED)
    assert info.value.reason == Refusal.UNKNOWN_ITEM


# -- send ---------------------------------------------------------------------------------------


def test_send_without_identifiers_confirmed_is_refused() -> None:
    rooming, _ = drive_to(S.PATIENT_PICKED)
    with pytest.raises(RefusedError) as info:
        rooming.send()
    assert info.value.reason == Refusal.IDENTIFIERS_NOT_CONFIRMED
    assert rooming.state == S.PATIENT_PICKED


def test_send_with_nothing_recorded_is_refused() -> None:
    rooming, _ = make()
    rooming.set_schedule((BRAVO,))  # no reason for visit prefilled
    rooming.sign_in("4321")
    rooming.pick_patient(BRAVO.appointment_id)
    rooming.confirm_identifiers()
    rooming.go(E.TO_REVIEW)
    with pytest.raises(RefusedError) as info:
        rooming.send()
    assert info.value.reason == Refusal.NOTHING_TO_SEND


def test_send_from_vitals_goes_through_review_only() -> None:
    rooming, _ = drive_to(S.VITALS)
    offer(rooming, bp(), "cuff")
    review_lists(rooming)
    with pytest.raises(IllegalTransitionError):
        rooming.send()
    assert rooming.state == S.VITALS


def test_a_full_rooming_record_keeps_every_reading_and_wipes_the_session() -> None:
    rooming, clock = make()
    rooming.sign_in("BADGE-0042")
    clock.advance(10)
    rooming.pick_patient(ALPHA.appointment_id)
    clock.advance(5)
    rooming.confirm_identifiers()
    loose = offer(rooming, bp(150, 95, flags=(Flag.CUFF_TOO_LOOSE,)), "cuff")
    retake = offer(rooming, bp(), "cuff")
    ox = offer(rooming, spo2(), "ox")
    thermo = offer(rooming, temp(), "thermo")
    scale = offer(rooming, weight(), "scale")
    pain = rooming.enter_manual(Kind.PAIN_SEVERITY, {"pain_score": 2})
    rooming.go(E.TO_COMPLAINT)
    rooming.toggle_complaint("headache")
    rooming.change_medication(0, new_dose="20 mg daily")
    rooming.set_medication_status(1, MedicationStatus.TAKING)
    rooming.go(E.TO_REVIEW)
    clock.advance(60)
    record = rooming.send()
    assert record == RoomingRecord(
        appointment_id="APT-TEST-0001",
        mrn="TEST100001",
        ma_id="ma-042",
        started_at=T0 + timedelta(seconds=10),
        confirmed_at=T0 + timedelta(seconds=15),
        sent_at=T0 + timedelta(seconds=75),
        entries=(loose, retake, ox, thermo, scale, pain),
        bmi_kg_m2=bmi_kg_m2(80.0, 180.0),
        complaint=Complaint(picks=("headache",), reason_for_visit="follow-up blood pressure"),
        medications=(
            MedicationReview(medication=ALPHA.medications[0], status=MedicationStatus.CHANGED,
                             new_dose="20 mg daily"),
            MedicationReview(medication=ALPHA.medications[1], status=MedicationStatus.TAKING),
        ),
    )
    assert isinstance(loose, VitalEntry)
    assert loose.verdict.flags == (
        ClinicalFlag(
            code="retake_cuff_loose",
            severity=Severity.WARNING,
            message="cuff may be loose — retake?",
        ),
    )
    # The patient's data has left the station's memory; the list no longer offers them.
    assert (rooming.state, rooming.patient, rooming.entries) == (S.SENT, None, ())
    assert [p.appointment_id for p in rooming.schedule] == ["APT-TEST-0002"]
    rooming.next_patient()
    assert (rooming.state, rooming.last_record) == (S.SIGNED_IN, None)


def test_go_is_only_for_navigation() -> None:
    rooming, _ = drive_to(S.VITALS)
    with pytest.raises(ValueError, match="go\\(\\) is for navigation, not send"):
        rooming.go(E.SEND)


def test_record_to_submission_sends_accepted_readings_acks_and_medication_review() -> None:
    rooming, clock = drive_to(S.VITALS)
    offer(rooming, bp(150, 95, flags=(Flag.CUFF_TOO_LOOSE,)), "cuff")
    crisis = offer(rooming, bp(186, 92), "cuff")
    offer(rooming, spo2(0), "ox")  # rejected: kept on screen, never sent
    pain = rooming.enter_manual(Kind.PAIN_SEVERITY, {"pain_score": 4})
    assert isinstance(crisis, VitalEntry)
    rooming.acknowledge_critical(crisis.entry_id)
    rooming.go(E.TO_COMPLAINT)
    rooming.set_complaint(picks=("headache",), free_text="since Monday", onset=Onset.DAYS)
    rooming.set_medication_status(0, MedicationStatus.TAKING)
    rooming.set_medication_status(1, MedicationStatus.NOT_TAKING)
    rooming.go(E.TO_REVIEW)
    clock.advance(30)
    record = rooming.send()
    utc = T0.replace(tzinfo=UTC)
    assert record_to_submission(record, ALPHA) == Submission(
        appointment_id="APT-TEST-0001",
        patient=PatientIdentifiers(
            mrn="TEST100001",
            family_name="ZZTEST",
            given_name="Alpha",
            birth_date=ALPHA.birth_date,
        ),
        ma_id="ma-042",
        readings=tuple(
            SubmittedReading(
                reading=e.reading,
                verdict=e.verdict,
                accepted_at=utc,
                device_id=device,
            )
            for e, device in zip(
                (record.entries[0], record.entries[1], pain), ("cuff", "cuff", None), strict=True
            )
        ),
        chief_complaint="headache; since Monday",
        reason_for_visit="follow-up blood pressure",
        onset="1–6 days",
        medication_review=SubmittedMedicationReview(
            status=MedicationReviewStatus.REVIEWED_CHANGES_REPORTED,
            note="aspirin: not taking",
        ),
        critical_acknowledgements=(
            CriticalAcknowledgement(
                code="hypertensive_crisis",
                kind=Kind.BLOOD_PRESSURE,
                acknowledged_by="ma-042",
                acknowledged_at=utc,
            ),
        ),
        completed_at=utc + timedelta(seconds=30),
        medications=(
            SubmittedMedication(name="lisinopril", dose="10 mg daily", use=MedicationUse.TAKING),
            SubmittedMedication(name="aspirin", use=MedicationUse.NOT_TAKING),
        ),
    )


def test_an_outbox_that_cannot_store_leaves_the_rooming_open_to_send_again() -> None:
    # "Bad input ... loses nothing accepted" (brief; design.md: a message stays in the outbox
    # until the practice acks it — so a rooming leaves the station only into the outbox).
    rooming, _ = drive_to(S.VITALS)
    offer(rooming, bp(), "cuff")
    fire(rooming, E.TO_REVIEW)
    review_lists(rooming)

    def full_disk(_record: object) -> None:
        raise OSError(28, "No space left on device")  # errno ENOSPC (Linux errno.h)

    with pytest.raises(OSError):
        rooming.send(full_disk)
    assert (rooming.state, len(rooming.entries)) == (S.REVIEW, 1)
    stored: list[object] = []
    record = rooming.send(stored.append)
    assert stored == [record] and rooming.state is S.SENT
