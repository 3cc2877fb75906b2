"""BLE device simulators on the fake BlueZ: each standard health profile and a Nonin 3230.

They send the real GATT frames (built by the codecs' encoders) the way real devices do:
a cuff that dumps its stored readings as soon as indications are enabled, one that drops
the link in the middle of a measurement, one that needs a passkey at first pairing, a scale
and a cuff that want their clock written. Every method may be called from any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from station.devices.codecs.gatt import (
    blood_pressure,
    current_time,
    nonin,
    plx,
    racp,
    thermometer,
    weight,
)
from station.devices.simulators.fakebluez import (
    FakeBlueZ,
    FakeCharacteristic,
    FakePeripheral,
    FakeService,
    GattError,
)
from station.models import TemperatureSite

BATTERY_SERVICE = "180f"
DEVICE_INFORMATION = "180a"
NONIN_SERVICE = "46a970e0-0d5f-11e2-8b5e-0002a5d5c51b"
NONIN_MEASUREMENT = "0aad7ea0-0d60-11e2-8e3c-0002a5d5c51b"


@dataclass
class StoredBp:
    """A reading kept in the cuff's memory (measured earlier, maybe on someone else)."""

    systolic_mmhg: float
    diastolic_mmhg: float
    mean_arterial_mmhg: float
    pulse_rate_bpm: float
    measured_at: datetime


def _info_services(battery_percent: int, firmware: str) -> list[FakeService]:
    return [
        FakeService(
            BATTERY_SERVICE, [FakeCharacteristic("2a19", ("read",), bytes((battery_percent,)))]
        ),
        FakeService(DEVICE_INFORMATION, [FakeCharacteristic("2a26", ("read",), firmware.encode())]),
    ]


@dataclass
class BleSimulator:
    """One simulated peripheral on a fake BlueZ."""

    fake: FakeBlueZ
    peripheral: FakePeripheral
    clock_written: list[bytes] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.peripheral.address

    def send(self, uuid: str, value: bytes) -> bool:
        """Notify / indicate one value; False when the station is not subscribed."""
        return self.fake.run(self.fake.notify(self.peripheral, uuid, value))

    def sleep(self) -> None:
        """Drop the link and stop advertising, as a cuff does after sending its reading."""

        async def _sleep() -> None:
            self.peripheral.advertising = False
            await self.fake.drop(self.peripheral)

        self.fake.run(_sleep())

    def wake(self) -> None:
        """Start advertising again (button pressed, new measurement ready)."""

        async def _wake() -> None:
            self.peripheral.advertising = True

        self.fake.run(_wake())

    @property
    def connected(self) -> bool:
        return self.peripheral.connected

    def subscribed(self, uuid: str) -> bool:
        return self.peripheral.connected and self.peripheral.char(uuid).notifying

    async def _record_clock(self, data: bytes) -> None:
        self.clock_written.append(data)


class BloodPressureCuff(BleSimulator):
    """A standard Blood Pressure service cuff (0x1810) with live cuff pressure.

    `clock_characteristic`: "2a08" (Date Time, A&D), "2a2b" (Current Time, notified on
    subscribe as Omron does) or None.
    """

    DEVICE_CLOCK = datetime(2025, 1, 1, 0, 0, 0)  # a clock nobody set

    def __init__(
        self,
        fake: FakeBlueZ,
        address: str,
        name: str = "BP-Cuff",
        *,
        stored: Sequence[StoredBp] = (),
        dump_stored_on_connect: bool = True,
        passkey: int | None = None,
        clock_characteristic: str | None = "2a08",
        refuse_clock_write: bool = False,
        battery_percent: int = 87,
        firmware: str = "1.4.2",
        advertising: bool = True,
    ) -> None:
        self.stored = list(stored)
        self.dump_stored_on_connect = dump_stored_on_connect
        self.refuse_clock_write = refuse_clock_write
        self.time_notified = False
        chars = [
            FakeCharacteristic("2a35", ("indicate",), on_subscribe=self._on_subscribe),
            FakeCharacteristic("2a36", ("notify",)),
            FakeCharacteristic(
                "2a49",
                ("read",),
                blood_pressure.encode_feature(
                    body_movement_detection=True,
                    cuff_fit_detection=True,
                    irregular_pulse_detection=True,
                ),
            ),
            FakeCharacteristic("2a52", ("write", "indicate"), on_write=self._on_racp),
        ]
        if clock_characteristic == "2a2b":
            # Current Time: Omron notifies its own time first and expects the write after it.
            chars.append(
                FakeCharacteristic(
                    "2a2b",
                    ("read", "write", "notify"),
                    current_time.encode(self.DEVICE_CLOCK),
                    on_write=self._on_clock,
                    on_subscribe=self._notify_time,
                )
            )
        elif clock_characteristic is not None:
            chars.append(
                FakeCharacteristic(clock_characteristic, ("read", "write"), on_write=self._on_clock)
            )
        peripheral = FakePeripheral(
            address,
            name,
            [FakeService("1810", chars), *_info_services(battery_percent, firmware)],
            advertised_uuids=["1810"],
            passkey=passkey,
            advertising=advertising,
        )
        super().__init__(fake, fake.add(peripheral))

    @staticmethod
    def frame(reading: StoredBp) -> bytes:
        return blood_pressure.encode_measurement(
            reading.systolic_mmhg,
            reading.diastolic_mmhg,
            reading.mean_arterial_mmhg,
            timestamp=reading.measured_at,
            pulse_rate_bpm=reading.pulse_rate_bpm,
        )

    async def _on_clock(self, data: bytes) -> None:
        if self.refuse_clock_write:
            raise GattError("org.bluez.Error.NotPermitted", "Write not permitted")
        await self._record_clock(data)

    async def _notify_time(self) -> None:
        self.time_notified = True
        await self.fake.notify(self.peripheral, "2a2b", current_time.encode(self.DEVICE_CLOCK))

    async def _on_subscribe(self) -> None:
        # Omron, Beurer, Microlife: stored readings go out as soon as indications are on.
        if self.dump_stored_on_connect:
            for reading in self.stored:
                await self.fake.notify(self.peripheral, "2a35", self.frame(reading))

    async def _on_racp(self, data: bytes) -> None:
        op, operator = data[0], data[1] if len(data) > 1 else 0
        if op == racp.OpCode.REPORT_RECORDS and operator == racp.Operator.ALL:
            for reading in self.stored:
                await self.fake.notify(self.peripheral, "2a35", self.frame(reading))
            code = racp.ResponseCode.SUCCESS if self.stored else racp.ResponseCode.NO_RECORDS_FOUND
            reply = racp.encode_response(racp.OpCode.REPORT_RECORDS, code)
        elif op == racp.OpCode.DELETE_RECORDS and operator == racp.Operator.ALL:
            self.stored.clear()
            reply = racp.encode_response(racp.OpCode.DELETE_RECORDS, racp.ResponseCode.SUCCESS)
        elif op == racp.OpCode.REPORT_COUNT:
            reply = racp.encode_count_response(len(self.stored))
        else:
            # GLS/PLXP RACP error handling: echo the op code as received, whatever it is.
            reply = racp.encode_response(op, racp.ResponseCode.OP_CODE_NOT_SUPPORTED)
        await self.fake.notify(self.peripheral, "2a52", reply)

    def measure(
        self,
        systolic_mmhg: float,
        diastolic_mmhg: float,
        mean_arterial_mmhg: float,
        pulse_rate_bpm: float,
        *,
        measured_at: datetime | None = None,
        cuff_pressures_mmhg: Sequence[float] = (),
        drop_after_pressures: bool = False,
    ) -> bool:
        """Inflate (live cuff pressure), then indicate the result; or drop mid-measurement."""
        for pressure in cuff_pressures_mmhg:
            self.send("2a36", blood_pressure.encode_intermediate(pressure))
        if drop_after_pressures:
            self.fake.run(self.fake.drop(self.peripheral))
            return False
        return self.send(
            "2a35",
            blood_pressure.encode_measurement(
                systolic_mmhg,
                diastolic_mmhg,
                mean_arterial_mmhg,
                timestamp=measured_at,
                pulse_rate_bpm=pulse_rate_bpm,
            ),
        )


class Thermometer(BleSimulator):
    """A standard Health Thermometer (0x1809)."""

    def __init__(self, fake: FakeBlueZ, address: str, name: str = "Thermo") -> None:
        peripheral = FakePeripheral(
            address,
            name,
            [
                FakeService(
                    "1809",
                    [
                        FakeCharacteristic("2a1c", ("indicate",)),
                        FakeCharacteristic(
                            "2a1d", ("read",), thermometer.encode_type(TemperatureSite.MOUTH)
                        ),
                    ],
                ),
                *_info_services(64, "2.0.0"),
            ],
        )
        super().__init__(fake, fake.add(peripheral))

    def measure(self, temperature_c: float, measured_at: datetime | None = None) -> bool:
        frame = thermometer.encode_measurement(
            temperature_c, timestamp=measured_at, site=TemperatureSite.MOUTH
        )
        return self.send("2a1c", frame)


class WeightScale(BleSimulator):
    """A standard Weight Scale (0x181D) that wants its Date Time written."""

    def __init__(self, fake: FakeBlueZ, address: str, name: str = "Scale") -> None:
        peripheral = FakePeripheral(
            address,
            name,
            [
                FakeService(
                    "181d",
                    [
                        FakeCharacteristic("2a9d", ("indicate",)),
                        FakeCharacteristic(
                            "2a9e", ("read",), weight.encode_feature(timestamp_supported=True)
                        ),
                        FakeCharacteristic("2a08", ("read", "write"), on_write=self._record_clock),
                    ],
                ),
                *_info_services(100, "3.1"),
            ],
        )
        super().__init__(fake, fake.add(peripheral))

    def measure(self, weight_kg: float, measured_at: datetime | None = None) -> bool:
        return self.send("2a9d", weight.encode_measurement(weight_kg, timestamp=measured_at))


class PulseOximeter(BleSimulator):
    """A standard Pulse Oximeter (0x1822): spot-check and continuous."""

    def __init__(self, fake: FakeBlueZ, address: str, name: str = "PLX") -> None:
        peripheral = FakePeripheral(
            address,
            name,
            [
                FakeService(
                    "1822",
                    [
                        FakeCharacteristic("2a5e", ("indicate",)),
                        FakeCharacteristic("2a5f", ("notify",)),
                        FakeCharacteristic("2a60", ("read",), plx.encode_features(0)),
                    ],
                ),
                *_info_services(55, "1.0"),
            ],
        )
        super().__init__(fake, fake.add(peripheral))

    def spot_check(
        self, spo2_percent: float, pulse_rate_bpm: float, measured_at: datetime | None = None
    ) -> bool:
        return self.send(
            "2a5e", plx.encode_spot_check(spo2_percent, pulse_rate_bpm, timestamp=measured_at)
        )

    def continuous(self, spo2_percent: float, pulse_rate_bpm: float) -> bool:
        return self.send("2a5f", plx.encode_continuous(spo2_percent, pulse_rate_bpm))


class Nonin3230(BleSimulator):
    """Nonin 3230 WristOx: proprietary service, one 10-byte frame a second, bonded."""

    def __init__(self, fake: FakeBlueZ, address: str, name: str = "Nonin3230_501234") -> None:
        self.counter = 0
        peripheral = FakePeripheral(
            address,
            name,
            [FakeService(NONIN_SERVICE, [FakeCharacteristic(NONIN_MEASUREMENT, ("notify",))])],
        )
        super().__init__(fake, fake.add(peripheral))

    def measure(self, spo2_percent: int, pulse_rate_bpm: int, pai_percent: float = 2.5) -> bool:
        self.counter = (self.counter + 1) & 0xFFFF
        frame = nonin.encode(
            spo2_percent, pulse_rate_bpm, pai_percent=pai_percent, counter=self.counter
        )
        return self.send(NONIN_MEASUREMENT, frame)
