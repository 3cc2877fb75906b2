"""The device manager with the real BLE link and the guard: stored dumps go to the tray."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from station.config import BoundDevice, GuardSection
from station.devices.bindings import BindingStore
from station.devices.ble_link import BleLink, LinkState, StateChanged
from station.devices.manager import DeviceManager, DeviceState, DeviceStatus, ManagerUpdate
from station.devices.simulators.ble import BloodPressureCuff, StoredBp
from station.devices.simulators.fakebluez import FakeBlueZ
from station.guard import Attached, Ignored, Live, TrayReason, Unassigned, WrongPatientGuard
from station.models import BloodPressure, Mode
from tests.fixtures.ble import BleLoop

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
