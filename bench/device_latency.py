"""Device latency: last byte sent by a simulated device -> reading delivered to the session.

BLE: a simulated thermometer on the fake BlueZ (private dbus-daemon) indicates 1,000
readings one after another. The baseline is a bare bleak notification callback that does
nothing; the station path is BleLink -> codec -> DeviceManager -> wrong-patient guard ->
the consumer receiving `Attached`. Both are timed from the moment the simulator hands the
frame to D-Bus (perf_counter, one process) to the callback.

Serial: Masimo ASCII 1 records (the serial simulator's frame builder, a 1 Hz oximeter's
line) are written one at a time to the master side of a raw pty; the clock starts just
before the write of the record (its last byte included). The baseline is bare pyserial
reading the slave side the way the link does (`read(max(1, in_waiting))`) until the whole
record is in, nothing decoded; the station path is SerialLink -> stream codec ->
DeviceManager -> guard -> the consumer receiving `Attached` (the profile run as a spot device,
so every record goes the whole way rather than one per stable episode).

Prints p50/p99 of each and the station's own overhead (p99 difference; target < 5 ms) and
the ratio. `--transport ble|serial` runs one half only.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

N = 1000


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)
    )


def confirmed_rooming(bound: tuple[str, ...], policy: object) -> Any:
    """A rooming of a fake patient with identifiers confirmed: its guard session is open."""
    from datetime import date

    from station.rooming import Rooming
    from station.rooming_data import ScheduledPatient

    rooming = Rooming(
        clock=datetime.now,
        credentials={"BENCH": "ma-bench"},
        bound_devices=bound,
        guard_policy=policy,  # type: ignore[arg-type]
    )
    rooming.set_schedule(
        (
            ScheduledPatient(
                appointment_id="APT-BENCH",
                mrn="TEST0",
                family_name="ZZTEST",
                given_name="Bench",
                birth_date=date(1980, 1, 1),
            ),
        )
    )
    rooming.sign_in("BENCH")
    rooming.pick_patient("APT-BENCH")
    rooming.confirm_identifiers()
    return rooming


async def measure(fake: object, thermo: object, *, station: bool) -> list[float]:
    from bleak import BleakClient, BleakScanner

    from station.config import BoundDevice, GuardSection
    from station.devices.ble_link import BleLink
    from station.devices.manager import Captured, DeviceManager
    from station.devices.simulators.fakebluez import FakeBlueZ

    assert isinstance(fake, FakeBlueZ)
    peripheral = thermo.peripheral  # type: ignore[attr-defined]
    arrived: asyncio.Queue[float] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    sent_at: dict[int, float] = {}

    async def send(i: int) -> None:
        frame = (
            bytes((0x00,)) + (3600 + i % 100).to_bytes(3, "little", signed=True) + b"\xfe"
        )  # 36.00..36.99 °C
        sent_at[i] = time.perf_counter()
        await fake.notify(peripheral, "2a1c", frame)

    runner = None
    if station:
        binding = BoundDevice(
            id="thermo", profile="generic-ble-thermometer", address=peripheral.address
        )
        rooming = confirmed_rooming(("thermo",), GuardSection(connect_burst_window_s=0))

        def consumer(update: object) -> None:
            # The bench's one consumer thread stands in for the UI thread's drain.
            if isinstance(update, Captured) and rooming.offer(
                update.device_id, update.reading, update.received_at
            ):
                loop.call_soon_threadsafe(arrived.put_nowait, time.perf_counter())

        manager = DeviceManager([binding], consumer, datetime.now)
        link = BleLink([binding], manager.handle)
        runner = asyncio.create_task(link.run())
        while not (peripheral.connected and peripheral.char("2a1c").notifying):
            await asyncio.sleep(0.01)
        client = None
    else:
        device = await BleakScanner.find_device_by_address(peripheral.address, timeout=5)
        assert device is not None
        client = BleakClient(device)
        await client.connect()
        await client.start_notify(
            "00002a1c-0000-1000-8000-00805f9b34fb",
            lambda _c, _d: arrived.put_nowait(time.perf_counter()),
            bluez={"use_start_notify": True},
        )
    latencies = []
    for i in range(N):
        fake.submit(send(i)).result(5)
        got = await asyncio.wait_for(arrived.get(), 5)
        latencies.append((got - sent_at[i]) * 1000)
    if client is not None:
        await client.disconnect()
    if runner is not None:
        link.stop()
        await runner
    await fake_drop(fake, peripheral)
    return latencies


async def fake_drop(fake: object, peripheral: object) -> None:
    from station.devices.simulators.fakebluez import FakeBlueZ

    assert isinstance(fake, FakeBlueZ)
    fake.run(fake.drop(peripheral))  # type: ignore[arg-type]
    while peripheral.connected:  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)


def serial_latencies(*, station: bool) -> list[float]:
    """Write N Masimo records to a pty; time each until pyserial / the session has it."""
    import queue
    import threading
    import tty

    import serial

    from station.config import BoundDevice, GuardSection
    from station.devices.manager import Captured, DeviceManager, DeviceState, DeviceStatus
    from station.devices.profiles import Delivery, find_profile
    from station.devices.serial_link import open_port
    from station.devices.simulators import frames

    # The Masimo streams, so the station keeps one reading per stable episode (capture.py) and
    # only that one reaches the guard. To time every frame through the whole path (link ->
    # codec -> manager -> guard -> session), the bench runs the same profile as a spot device.
    streaming = find_profile("masimo-rad-8")
    profile = streaming.model_copy(
        update={"behaviour": streaming.behaviour.model_copy(update={"delivery": Delivery.SPOT})}
    )
    assert profile.serial is not None
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    arrived: queue.SimpleQueue[float] = queue.SimpleQueue()
    stop = threading.Event()
    records = [
        frames.masimo_line(datetime.now().replace(microsecond=0), 95 + i % 5, 60 + i % 40, 2.5)
        for i in range(N)
    ]
    latencies: list[float] = []
    try:
        if station:
            rooming = confirmed_rooming(("ox",), GuardSection(connect_burst_window_s=0))
            connected = threading.Event()

            def consumer(update: object) -> None:
                if isinstance(update, Captured) and rooming.offer(
                    update.device_id, update.reading, update.received_at
                ):
                    arrived.put(time.perf_counter())
                elif isinstance(update, DeviceStatus) and update.state is DeviceState.CONNECTED:
                    connected.set()

            binding = BoundDevice(id="ox", profile=profile.id, port=path)
            manager = DeviceManager(
                [binding], consumer, datetime.now, profiles={profile.id: profile}
            )
            manager.start_serial_links({profile.id: profile})
            assert connected.wait(5)
        else:
            port = open_port(path, profile.serial.line)

            def reader() -> None:
                buffer = bytearray()
                want = len(records[0])
                while not stop.is_set():
                    try:
                        data = port.read(max(1, port.in_waiting))
                    except serial.SerialException:
                        return
                    buffer += data
                    while len(buffer) >= want:
                        del buffer[:want]
                        arrived.put(time.perf_counter())

            thread = threading.Thread(target=reader, daemon=True)
            thread.start()
        for record in records:
            sent = time.perf_counter()
            os.write(master, record)
            got = arrived.get(timeout=5)
            latencies.append((got - sent) * 1000)
    finally:
        stop.set()
        if station:
            manager.stop_links()
        else:
            thread.join(2)
            port.close()
        os.close(master)
        os.close(slave)
    return latencies


def report(title: str, baseline: str, base: list[float], full: list[float]) -> None:
    print(f"{title + f', {N} readings, ms':<30}     p50      p99")
    print(f"  {'baseline: ' + baseline:<28} {pct(base, 50):7.3f}  {pct(base, 99):7.3f}")
    print(f"  {'station: link..session':<28} {pct(full, 50):7.3f}  {pct(full, 99):7.3f}")
    overhead = pct(full, 99) - pct(base, 99)
    ratio = pct(full, 99) / pct(base, 99)
    verdict = "OK" if overhead < 5 else "OVER TARGET"
    print(f"  overhead p99 {overhead:.3f} ms (target < 5 ms: {verdict}); ratio p99 {ratio:.2f}x")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=("all", "ble", "serial"), default="all")
    args = parser.parse_args()
    if args.transport in ("all", "ble"):
        ble_main()
    if args.transport in ("all", "serial"):
        base = serial_latencies(station=False)
        full = serial_latencies(station=True)
        report("Serial", "bare pyserial", base, full)


def ble_main() -> None:
    from station.devices.simulators.ble import Thermometer
    from station.devices.simulators.fakebluez import FakeBlueZ, PrivateBus

    bus = PrivateBus(Path(tempfile.mkdtemp(prefix="bench-bluez-")))
    address = bus.start()
    os.environ.update(bus.environment())
    fake = FakeBlueZ(address, advert_interval_s=0.02).start()
    try:
        thermo = Thermometer(fake, "AA:BB:CC:DD:EE:10")

        async def both() -> tuple[list[float], list[float]]:
            base = await measure(fake, thermo, station=False)
            full = await measure(fake, thermo, station=True)
            return base, full

        base, full = asyncio.run(both())
    finally:
        fake.stop()
        bus.stop()
    report("BLE", "bare bleak callback", base, full)


if __name__ == "__main__":
    main()
