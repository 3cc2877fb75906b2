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
        measured_before_s=86_400.0,  # a day before the session opened at T0
    )
    assert guard.flush() == [entry]
    assert entry.describe() == (
        "the device says it is a stored (earlier) reading; "
        "measured 24 h before this rooming — same patient?"
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


# The rule (shared/design.md, README "Patient safety"): "a reading attaches ... only if it was
# measured after that session started"; anything doubtful goes to the tray, never attached
# silently. The session opens at T0; the reading arrives at T0 + 30 s, outside any burst.


@pytest.mark.parametrize(
    ("measured_offset_s", "expected"),
    [
        # Issue 19: one reading measured 60 s before the rooming, inside the old 120 s skew
        # allowance, attached to the patient. The device's clock says "before": doubt.
        (-60, (TrayReason.BEFORE_SESSION,)),
        (-119, (TrayReason.BEFORE_SESSION,)),
        (-1, (TrayReason.BEFORE_SESSION,)),
        (-121, (TrayReason.BEFORE_SESSION,)),
        # After the start by its own (unset) clock: judged like an untimed reading, which
        # arrived after the session started and is not stored: it attaches.
        (+10, ()),
        (30 + 119, ()),  # ahead of the station, within the configured 120 s
        (30 + 121, (TrayReason.CLOCK_AHEAD,)),
    ],
)
def test_a_clock_the_station_did_not_set_never_clears_a_reading_measured_before(
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


@pytest.mark.parametrize(
    ("measured_offset_s", "expected"),
    [
        (-60, (TrayReason.BEFORE_SESSION,)),  # issue 19's reading, from a set clock
        (-3, (TrayReason.BEFORE_SESSION,)),  # beyond the 2 s of a freshly set clock
        (-2, ()),  # Date Time has whole seconds: a set clock reads up to 1 s early, + write
        (+5, ()),
        (30 + 2, ()),
        (30 + 3, (TrayReason.CLOCK_AHEAD,)),  # a set clock cannot be 3 s ahead
    ],
)
def test_a_clock_the_station_set_on_this_connection_is_trusted_within_two_seconds(
    measured_offset_s: float, expected: tuple[TrayReason, ...]
) -> None:
    guard, clock = make_guard()
    guard.open_session("S1")
    guard.device_connected("cuff")
    guard.device_clock_set("cuff")
    clock.advance(30)  # the burst window (5 s) has closed
    reading = bp(measured_at=T0 + timedelta(seconds=measured_offset_s))
    [out] = guard.offer("cuff", reading)
    if expected:
        assert isinstance(out, Unassigned)
        assert out.reasons == expected
    else:
        assert isinstance(out, Attached)


def test_trust_ends_with_the_connection_it_was_set_on() -> None:
    guard, clock = make_guard()
    guard.open_session("S1")
    guard.device_connected("cuff")
    guard.device_clock_set("cuff")
    assert guard.clock_trusted("cuff")
    guard.device_disconnected("cuff")
    assert not guard.clock_trusted("cuff")
    guard.device_clock_set("cuff")
    guard.device_connected("cuff")  # a new connection: the write was on the earlier one
    assert not guard.clock_trusted("cuff")
    clock.advance(30)
    [out] = guard.offer("cuff", bp(measured_at=T0 - timedelta(seconds=1)))
    assert isinstance(out, Unassigned) and out.reasons == (TrayReason.BEFORE_SESSION,)


def test_the_tray_asks_with_the_measured_interval() -> None:
    guard, clock = make_guard()
    guard.open_session("S1")
    clock.advance(30)
    [out] = guard.offer("cuff", bp(measured_at=T0 - timedelta(minutes=2)))
    assert isinstance(out, Unassigned)
    assert out.measured_before_s == 120.0
    assert out.describe() == "measured 2 min before this rooming — same patient?"


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


# IANA tz database: Europe/Berlin is CET (UTC+1) and America/Chicago CST (UTC-6) on
# 2 March 2026 (EU summer time starts on the last Sunday of March, Directive 2000/84/EC; US
# daylight time on the second Sunday of March, 15 U.S.C. 260a).
def test_a_naive_device_time_is_the_sites_wall_time_east_of_utc() -> None:
    from datetime import UTC
    from zoneinfo import ZoneInfo

    # The station's clock runs in UTC (a Pi's default); the site is in Berlin. The session
    # opens at 09:00 UTC = 10:00 in Berlin. A cuff reading stamped 09:30 by its local clock
    # was measured at 08:30 UTC, half an hour BEFORE the session: read as UTC it would look
    # 30 min after the start and attach to the wrong patient.
    clock = FakeClock(T0.replace(tzinfo=UTC))
    guard = WrongPatientGuard(
        clock, bound_device_ids=["cuff"], policy=POLICY, zone=ZoneInfo("Europe/Berlin")
    )
    guard.open_session("S1")
    clock.advance(40 * 60)
    [out] = guard.offer("cuff", bp(measured_at=datetime(2026, 3, 2, 9, 30)))
    assert isinstance(out, Unassigned)
    assert out.reasons == (TrayReason.BEFORE_SESSION,)
    assert out.measured_before_s == 30 * 60


def test_a_naive_device_time_is_the_sites_wall_time_west_of_utc() -> None:
    from datetime import UTC
    from zoneinfo import ZoneInfo

    # Session at 15:00 UTC = 09:00 in Chicago; the scale's 09:10 is 15:10 UTC: after it.
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    clock = FakeClock(start)
    guard = WrongPatientGuard(
        clock, bound_device_ids=["scale"], policy=POLICY, zone=ZoneInfo("America/Chicago")
    )
    guard.open_session("S1")
    clock.advance(11 * 60)
    reading = weight(measured_at=datetime(2026, 3, 2, 9, 10))
    assert guard.offer("scale", reading) == [
        Attached(
            device_id="scale",
            session_id="S1",
            reading=reading,
            received_at=start + timedelta(minutes=11),
        )
    ]


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
