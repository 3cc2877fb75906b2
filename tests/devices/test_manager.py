"""The device manager with the real links, drained into the rooming workflow exactly as the
station drains it (`deliver` on one thread): stored dumps go to the tray."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from station.capture import CaptureState
from station.config import BoundDevice, GuardSection
from station.devices.bindings import BindingStore
from station.devices.ble_link import BleLink, LinkState, ReadingArrived, StateChanged
from station.devices.manager import (
    Captured,
    Connected,
    DeviceManager,
    DeviceState,
    DeviceStatus,
    LiveValue,
    ManagerUpdate,
    deliver,
)
from station.devices.profiles import find_profile
from station.devices.simulators.ble import BloodPressureCuff, StoredBp
from station.devices.simulators.fakebluez import FakeBlueZ
from station.errors import ConfigError
from station.guard import Ignored, TrayReason
from station.models import BloodPressure, CuffPressure, Flag, Mode, PulseOximetry
from station.rooming import Rooming
from station.units import Unit
from station.validation import validate
from tests.fixtures.ble import BleLoop
from tests.fixtures.serial import SimulatorFactory, by_id_name
from tests.workflows.helpers import ALPHA, CREDENTIALS

CUFF = "AA:BB:CC:DD:EE:01"
BINDING = BoundDevice(id="cuff", profile="generic-ble-blood-pressure", address=CUFF)


class Collector:
    def __init__(self) -> None:
        self.updates: list[ManagerUpdate] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        self._drained = 0

    def __call__(self, update: ManagerUpdate) -> None:
        with self._lock:
            self.updates.append(update)
            self.threads.add(threading.current_thread().name)

    def of(self, kind: type) -> list[ManagerUpdate]:
        with self._lock:
            return [u for u in self.updates if isinstance(u, kind)]

    def drain_into(self, rooming: Rooming) -> None:
        """What the station's UI thread does with the hand-overs: `deliver` each device
        event not yet drained to the workflow, then its tick (burst windows)."""
        with self._lock:
            fresh, self._drained = self.updates[self._drained :], len(self.updates)
        for update in fresh:
            if isinstance(update, Captured | Connected):
                deliver(rooming, update)
        rooming.tick()


def confirmed_rooming(
    clock: Callable[[], datetime], bound: tuple[str, ...], policy: GuardSection
) -> Rooming:
    """A rooming of the fake patient ALPHA with identifiers confirmed (its guard session open)."""
    rooming = Rooming(clock=clock, credentials=CREDENTIALS, bound_devices=bound,
                      guard_policy=policy)
    rooming.set_schedule((ALPHA,))
    rooming.sign_in("BADGE-0042")
    rooming.pick_patient(ALPHA.appointment_id)
    rooming.confirm_identifiers()
    return rooming


@pytest.mark.ble
def test_stored_dump_goes_to_tray_fresh_reading_attaches_live_pressure_passes(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop
) -> None:
    stored = [StoredBp(140 + i, 90, 107, 80, datetime(2026, 3, 1, 8, i)) for i in range(5)]
    cuff = BloodPressureCuff(fake_bluez, CUFF, stored=stored, battery_percent=87, firmware="1.4.2")
    rooming = confirmed_rooming(
        datetime.now, ("cuff",), GuardSection(clock_skew_s=120, connect_burst_window_s=0.4)
    )
    out = Collector()
    manager = DeviceManager([BINDING], out, datetime.now)

    async def until(predicate: object, timeout: float = 5) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():  # type: ignore[operator]
                manager.tick()
                out.drain_into(rooming)
                await asyncio.sleep(0.02)

    async def main() -> None:
        link = BleLink([BINDING], manager.handle, mode=Mode.DEMO)
        runner = asyncio.create_task(link.run())
        try:
            await until(lambda: len(rooming.tray) == 5)
            # Past the burst window, and into a later whole second than the confirmation:
            # Date Time carries whole seconds, and this cuff's clock is not one the station
            # set, so a time stamp in the confirmation's own second reads as before it.
            await asyncio.sleep(1.05)
            fresh_at = datetime.now().replace(microsecond=0)
            await asyncio.to_thread(
                cuff.measure, 124, 79, 94, 68, measured_at=fresh_at, cuff_pressures_mmhg=(55, 110)
            )
            await until(lambda: len(rooming.entries) == 1)
        finally:
            link.stop()
            await runner

    ble_loop.run(main())
    tray = rooming.tray
    assert [getattr(e.reading, "systolic_mmhg", None) for e in tray] == [140, 141, 142, 143, 144]
    assert all(e.reasons == (TrayReason.BEFORE_SESSION, TrayReason.CONNECT_BURST) for e in tray)
    assert len(out.of(Connected)) == 1
    [attached] = rooming.entries
    assert isinstance(attached.reading, BloodPressure)
    assert (attached.reading.systolic_mmhg, attached.reading.diastolic_mmhg) == (124, 79)
    live = [u.reading.cuff_pressure_mmhg for u in out.of(Captured)  # type: ignore[union-attr]
            if isinstance(u.reading, CuffPressure)]  # type: ignore[union-attr]
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
    out = Collector()
    manager = DeviceManager([BINDING], out, datetime.now)
    manager.handle(StateChanged(device_id="intruder", state=LinkState.CONNECTED))
    assert out.updates == [Ignored(device_id="intruder", why="device is not bound to this station")]
    assert [s.device_id for s in manager.status()] == ["cuff"]


def test_error_state_keeps_the_last_error_for_biomed() -> None:
    t = datetime(2026, 3, 2, 9, 0)
    out = Collector()
    manager = DeviceManager([BINDING], out, lambda: t + timedelta(seconds=1))
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


def test_manager_owns_serial_links_a_streaming_oximeter_attaches_one_reading_per_episode(
    by_id_dir: Path, serial_simulator: SimulatorFactory
) -> None:
    """A Nonin Xpod on a pty, bound by its by-id name, streaming a patient at rest: the
    manager opens it with SerialLink; of the many readings of one probe-on episode exactly
    one attaches (the last of 5 s of stable values, exactly as received), the rest are live
    values for the tile; probe off and on again is a second episode and a second reading;
    the status table holds it beside a Bluetooth cuff, and an unplug shows as an error."""
    profile = find_profile("nonin-xpod-3012lp")
    simulator = serial_simulator(profile, scenario="steady", speed=3.0)
    port = str(by_id_dir / by_id_name(profile))
    oximeter = BoundDevice(id="oximeter", profile=profile.id, port=port)
    rooming = confirmed_rooming(datetime.now, ("cuff", "oximeter"), GuardSection())
    out = Collector()
    # The capture's clock runs as fast as the simulated device's (speed 3): 5 s take 1.7 s.
    manager = DeviceManager([BINDING, oximeter], out, datetime.now,
                            monotonic=lambda: time.monotonic() * 3)

    def wait_for(done: Callable[[], bool], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            manager.tick()
            out.drain_into(rooming)
            time.sleep(0.02)
        assert done()

    def live() -> list[LiveValue]:
        return [u for u in out.of(LiveValue) if isinstance(u, LiveValue)]

    [link] = manager.start_serial_links(reading_mode=Mode.DEMO, backoff_max_s=0.2)
    try:
        assert manager.serial_link("oximeter") is link
        wait_for(lambda: len(rooming.entries) == 1, 8)
        seen = len(live())
        wait_for(lambda: len(live()) >= seen + 6, 5)  # the probe stays on: live values only
        assert len(rooming.entries) == 1
        assert manager.capture_state("oximeter") is CaptureState.CAPTURED
        simulator.model.scenario = "sensor_off"
        wait_for(lambda: live()[-1].reading is None, 5)
        assert live()[-1] == LiveValue(device_id="oximeter", reading=None, state=CaptureState.IDLE)
        simulator.model.scenario = "steady"
        wait_for(lambda: len(rooming.entries) == 2, 8)
        attached = rooming.entries
        assert {a.device for a in attached} == {"oximeter"}
        # Each attached reading is one the device sent, as received: the same object the
        # tile showed live, with the values the simulator put on the wire.
        live_readings = [v.reading for v in live()]
        sent = [(s["spo2_percent"], s["pulse_rate_bpm"]) for s in simulator.sent]
        for a in attached:
            assert any(a.reading is r for r in live_readings)
            assert isinstance(a.reading, PulseOximetry)
            assert (a.reading.spo2_percent, a.reading.pulse_rate_bpm) in sent
            assert (a.reading.mode, a.reading.flags) == (Mode.DEMO, ())
        assert rooming.tray == ()
        states = [u.state for u in out.of(DeviceStatus)]  # type: ignore[union-attr]
        assert DeviceState.MEASURING in states  # settling: "measuring…"
        status = {s.device_id: s for s in manager.status()}
        assert status["oximeter"].port == port
        assert status["oximeter"].last_reading == live_readings[-1]
        assert status["cuff"].state is DeviceState.UNSEEN
        simulator.stop()  # unplugged: the port and its by-id name vanish
        wait_for(lambda: manager.status()[1].state is DeviceState.ERROR, 5)
        gone = manager.status()[1]
        assert gone.last_error is not None and port in gone.last_error
    finally:
        manager.stop_links()
    assert manager.status()[1].state is DeviceState.UNSEEN  # stopped: not being read


def _ox(spo2: float | None, n: int, *flags: Flag) -> PulseOximetry:
    return PulseOximetry(spo2_percent=spo2, pulse_rate_bpm=None if spo2 is None else 72.0,
                         flags=flags, unit_as_sent=Unit.PERCENT, codec="serial:masimo-ascii",
                         codec_version="1", raw_hex=f"{n:04x}")


def test_streaming_readings_become_live_values_and_one_capture_spot_readings_pass() -> None:
    """Exact updates for a streaming oximeter and a spot cuff fed through `handle`."""
    now = [0.0]
    t = datetime(2026, 3, 2, 9, 0)
    out = Collector()
    bindings = [BoundDevice(id="ox", profile="masimo-rad-8", port="/dev/ttyUSB0"), BINDING]
    manager = DeviceManager(bindings, out, lambda: t, monotonic=lambda: now[0])
    stream = [_ox(97, i) for i in range(7)]
    for i, reading in enumerate(stream):
        now[0] = float(i)
        manager.handle(ReadingArrived(device_id="ox", reading=reading, received_monotonic_s=0))
    updates = [u for u in out.updates if not isinstance(u, DeviceStatus)]
    settling = [LiveValue(device_id="ox", reading=r, state=CaptureState.SETTLING)
                for r in stream[:5]]
    assert updates == [
        *settling,
        LiveValue(device_id="ox", reading=stream[5], state=CaptureState.CAPTURED),
        Captured(device_id="ox", reading=stream[5], received_at=t),
        LiveValue(device_id="ox", reading=stream[6], state=CaptureState.CAPTURED),
    ]
    out.updates.clear()
    now[0] = 16.0  # 10 s of silence: the probe was put down
    manager.tick()
    assert out.updates == [LiveValue(device_id="ox", reading=None, state=CaptureState.IDLE)]
    out.updates.clear()
    bp = BloodPressure(systolic_mmhg=124, diastolic_mmhg=80, unit_as_sent=Unit.MMHG,
                       codec="ble:2a35", codec_version="1", measured_at=t, raw_hex="1e")
    manager.handle(ReadingArrived(device_id="cuff", reading=bp, received_monotonic_s=0))
    assert [u for u in out.updates if not isinstance(u, DeviceStatus)] == [
        Captured(device_id="cuff", reading=bp, received_at=t)]


def test_serial_links_refuse_a_binding_to_an_unknown_or_bluetooth_profile() -> None:
    manager = DeviceManager(
        [
            BoundDevice(id="ox", profile="nonin-9999", port="/dev/ttyUSB0"),
            BoundDevice(id="cuff", profile="and-ua-651ble", port="/dev/ttyUSB1"),
        ],
        Collector(),
        datetime.now,
    )
    with pytest.raises(ConfigError) as raised:
        manager.start_serial_links()
    assert raised.value.problems == [
        "ox: unknown profile 'nonin-9999'",
        "cuff: not a serial profile: 'and-ua-651ble'",
    ]


def test_a_value_outside_the_bound_devices_measuring_range_is_rejected_naming_the_profile() -> None:
    """A pulse of 250 /min is physically possible (accepted from any device that can measure
    it) but a Masimo Rad-8 measures pulse rate over 25–240 bpm only (Rad-8 Operator's Manual,
    Specifications: pulse rate range 25–240 bpm): from the bound Rad-8 it is not a
    measurement. The streaming oximeter's captured reading goes link -> manager -> rooming."""
    now = [0.0]
    t = datetime(2026, 3, 2, 9, 0)
    out = Collector()
    bindings = [BoundDevice(id="ox", profile="masimo-rad-8", port="/dev/ttyUSB0")]
    manager = DeviceManager(bindings, out, lambda: t, monotonic=lambda: now[0])
    rooming = Rooming(clock=lambda: t, credentials=CREDENTIALS, bound_devices=manager.bound_ids,
                      device_ranges=manager.measuring_ranges())
    rooming.set_schedule((ALPHA,))
    rooming.sign_in("BADGE-0042")
    rooming.pick_patient(ALPHA.appointment_id)
    rooming.confirm_identifiers()
    fast = [PulseOximetry(spo2_percent=97, pulse_rate_bpm=250, unit_as_sent=Unit.PERCENT,
                          codec="serial:masimo-ascii", codec_version="1", raw_hex=f"{i:04x}")
            for i in range(7)]
    for i, reading in enumerate(fast):
        now[0] = float(i)
        manager.handle(ReadingArrived(device_id="ox", reading=reading, received_monotonic_s=0))
    out.drain_into(rooming)
    [entry] = rooming.entries
    assert entry.verdict.status == "rejected"
    assert entry.verdict.reasons == (
        "pulse 250 /min is outside this device's measuring range (masimo-rad-8): "
        "expected 25–240 /min",
    )
    # The same value from a device with no narrower stated range is accepted (and flagged).
    rooming.set_bound_devices(("ox",), {})
    assert validate(fast[5]).status == "accepted"
