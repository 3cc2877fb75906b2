"""The device manager with the real BLE link and the guard: stored dumps go to the tray."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from station.config import BoundDevice, GuardSection
from station.devices.bindings import BindingStore
from station.devices.ble_link import BleLink, LinkState, StateChanged
from station.devices.manager import DeviceManager, DeviceState, DeviceStatus, ManagerUpdate
from station.devices.profiles import find_profile
from station.devices.simulators.ble import BloodPressureCuff, StoredBp
from station.devices.simulators.fakebluez import FakeBlueZ
from station.errors import ConfigError
from station.guard import Attached, Ignored, Live, TrayReason, Unassigned, WrongPatientGuard
from station.models import BloodPressure, Mode
from tests.fixtures.ble import BleLoop
from tests.fixtures.serial import SimulatorFactory, by_id_name

CUFF = "AA:BB:CC:DD:EE:01"
BINDING = BoundDevice(id="cuff", profile="generic-ble-blood-pressure", address=CUFF)


class Collector:
    def __init__(self) -> None:
        self.updates: list[ManagerUpdate] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, update: ManagerUpdate) -> None:
        with self._lock:
            self.updates.append(update)
            self.threads.add(threading.current_thread().name)

    def of(self, kind: type) -> list[ManagerUpdate]:
        with self._lock:
            return [u for u in self.updates if isinstance(u, kind)]


@pytest.mark.ble
def test_stored_dump_goes_to_tray_fresh_reading_attaches_live_pressure_passes(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    stored = [StoredBp(140 + i, 90, 107, 80, datetime(2026, 3, 1, 8, i)) for i in range(5)]
    cuff = BloodPressureCuff(fake_bluez, CUFF, stored=stored, battery_percent=87, firmware="1.4.2")
    guard = WrongPatientGuard(
        datetime.now, ["cuff"], GuardSection(clock_skew_s=120, connect_burst_window_s=0.4)
    )
    guard.open_session("ROOMING-ZZTEST-1")
    out = Collector()
    manager = DeviceManager([BINDING], guard, out, datetime.now)

    async def until(predicate: object, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():  # type: ignore[operator]
                manager.tick()
                await asyncio.sleep(0.02)

    async def main() -> None:
        link = BleLink([BINDING], manager.handle, mode=Mode.DEMO)
        runner = asyncio.create_task(link.run())
        try:
            await until(lambda: len(out.of(Unassigned)) == 5)
            await asyncio.sleep(0.45)  # past the burst window
            fresh_at = datetime.now().replace(microsecond=0)
            await asyncio.to_thread(
                cuff.measure, 124, 79, 94, 68, measured_at=fresh_at, cuff_pressures_mmhg=(55, 110)
            )
            await until(lambda: len(out.of(Attached)) == 1)
        finally:
            link.stop()
            await runner

    ble_loop.run(main())
    tray = [u.entry for u in out.of(Unassigned)]  # type: ignore[union-attr]
    assert [e.reading.systolic_mmhg for e in tray] == [140, 141, 142, 143, 144]
    assert all(e.reasons == (TrayReason.BEFORE_SESSION, TrayReason.CONNECT_BURST) for e in tray)
    [attached] = out.of(Attached)
    assert isinstance(attached, Attached)
    assert attached.session_id == "ROOMING-ZZTEST-1"
    assert isinstance(attached.reading, BloodPressure)
    assert (attached.reading.systolic_mmhg, attached.reading.diastolic_mmhg) == (124, 79)
    live = [u.reading.cuff_pressure_mmhg for u in out.of(Live)]  # type: ignore[union-attr]
    assert live == [55.0, 110.0]
    states = [u.state for u in out.of(DeviceStatus)]  # type: ignore[union-attr]
    assert DeviceState.MEASURING in states
    [status] = manager.status()
    assert (status.state, status.battery_percent, status.firmware_revision) == (
        DeviceState.CONNECTED,
        87,
        "1.4.2",
    )
    assert status.last_reading == attached.reading
    assert status.live_cuff_pressure_mmhg is None
    assert out.threads == {"ble-loop"}


def test_events_from_unbound_devices_never_enter() -> None:
    guard = WrongPatientGuard(datetime.now, [])
    out = Collector()
    manager = DeviceManager([BINDING], guard, out, datetime.now)
    manager.handle(StateChanged(device_id="intruder", state=LinkState.CONNECTED))
    assert out.updates == [Ignored(device_id="intruder", why="device is not bound to this station")]
    assert [s.device_id for s in manager.status()] == ["cuff"]


def test_error_state_keeps_the_last_error_for_biomed() -> None:
    t = datetime(2026, 3, 2, 9, 0)
    guard = WrongPatientGuard(lambda: t, [])
    out = Collector()
    manager = DeviceManager([BINDING], guard, out, lambda: t + timedelta(seconds=1))
    manager.handle(StateChanged(device_id="cuff", state=LinkState.ERROR, detail="BleakError: x"))
    manager.handle(StateChanged(device_id="cuff", state=LinkState.SLEEPING))
    [status] = manager.status()
    assert (status.state, status.last_error) == (DeviceState.SLEEPING, "BleakError: x")


def test_bindings_persist_atomically_and_refuse_duplicates(tmp_path: Path) -> None:
    store = BindingStore(tmp_path)
    assert store.list() == ()
    store.bind(BINDING)
    oxi = BoundDevice(id="oximeter", profile="nonin-xpod", port="/dev/serial/by-id/usb-Nonin-if00")
    store.bind(oxi)
    assert BindingStore(tmp_path).list() == (BINDING, oxi)
    with pytest.raises(ValueError, match="address AA:BB:CC:DD:EE:01 is already bound as 'cuff'"):
        store.bind(BoundDevice(id="cuff2", profile="generic-ble-blood-pressure", address=CUFF))
    assert store.unbind(CUFF.lower()) == BINDING
    assert store.list() == (oxi,)
    with pytest.raises(LookupError, match="nothing bound as 'cuff'; bound: oximeter"):
        store.unbind("cuff")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bindings.json"]  # no temp files left


def test_manager_owns_serial_links_streaming_readings_attach_and_unplug_is_an_error(
    by_id_dir: Path, serial_simulator: SimulatorFactory
) -> None:
    """A Nonin Xpod on a pty, bound by its by-id name: the manager opens it with SerialLink,
    its streamed readings attach (no connect-burst hold for a device that streams live), the
    status table holds it beside a Bluetooth cuff, and an unplug shows as an error."""
    profile = find_profile("nonin-xpod-3012lp")
    simulator = serial_simulator(profile, speed=3.0)
    port = str(by_id_dir / by_id_name(profile))
    oximeter = BoundDevice(id="oximeter", profile=profile.id, port=port)
    guard = WrongPatientGuard(datetime.now, [], GuardSection())  # default 5 s burst window
    guard.open_session("ROOMING-ZZTEST-2")
    out = Collector()
    manager = DeviceManager([BINDING, oximeter], guard, out, datetime.now)
    [link] = manager.start_serial_links(reading_mode=Mode.DEMO, backoff_max_s=0.2)
    try:
        assert manager.serial_link("oximeter") is link
        deadline = time.monotonic() + 8
        while len(out.of(Attached)) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        attached = out.of(Attached)
        assert len(attached) >= 4
        assert {a.device_id for a in attached} == {"oximeter"}  # type: ignore[union-attr]
        readings = [a.reading for a in attached]  # type: ignore[union-attr]
        got = [(r.spo2_percent, r.pulse_rate_bpm, r.mode) for r in readings]  # type: ignore[union-attr]
        sent = [(s["spo2_percent"], s["pulse_rate_bpm"], Mode.DEMO) for s in simulator.sent]
        first = sent.index(got[0])
        assert sent[first : first + len(got)] == got
        assert out.of(Unassigned) == []
        status = {s.device_id: s for s in manager.status()}
        assert (status["oximeter"].state, status["oximeter"].port) == (DeviceState.CONNECTED, port)
        assert status["oximeter"].last_reading == readings[-1]
        assert status["cuff"].state is DeviceState.UNSEEN
        simulator.stop()  # unplugged: the port and its by-id name vanish
        deadline = time.monotonic() + 5
        while manager.status()[1].state is not DeviceState.ERROR and time.monotonic() < deadline:
            time.sleep(0.02)
        gone = manager.status()[1]
        assert gone.state is DeviceState.ERROR
        assert gone.last_error is not None and port in gone.last_error
    finally:
        manager.stop_links()
    assert manager.status()[1].state is DeviceState.UNSEEN  # stopped: not being read


def test_serial_links_refuse_a_binding_to_an_unknown_or_bluetooth_profile() -> None:
    guard = WrongPatientGuard(datetime.now, [])
    manager = DeviceManager(
        [
            BoundDevice(id="ox", profile="nonin-9999", port="/dev/ttyUSB0"),
            BoundDevice(id="cuff", profile="and-ua-651ble", port="/dev/ttyUSB1"),
        ],
        guard,
        Collector(),
        datetime.now,
    )
    with pytest.raises(ConfigError) as raised:
        manager.start_serial_links()
    assert raised.value.problems == [
        "ox: unknown profile 'nonin-9999'",
        "cuff: not a serial profile: 'and-ua-651ble'",
    ]
