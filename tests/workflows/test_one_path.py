"""The production path from a device event to the session or the tray, on `station run`'s own
services: link thread -> DeviceManager -> hand-over (`post`) -> the UI thread -> the rooming's
guard. No broker is started (nothing here publishes); the clock is moved by hand.

The rule under test is the first patient-safety rule of shared/design.md: "A reading attaches
only to the open session of the patient on this station, and only if it was measured after that
session started. A reading that is stored (from_storage), older than the session, from a device
clock that is not set, or one of a burst of several readings at connect goes to an 'unassigned'
tray that the MA must review; it is never attached silently."
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from station.app import Credentials, HeadlessHost, StationServices
from station.config import parse_settings
from station.devices.ble_link import LinkState, StateChanged
from station.guard import TrayReason
from station.logs import Redactor
from station.models import BloodPressure, Mode
from station.rooming import Rooming
from station.rooming_data import RoomingState, ScheduledPatient
from station.ui.presenters import ExamPresenter
from station.units import Unit
from tests.fixtures.broker import free_port
from tests.workflows.helpers import FakeClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MA_PIN = "4321"
ALPHA = ScheduledPatient(appointment_id="APT-TEST-A", mrn="TEST000A", family_name="ZZTEST",
                         given_name="Alpha", birth_date=date(1970, 5, 17))
BRAVO = ScheduledPatient(appointment_id="APT-TEST-B", mrn="TEST000B", family_name="ZZTEST",
                         given_name="Bravo", birth_date=date(1985, 11, 2))
# The cuff's guard windows as shipped in the defaults: 120 s skew, 5 s connect burst.
BURST_WINDOW_S = 5


def untimed_bp(systolic: float) -> BloodPressure:
    """A reading from a device without a clock (most serial cuffs): only its arrival time can
    tell which session it belongs to."""
    return BloodPressure(systolic_mmhg=systolic, diastolic_mmhg=80.0, pulse_rate_bpm=70.0,
                         unit_as_sent=Unit.MMHG, codec="test:bp", codec_version="1",
                         mode=Mode.TEST, raw_hex="00")


class Station:
    """`station run`'s services with the headless host standing in for the Kivy thread."""

    def __init__(self, services: StationServices, host: HeadlessHost, clock: FakeClock) -> None:
        self.services, self.host, self.clock = services, host, clock
        assert isinstance(services.presenter, ExamPresenter)
        self.presenter: ExamPresenter = services.presenter
        self.rooming: Rooming = services.presenter.rooming

    def send_from_cuff(self, reading: BloodPressure) -> None:
        """The link thread's part: the reading is stamped and handed over, not yet drained."""
        self.services.device_reading("cuff", reading)

    def drain(self) -> None:
        """The UI thread's part: every hand-over queued so far, as the Kivy clock runs them."""
        queued = self.host._queue  # the hand-over queue the link threads post to
        while not queued.empty():
            queued.get_nowait()()
            self.services.after_ui_change()

    def confirm(self, patient: ScheduledPatient) -> None:
        self.host.intent("pick", patient.appointment_id)
        self.host.intent("confirm")
        assert self.rooming.state is RoomingState.VITALS


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    clock = FakeClock(T0)
    settings = parse_settings(
        {
            "station": {"site": "test-clinic", "station_id": "exam-1", "mode": "exam"},
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
    station.rooming.set_schedule((ALPHA, BRAVO))
    host.intent("sign_in", MA_PIN)
    try:
        yield station
    finally:
        services.outbox.close()


def test_a_reading_arriving_after_confirmation_attaches(station: Station) -> None:
    station.confirm(ALPHA)
    station.clock.advance(30)
    station.send_from_cuff(untimed_bp(124))
    station.drain()
    assert [(e.reading, e.device) for e in station.rooming.entries] == [(untimed_bp(124), "cuff")]
    assert station.rooming.tray == ()


def test_in_flight_reading_of_patient_a_goes_to_the_tray_when_the_ma_switches_to_b(
    station: Station,
) -> None:
    station.confirm(ALPHA)
    station.clock.advance(30)
    station.send_from_cuff(untimed_bp(151))  # measured on A, still queued for the UI thread
    station.clock.advance(1)
    station.host.intent("sign_out")
    station.host.intent("sign_in", MA_PIN)
    station.confirm(BRAVO)
    station.drain()
    assert station.rooming.patient == BRAVO
    assert station.rooming.entries == ()
    [item] = station.rooming.tray
    assert (item.reading, item.reasons) == (untimed_bp(151), (TrayReason.ARRIVED_BEFORE_SESSION,))
    assert item.received_at == T0 + timedelta(seconds=30)


def test_in_flight_reading_goes_to_the_tray_when_the_same_patient_is_confirmed_again(
    station: Station,
) -> None:
    # Re-confirming (a sign-out parks the rooming; whoever signs in confirms again) opens a new
    # session: a reading that arrived under the earlier confirmation is not silently attached.
    station.confirm(ALPHA)
    station.clock.advance(10)
    station.send_from_cuff(untimed_bp(124))
    station.drain()
    station.clock.advance(10)
    station.send_from_cuff(untimed_bp(139))  # queued while the MA signs out
    station.clock.advance(1)
    station.host.intent("sign_out")
    station.host.intent("sign_in", MA_PIN)
    assert station.rooming.state is RoomingState.PATIENT_PICKED  # parked: confirm again
    station.host.intent("confirm")
    station.drain()
    assert [e.reading for e in station.rooming.entries] == [untimed_bp(124)]
    [item] = station.rooming.tray
    assert (item.reading, item.reasons) == (untimed_bp(139), (TrayReason.ARRIVED_BEFORE_SESSION,))


def test_two_readings_at_connect_are_a_burst_and_both_go_to_the_tray(
    station: Station, caplog: pytest.LogCaptureFixture
) -> None:
    station.confirm(ALPHA)
    station.clock.advance(60)
    station.services.manager.handle(  # type: ignore[union-attr]
        StateChanged(device_id="cuff", state=LinkState.CONNECTED)
    )
    with caplog.at_level(logging.INFO, logger="station.app.services"):
        station.send_from_cuff(untimed_bp(140))
        station.send_from_cuff(untimed_bp(141))
        station.drain()
    assert (station.rooming.entries, station.rooming.tray) == ((), ())  # held for the window
    # #19: each hold says so in the journal (device id only, never a value).
    assert caplog.text.count("reading from cuff held: it came in the connect-burst window") == 2
    station.clock.advance(BURST_WINDOW_S)
    station.presenter.tick()
    assert station.rooming.entries == ()
    assert [(i.reading, i.reasons) for i in station.rooming.tray] == [
        (untimed_bp(140), (TrayReason.CONNECT_BURST,)),
        (untimed_bp(141), (TrayReason.CONNECT_BURST,)),
    ]


def test_one_reading_at_connect_is_held_for_the_window_then_attaches(station: Station) -> None:
    station.confirm(ALPHA)
    station.clock.advance(60)
    station.services.manager.handle(  # type: ignore[union-attr]
        StateChanged(device_id="cuff", state=LinkState.CONNECTED)
    )
    station.send_from_cuff(untimed_bp(126))
    station.drain()
    station.clock.advance(BURST_WINDOW_S)
    station.presenter.tick()
    assert [e.reading for e in station.rooming.entries] == [untimed_bp(126)]
    assert station.rooming.tray == ()


def test_a_reading_from_an_unbound_device_never_enters(station: Station) -> None:
    station.confirm(ALPHA)
    station.clock.advance(30)
    station.services.device_reading("cuff-next-door", untimed_bp(160))
    station.drain()
    assert (station.rooming.entries, station.rooming.tray) == ((), ())
