"""Issue 19, safety: a reading measured before the rooming started never attaches silently,
on `station run`'s own services (link event -> DeviceManager -> hand-over -> the UI thread ->
the rooming's guard), with the site's time zone from `[records] timezone`.

The rule is shared/design.md's and the README's ("Patient safety"): "a reading attaches only to
the open session of the patient on this station and only if measured after the session
started". Issue 19's case: ONE reading, measured 60 s before the patient was confirmed (inside
the old 120 s clock-skew allowance, no burst), attached, and the tile showed the arrival time.

Times: the site is in America/Chicago, which is CST = UTC-6 on 2 March 2026 (IANA tz database;
US daylight time starts on the second Sunday of March, 15 U.S.C. 260a). The session opens at
15:00 UTC = 09:00 local; device clocks send local wall time without an offset (Bluetooth Date
Time 0x2A08 has no zone field: GATT Specification Supplement, 3.70 "Date Time").
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from station.app import Credentials, HeadlessHost, StationServices
from station.config import parse_settings
from station.devices.ble_link import ClockWritten, LinkState, ReadingArrived, StateChanged
from station.guard import TrayReason
from station.logs import Redactor
from station.models import BloodPressure, CuffPressure, Mode
from station.rooming_data import RoomingState, ScheduledPatient
from station.ui.presenters import ExamPresenter
from station.units import Unit
from tests.fixtures.broker import free_port
from tests.workflows.helpers import FakeClock

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 09:00 in Chicago
MA_PIN = "4321"
ALPHA = ScheduledPatient(appointment_id="APT-TEST-A", mrn="TEST000A", family_name="ZZTEST",
                         given_name="Alpha", birth_date=date(1970, 5, 17))
BURST_WINDOW_S = 5  # the shipped default connect_burst_window_s


def bp(systolic: float, measured_local: datetime | None) -> BloodPressure:
    return BloodPressure(systolic_mmhg=systolic, diastolic_mmhg=80.0, pulse_rate_bpm=70.0,
                         unit_as_sent=Unit.MMHG, codec="ble:2a35", codec_version="1",
                         mode=Mode.TEST, raw_hex="00", measured_at=measured_local)


class Station:
    def __init__(self, services: StationServices, host: HeadlessHost, clock: FakeClock) -> None:
        self.services, self.host, self.clock = services, host, clock
        assert isinstance(services.presenter, ExamPresenter)
        self.presenter: ExamPresenter = services.presenter
        assert services.manager is not None
        self.manager = services.manager

    def link(self, event: object) -> None:
        """What the BLE link thread reports, then the UI thread drains the hand-overs."""
        self.manager.handle(event)  # type: ignore[arg-type]
        queued = self.host._queue
        while not queued.empty():
            queued.get_nowait()()

    def connect(self, *, clock_written: bool) -> None:
        self.link(StateChanged(device_id="cuff", state=LinkState.CONNECTED))
        if clock_written:  # what BleLink reports after writing Date Time on connect
            self.link(ClockWritten(device_id="cuff", characteristic="2a08",
                                   written_hex="ea07030209001e"))

    def reading(self, reading: BloodPressure | CuffPressure) -> None:
        self.link(ReadingArrived(device_id="cuff", reading=reading, received_monotonic_s=0.0))

    def release_burst(self) -> None:
        self.clock.advance(BURST_WINDOW_S)
        self.presenter.tick()


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    clock = FakeClock(T0)
    settings = parse_settings(
        {
            "station": {"site": "test-clinic", "station_id": "exam-1", "mode": "exam"},
            "records": {"timezone": "America/Chicago"},
            "broker": {"host": "127.0.0.1", "port": free_port(), "require_tls": False},
            "storage": {"state_dir": str(tmp_path / "state")},
            "devices": [{"id": "cuff", "profile": "and-ua-651ble",
                         "address": "AA:BB:CC:DD:EE:01"}],
        },
        "test",
    )
    host = HeadlessHost()
    services = StationServices(settings, post=host.post, redactor=Redactor(),
                               credentials=Credentials(ma={MA_PIN: "ma-1"}), clock=clock,
                               reading_mode=Mode.TEST, by_id_dir=tmp_path / "by-id")
    host.services = services
    station = Station(services, host, clock)
    station.presenter.rooming.set_schedule((ALPHA,))
    host.intent("sign_in", MA_PIN)
    host.intent("pick", ALPHA.appointment_id)
    host.intent("confirm")
    assert station.presenter.rooming.state is RoomingState.VITALS
    try:
        yield station
    finally:
        services.outbox.close()


def test_one_reading_measured_60_s_before_the_rooming_goes_to_the_tray_with_its_time(
    station: Station,
) -> None:
    station.clock.advance(30)
    station.connect(clock_written=True)
    stored = bp(131, datetime(2026, 3, 2, 8, 59, 0))  # 60 s before 09:00 local
    station.reading(stored)
    station.release_burst()  # one reading at connect: not a burst
    rooming = station.presenter.rooming
    assert rooming.entries == ()
    [item] = rooming.tray
    assert (item.reading, item.reasons, item.measured_before_s) == (
        stored, (TrayReason.BEFORE_SESSION,), 60.0
    )
    [card] = station.presenter.tray_cards()
    assert card.reason == "measured 1 min before this rooming — same patient?"
    assert card.text.endswith("· cuff · measured 08:59:00")


def test_the_same_reading_from_a_clock_the_station_did_not_set_goes_to_the_tray_too(
    station: Station,
) -> None:
    station.clock.advance(30)
    station.connect(clock_written=False)  # the cuff refused the write (or has no clock char)
    stored = bp(131, datetime(2026, 3, 2, 8, 59, 59))  # 1 s before: an unknown clock
    station.reading(stored)
    station.release_burst()
    [item] = station.presenter.rooming.tray
    assert item.reasons == (TrayReason.BEFORE_SESSION,)
    assert item.reason == "measured 1 s before this rooming — same patient?"


def test_a_reading_measured_after_the_start_attaches_and_shows_its_measured_time(
    station: Station,
) -> None:
    station.clock.advance(30)
    station.connect(clock_written=True)
    fresh = bp(124, datetime(2026, 3, 2, 9, 0, 25))
    station.reading(fresh)
    station.release_burst()
    rooming = station.presenter.rooming
    assert [e.reading for e in rooming.entries] == [fresh]
    assert rooming.tray == ()
    tile = next(t for t in station.presenter.tiles() if t.key == "bp")
    assert tile.source == "cuff · measured 09:00:25"  # not the arrival (09:00:35)
    [row] = station.presenter.review_rows()
    assert row.source == "cuff · measured 09:00:25"


def test_a_naive_device_time_is_read_in_the_site_zone_not_as_utc(station: Station) -> None:
    # 09:10 local = 15:10 UTC: after the start. Read as UTC (the old way) it would be 09:10
    # UTC, six hours before the session, and a fresh reading would land in the tray.
    station.clock.advance(11 * 60)
    station.connect(clock_written=True)
    fresh = bp(118, datetime(2026, 3, 2, 9, 10, 30))
    station.reading(fresh)
    station.release_burst()
    assert [e.reading for e in station.presenter.rooming.entries] == [fresh]


def test_the_cuff_gauge_stops_when_the_cuff_drops_mid_inflation(station: Station) -> None:
    # Issue 19 item 3: "Cuff inflating: 120 mmHg" stayed after the cuff went to sleep.
    station.clock.advance(30)
    station.connect(clock_written=True)
    station.reading(CuffPressure(cuff_pressure_mmhg=120.0, unit_as_sent=Unit.MMHG,
                                 codec="ble:2a36", codec_version="1", mode=Mode.TEST))
    assert station.presenter.live_cuff() == 120.0
    station.link(StateChanged(device_id="cuff", state=LinkState.SLEEPING,
                              detail="device disconnected"))
    assert station.presenter.live_cuff() is None
    assert not station.presenter.rooming.guard.clock_trusted("cuff")
