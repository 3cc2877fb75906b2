"""Issue 19 on the real parts: `station run`'s services (StationServices, the headless host as
its UI thread), real bleak against the fake BlueZ on a private D-Bus, a real Mosquitto.

- The station registers its own pairing agent: a passkey cuff (Beurer SBM 69, "bonding asks
  for the passkey the device shows") asks on the biomed screen once, pairs, stays bonded
  across a sleep/wake reconnect, and its reading attaches to the confirmed patient.
- A wrong passkey is refused and the biomed screen says why.

The passkey is a six-digit number 000000-999999 (Bluetooth Core Specification v5.3, Vol 3,
Part H, 2.3.5.3 "Passkey Entry": "a 6-digit numeric code"); the agent's method is
org.bluez.Agent1.RequestPasskey (BlueZ doc/org.bluez.Agent.rst), and BlueZ's pairing errors
are org.bluez.Error.AuthenticationFailed / AuthenticationCanceled (doc/org.bluez.Device.rst,
Pair()).
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from station.app import Credentials, HeadlessHost, StationServices
from station.config import parse_settings
from station.devices.manager import DeviceState
from station.devices.simulators.ble import BloodPressureCuff
from station.devices.simulators.fakebluez import FakeBlueZ
from station.logs import Redactor
from station.models import Mode
from station.rooming_data import RoomingState, ScheduledPatient
from station.sync.contract import device_status_topic
from station.ui.presenters import ExamPresenter
from tests.fixtures.ble import BleLoop
from tests.fixtures.broker import Broker

SITE, STATION = "test-clinic", "exam-ble"
CUFF = "AA:BB:CC:DD:EE:41"
PASSKEY = 123456  # what the simulated SBM 69 "shows"
BIOMED_PIN, MA_PIN = "86420", "4321"
ALPHA = ScheduledPatient(appointment_id="APT-TEST-BLE", mrn="TEST000BL", family_name="ZZTEST",
                         given_name="Bleu", birth_date=date(1977, 7, 7))


@pytest.fixture
def station(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop, mosquitto_broker: Broker, tmp_path: Path
) -> Iterator[tuple[StationServices, HeadlessHost]]:
    del ble_loop  # bleak's session loop exists first: the station's thread runs its own
    settings = parse_settings(
        {
            "station": {"site": SITE, "station_id": STATION, "mode": "exam"},
            "broker": {"host": "127.0.0.1", "port": mosquitto_broker.port, "require_tls": False},
            "storage": {"state_dir": str(tmp_path / "state")},
            "devices": [{"id": "cuff", "profile": "beurer-sbm69", "address": CUFF}],
        },
        "test",
    )
    host = HeadlessHost()
    services = StationServices(
        settings, post=host.post, redactor=Redactor(), reading_mode=Mode.TEST,
        credentials=Credentials(ma={MA_PIN: "ma-1"}, biomed_pin=BIOMED_PIN),
        by_id_dir=tmp_path / "by-id",
    )  # fmt: skip
    host.services = services
    services.start()
    try:
        yield services, host
    finally:
        services.stop()


def _state(services: StationServices) -> DeviceState:
    assert services.manager is not None
    return next(s for s in services.manager.status() if s.device_id == "cuff").state


def _asked(services: StationServices) -> list[str]:
    agent = services._ble.agent
    return [] if agent is None else [a for m, a in agent.agent.requests if m == "RequestPasskey"]


def _retained_presence(broker: Broker) -> str:
    done = subprocess.run(
        ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-C", "1", "-W", "5",
         "-t", device_status_topic(SITE, STATION, "cuff")],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    presence: str = json.loads(done.stdout)["presence"]
    return presence


def test_a_passkey_cuff_pairs_once_through_the_biomed_screen_and_its_reading_attaches(
    station: tuple[StationServices, HeadlessHost], fake_bluez: FakeBlueZ,
    mosquitto_broker: Broker, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="station")
    services, host = station
    cuff = BloodPressureCuff(fake_bluez, CUFF, "SBM69", passkey=PASSKEY, clock_characteristic=None,
                             battery_percent=64, firmware="2.0.7")
    biomed = services.biomed
    assert biomed is not None
    host.run_until(lambda: fake_bluez.agent is not None, 10, "the station's agent registered")
    assert fake_bluez.agent is not None and fake_bluez.agent.capability == "KeyboardOnly"
    biomed.unlock(BIOMED_PIN)
    host.run_until(lambda: biomed.passkey_requests() != (), 20, "the cuff asks for its passkey")
    assert biomed.passkey_requests() == (("cuff", CUFF),)
    biomed.enter_passkey(CUFF, "12345")  # five digits: not sent
    assert biomed.message == "the passkey is the 6 digits the device shows (e.g. 012345)"
    biomed.enter_passkey(CUFF, f"{PASSKEY:06d}")
    host.run_until(lambda: _state(services) is DeviceState.CONNECTED, 20, "paired and connected")
    assert cuff.peripheral.paired
    assert biomed.passkey_requests() == ()
    biomed.lock()

    # Bonded: the cuff sleeps and wakes; it reconnects without anyone typing again.
    cuff.sleep()
    host.run_until(lambda: _state(services) is DeviceState.SLEEPING, 20, "asleep")
    cuff.wake()
    host.run_until(lambda: _state(services) is DeviceState.CONNECTED, 20, "reconnected")
    assert _asked(services) == [CUFF]  # one passkey question in all
    # One INFO line per connect, in words, from the station's own loggers.
    connects = [r.getMessage() for r in caplog.records if r.getMessage() == "cuff connected "
                "(beurer-sbm69)"]
    assert len(connects) == 2
    assert _retained_presence(mosquitto_broker) == "online"

    presenter = services.presenter
    assert isinstance(presenter, ExamPresenter)
    presenter.rooming.set_schedule((ALPHA,))
    host.intent("sign_in", MA_PIN)
    host.intent("pick", ALPHA.appointment_id)
    host.intent("confirm")
    assert presenter.rooming.state is RoomingState.VITALS
    # The SBM 69's clock is not set by the station: its time must not be before the start.
    measured = (datetime.now(UTC) + timedelta(seconds=2)).replace(tzinfo=None, microsecond=0)
    cuff.measure(128, 82, 97, 66, measured_at=measured)
    host.run_until(lambda: presenter.rooming.entries != (), 20, "the reading attaches")
    [entry] = presenter.rooming.entries
    assert (entry.reading.systolic_mmhg, entry.device) == (128.0, "cuff")  # type: ignore[union-attr]
    assert presenter.rooming.tray == ()

    # health.json's device rows (issue 19 item 8): a Blood Pressure Measurement is at least
    # flags + three SFLOATs (7 bytes, GATT Specification Supplement 3.31): one byte is rejected.
    cuff.send("2a35", b"\x00")
    host.run_until(
        lambda: services.health.device_states()[0].frames_rejected == 1, 10, "frame rejected"
    )
    [health] = services.health.device_states()
    assert (health.battery_percent, health.firmware_revision) == (64, "2.0.7")
    assert health.last_frame_age_s is not None and health.last_frame_age_s >= 0


def test_a_wrong_passkey_is_refused_and_the_biomed_screen_says_why(
    station: tuple[StationServices, HeadlessHost], fake_bluez: FakeBlueZ,
    mosquitto_broker: Broker,
) -> None:
    services, host = station
    cuff = BloodPressureCuff(fake_bluez, CUFF, "SBM69", passkey=PASSKEY, clock_characteristic=None)
    biomed = services.biomed
    assert biomed is not None
    biomed.unlock(BIOMED_PIN)
    host.run_until(lambda: biomed.passkey_requests() != (), 20, "the cuff asks for its passkey")
    biomed.enter_passkey(CUFF, "654321")
    host.run_until(lambda: _state(services) is DeviceState.ERROR, 20, "pairing refused")
    assert not cuff.peripheral.paired
    biomed.refresh()
    [line] = [d for d in biomed.device_lines() if d.device_id == "cuff"]
    assert "last error: pairing failed: the device refused the passkey" in line.detail
    assert "org.bluez.Error.AuthenticationFailed" in line.detail

    # Issue 19 item 4: after a broker restart the cuff that cannot pair is not "online".
    mosquitto_broker.stop()
    host.run_until(lambda: not services.link.connected, 20, "the broker went away")
    mosquitto_broker.start()
    host.run_until(lambda: services.link.connected, 30, "reconnected to the broker")
    assert _state(services) is not DeviceState.CONNECTED
    assert _retained_presence(mosquitto_broker) == "offline"
