"""The exam presenter over the rooming, whose wrong-patient guard judges every reading (no Kivy)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from station.app.demo_ui import demo_schedule
from station.config import GuardSection
from station.models import Flag
from station.rooming import Rooming
from station.rooming_data import MedicationStatus, TrayItem
from station.ui.ports import MemoryOutbox
from station.ui.presenters import ExamPresenter
from tests.workflows.helpers import FakeClock, bp, spo2

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def presenter() -> tuple[ExamPresenter, FakeClock]:
    clock = FakeClock(NOW)
    rooming = Rooming(
        clock=clock,
        credentials={"1234": "ma-1"},
        bound_devices=("cuff", "oximeter"),
        guard_policy=GuardSection(connect_burst_window_s=5),
    )
    rooming.set_schedule(demo_schedule(NOW.date()))
    outbox = MemoryOutbox()
    exam = ExamPresenter(rooming, outbox, outbox)
    exam.sign_in("1234")
    exam.pick("APT-DEMO-0001")
    clock.advance(10)
    exam.confirm()
    return exam, clock


def test_fresh_reading_attaches_and_unbound_device_is_ignored() -> None:
    exam, clock = presenter()
    clock.advance(30)
    reading = bp().model_copy(
        update={"measured_at": (NOW + timedelta(seconds=35)).replace(tzinfo=None)}
    )
    exam.device_reading(reading, "cuff")
    exam.device_reading(spo2(), "oximeter-next-room")
    assert [(e.reading, e.device) for e in exam.rooming.entries] == [(reading, "cuff")]
    assert exam.rooming.tray == ()


def test_stored_and_old_readings_go_to_the_tray_with_the_guards_words() -> None:
    exam, clock = presenter()
    clock.advance(30)
    stored = bp().model_copy(update={"flags": (Flag.FROM_STORAGE,), "measured_at": None})
    old = bp().model_copy(update={"measured_at": (NOW - timedelta(hours=3)).replace(tzinfo=None)})
    exam.device_reading(stored, "cuff")
    exam.device_reading(old, "cuff")
    assert exam.rooming.entries == ()
    assert [(i.reading, i.reason) for i in exam.rooming.tray] == [
        (stored, "the device says it is a stored (earlier) reading"),
        (old, "measured 3 h before this rooming — same patient?"),
    ]


def test_connect_burst_is_held_then_sent_to_the_tray_when_the_window_closes() -> None:
    exam, clock = presenter()
    exam.device_connected("cuff")
    at = (NOW + timedelta(seconds=10)).replace(tzinfo=None)
    first = bp(130, 85).model_copy(update={"measured_at": at})
    second = bp(128, 84).model_copy(update={"measured_at": at})
    exam.device_reading(first, "cuff")
    exam.device_reading(second, "cuff")
    assert (exam.rooming.entries, exam.rooming.tray) == ((), ())  # held, not shown yet
    clock.advance(5)
    exam.tick()
    tray = exam.rooming.tray
    assert all(isinstance(i, TrayItem) for i in tray)
    assert [i.reading for i in tray] == [first, second]
    assert {i.reason for i in tray} == {
        "several readings arrived at once when the device connected (stored readings being sent)"
    }


def test_after_send_the_guard_session_is_closed() -> None:
    exam, clock = presenter()
    clock.advance(5)
    exam.device_reading(spo2(), "oximeter")
    exam.go("review")
    for index, _ in enumerate(exam.rooming.medications):  # #18: reviewed before Send
        exam.set_medication(index, MedicationStatus.TAKING)
    exam.send()
    exam.device_reading(spo2(), "oximeter")
    assert exam.rooming.guard.session is None
    assert [i.reason for i in exam.rooming.tray] == ["no patient was being roomed when it arrived"]
