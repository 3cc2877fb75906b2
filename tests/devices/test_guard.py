"""The wrong-patient guard: stored readings never attach to the current patient."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from station.config import GuardSection
from station.guard import (
    TRAY_REASON_TEXT,
    Attached,
    Held,
    Ignored,
    Live,
    TrayReason,
    Unassigned,
    WrongPatientGuard,
)
from station.models import (
    AnyReading,
    BloodPressure,
    BodyWeight,
    CuffPressure,
    Flag,
    PulseOximetry,
    Temperature,
)
from station.units import Unit

T0 = datetime(2026, 3, 2, 9, 0, 0)
POLICY = GuardSection(clock_skew_s=120, connect_burst_window_s=5)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def bp(**kw: object) -> AnyReading:
    return BloodPressure(
        systolic_mmhg=121.0,
        diastolic_mmhg=79.0,
        unit_as_sent=Unit.MMHG,
        codec="ble:2a35",
        codec_version="1",
        **kw,  # type: ignore[arg-type]
    )


def spo2(**kw: object) -> AnyReading:
    return PulseOximetry(
        spo2_percent=97.0,
        pulse_rate_bpm=71.0,
        unit_as_sent=Unit.PERCENT,
        codec="ble:2a5e",
        codec_version="1",
        **kw,  # type: ignore[arg-type]
    )


def temp(**kw: object) -> AnyReading:
    return Temperature(
        temperature_c=36.8,
        unit_as_sent=Unit.CELSIUS,
        codec="ble:2a1c",
        codec_version="1",
        **kw,  # type: ignore[arg-type]
    )


def weight(**kw: object) -> AnyReading:
    return BodyWeight(
        weight_kg=72.5,
        unit_as_sent=Unit.KG,
        codec="ble:2a9d",
        codec_version="1",
        **kw,  # type: ignore[arg-type]
    )


KINDS = {"cuff": bp, "oximeter": spo2, "thermometer": temp, "scale": weight}


def make_guard() -> tuple[WrongPatientGuard, FakeClock]:
    clock = FakeClock(T0)
    return WrongPatientGuard(clock, bound_device_ids=KINDS, policy=POLICY), clock


@pytest.mark.parametrize("device_id", KINDS)
def test_stored_reading_dumped_on_connect_goes_to_tray_for_each_kind(device_id: str) -> None:
    make = KINDS[device_id]
    guard, clock = make_guard()
    guard.open_session("S1")
    clock.advance(60)
    guard.device_connected(device_id)
    clock.advance(0.2)
    stored = make(flags=(Flag.FROM_STORAGE,), measured_at=T0 - timedelta(days=1))
    assert guard.offer(device_id, stored) == [
        Held(device_id=device_id, release_at=T0 + timedelta(seconds=65))
    ]
    clock.advance(5)
    entry = Unassigned(
        device_id=device_id,
        reading=stored,
        reasons=(TrayReason.FROM_STORAGE, TrayReason.BEFORE_SESSION),
        received_at=T0 + timedelta(seconds=60.2),
    )
    assert guard.flush() == [entry]
    assert entry.describe() == (
        "the device says it is a stored (earlier) reading; "
        "it was measured before this patient's rooming started"
    )


@pytest.mark.parametrize("device_id", KINDS)
def test_burst_of_five_untimed_readings_at_connect_all_go_to_tray(device_id: str) -> None:
    make = KINDS[device_id]
    guard, clock = make_guard()
    guard.open_session("S1")
    guard.device_connected(device_id)
    burst = [make(user_id=i) for i in range(5)]
    for reading in burst:
        clock.advance(0.1)
        outcomes = guard.offer(device_id, reading)
        assert [type(o) for o in outcomes] == [Held]
    clock.advance(5)
    released = guard.flush()
    assert released == [
        Unassigned(device_id=device_id,
                reading=burst[i],
                reasons=(TrayReason.CONNECT_BURST,),
                received_at=T0 + timedelta(seconds=0.1 * (i + 1),
            )
        )
        for i in range(5)
    ]
    assert all(not isinstance(o, Attached) for o in released)


@pytest.mark.parametrize("device_id", KINDS)
def test_fresh_reading_attaches_for_each_kind(device_id: str) -> None:
    make = KINDS[device_id]
    guard, clock = make_guard()
    guard.open_session("S1")
    guard.device_connected(device_id)
    clock.advance(30)
    fresh = make(measured_at=T0 + timedelta(seconds=29))
    assert guard.offer(device_id, fresh) == [
        Attached(
            device_id=device_id,
            session_id="S1",
            reading=fresh,
            received_at=T0 + timedelta(seconds=30),
        )
    ]


def test_single_fresh_reading_right_after_connect_is_held_then_attached() -> None:
    # The usual cuff: it measures, connects, sends one reading. Held for the window, then in.
    guard, clock = make_guard()
    guard.open_session("S1")
    clock.advance(40)
    guard.device_connected("cuff")
    clock.advance(1)
    reading = bp(measured_at=T0 + timedelta(seconds=39))
    assert guard.offer("cuff", reading) == [
        Held(device_id="cuff", release_at=T0 + timedelta(seconds=45))
    ]
    clock.advance(3.9)
    assert guard.flush() == []
    clock.advance(0.1)
    assert guard.flush() == [
        Attached(
            device_id="cuff",
            session_id="S1",
            reading=reading,
            received_at=T0 + timedelta(seconds=41),
        )
    ]


def test_no_session_open_goes_to_tray() -> None:
    guard, _clock = make_guard()
    reading = spo2()
    [out] = guard.offer("oximeter", reading)
    assert out == Unassigned(device_id="oximeter",
            reading=reading,
            reasons=(TrayReason.NO_SESSION,),
            received_at=T0,
        )


def test_unbound_device_never_enters() -> None:
    guard, _clock = make_guard()
    guard.open_session("S1")
    assert guard.offer("cuff-next-door", bp()) == [
        Ignored(device_id="cuff-next-door", why="device is not bound to this station")
    ]


@pytest.mark.parametrize(
    ("measured_offset_s", "expected"),
    [
        (-119, ()),  # device clock a little behind: within the 2 min skew
        (-121, (TrayReason.BEFORE_SESSION,)),
        (30 + 119, ()),  # a little ahead of the station
        (30 + 121, (TrayReason.CLOCK_AHEAD,)),
    ],
)
def test_clock_skew_tolerated_within_policy(
    measured_offset_s: float, expected: tuple[TrayReason, ...]
) -> None:
    guard, clock = make_guard()
    guard.open_session("S1")
    clock.advance(30)
    reading = temp(measured_at=T0 + timedelta(seconds=measured_offset_s))
    [out] = guard.offer("thermometer", reading)
    if expected:
        assert isinstance(out, Unassigned)
        assert out.reasons == expected
    else:
        assert out == Attached(
            device_id="thermometer",
            session_id="S1",
            reading=reading,
            received_at=T0 + timedelta(seconds=30),
        )


def test_clock_not_set_goes_to_tray_even_with_a_plausible_time() -> None:
    guard, clock = make_guard()
    guard.open_session("S1")
    clock.advance(10)
    reading = spo2(flags=(Flag.CLOCK_NOT_SET,), measured_at=T0 + timedelta(seconds=9))
    [out] = guard.offer("oximeter", reading)
    assert isinstance(out, Unassigned)
    assert out.reasons == (TrayReason.CLOCK_NOT_SET,)


def test_aware_station_clock_and_naive_device_clock_compare_in_station_zone() -> None:
    from datetime import UTC

    clock = FakeClock(T0.replace(tzinfo=UTC))
    guard = WrongPatientGuard(clock, bound_device_ids=["scale"], policy=POLICY)
    guard.open_session("S1")
    clock.advance(10)
    [out] = guard.offer("scale", weight(measured_at=T0 - timedelta(minutes=10)))
    assert isinstance(out, Unassigned)
    assert out.reasons == (TrayReason.BEFORE_SESSION,)


def test_cuff_pressure_is_live_only() -> None:
    guard, _clock = make_guard()
    guard.open_session("S1")
    live = CuffPressure(
        cuff_pressure_mmhg=88.5, unit_as_sent=Unit.MMHG, codec="ble:2a36", codec_version="1"
    )
    assert guard.offer("cuff", live) == [Live(device_id="cuff", reading=live)]


def test_every_reason_has_words_for_the_ma() -> None:
    assert set(TRAY_REASON_TEXT) == set(TrayReason)


def test_two_readings_at_connect_are_already_a_burst() -> None:
    # design.md: "one of a burst of several readings at connect goes to an 'unassigned' tray".
    # A cuff that measured sends one reading when it connects; two mean stored ones came too.
    guard, clock = make_guard()
    guard.open_session("S1")
    clock.advance(30)
    guard.device_connected("cuff")
    first, second = bp(user_id=1), bp(user_id=2)
    guard.offer("cuff", first)
    guard.offer("cuff", second)
    clock.advance(5)
    released = guard.flush()
    assert [(o.reading, o.reasons) for o in released if isinstance(o, Unassigned)] == [
        (first, (TrayReason.CONNECT_BURST,)),
        (second, (TrayReason.CONNECT_BURST,)),
    ]
    assert len(released) == 2


def test_a_reading_that_arrived_before_the_session_started_does_not_attach() -> None:
    # The reading was handed over (received) at T0 + 10 s; the MA confirmed at T0 + 20 s. It
    # was on its way while the patient changed: it belongs to no one on screen.
    guard, clock = make_guard()
    clock.advance(20)
    guard.open_session("S2")
    reading = spo2()
    [out] = guard.offer("oximeter", reading, received_at=T0 + timedelta(seconds=10))
    assert out == Unassigned(
        device_id="oximeter",
        reading=reading,
        reasons=(TrayReason.ARRIVED_BEFORE_SESSION,),
        received_at=T0 + timedelta(seconds=10),
    )
