"""Device latency: last byte sent by a simulated device -> reading delivered to the session.

BLE: a simulated thermometer on the fake BlueZ (private dbus-daemon) indicates 1,000
readings one after another. The baseline is a bare bleak notification callback that does
nothing; the station path is BleLink -> codec -> DeviceManager -> wrong-patient guard ->
the consumer receiving `Attached`. Both are timed from the moment the simulator hands the
frame to D-Bus (perf_counter, one process) to the callback. Prints p50/p99 and the station's
own overhead (p99 difference; target < 5 ms). Serial: see docs/device-links.md (not measured
here yet).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

N = 1000


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1] if q < 100 else max(values)
    )


async def measure(fake: object, thermo: object, *, station: bool) -> list[float]:
    from bleak import BleakClient, BleakScanner

    from station.config import BoundDevice, GuardSection
    from station.devices.ble_link import BleLink
    from station.devices.manager import DeviceManager
    from station.devices.simulators.fakebluez import FakeBlueZ
    from station.guard import Attached, WrongPatientGuard

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
        guard = WrongPatientGuard(datetime.now, ["thermo"], GuardSection(connect_burst_window_s=0))
        guard.open_session("BENCH")

        def consumer(update: object) -> None:
            if isinstance(update, Attached):
                loop.call_soon_threadsafe(arrived.put_nowait, time.perf_counter())

        manager = DeviceManager([binding], guard, consumer, datetime.now)
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


def main() -> None:
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
    print(f"BLE, {N} readings, ms          p50      p99")
    print(f"  baseline (bare bleak cb)  {pct(base, 50):7.3f}  {pct(base, 99):7.3f}")
    print(f"  station (link..session)   {pct(full, 50):7.3f}  {pct(full, 99):7.3f}")
    overhead = pct(full, 99) - pct(base, 99)
    ratio = pct(full, 99) / pct(base, 99)
    verdict = "OK" if overhead < 5 else "OVER TARGET"
    print(f"  overhead p99 {overhead:.3f} ms (target < 5 ms: {verdict}); ratio p99 {ratio:.2f}x")


if __name__ == "__main__":
    main()
