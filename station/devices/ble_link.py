"""The Bluetooth LE link (bleak): scans, connects only to bound devices, turns GATT into events.

One `BleLink` runs one continuous scan filtered by the health-service UUIDs of the bound
profiles. An advert from a bound address (and a name the profile accepts) starts a
connection; anything else is only remembered for `station devices scan`. On connect the
link reads the feature / battery / firmware characteristics, writes the device clock where
the profile says so, subscribes to the measurement characteristics (StartNotify, never
AcquireNotify: devices that send before the CCCD write completes lose data otherwise) and
optionally asks RACP for the stored records. When the device goes away the link waits for
its next advert: a cuff that sleeps between measurements is normal. Failed connects back
off exponentially.

Events go to one sink callback, called on the link's asyncio loop; the device manager does
the thread hand-off. Notification handling is idempotent: a callback from an earlier
connection is ignored, and the same bytes on the same characteristic within
`DUPLICATE_WINDOW_S` are delivered once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from pydantic import BaseModel, ConfigDict

from station.config import BoundDevice
from station.devices.codecs.base import FrameCodec
from station.devices.codecs.registry import get_codec
from station.errors import FrameError
from station.models import AnyReading, Mode

log = logging.getLogger(__name__)

# A reconnect can make BlueZ deliver one notification twice within milliseconds; a device
# never sends the same frame twice that fast on purpose (Nonin and PLX frames carry counters).
DUPLICATE_WINDOW_S = 0.25
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
CONNECT_TIMEOUT_S = 15.0


def uuid128(uuid: str) -> str:
    text = uuid.lower().removeprefix("0x")
    return f"0000{text}-0000-1000-8000-00805f9b34fb" if len(text) == 4 else text


# Standard GATT pieces every profile may use.
BATTERY_LEVEL = uuid128("2a19")
FIRMWARE_REVISION = uuid128("2a26")
RACP = uuid128("2a52")
DATE_TIME = uuid128("2a08")
CURRENT_TIME = uuid128("2a2b")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Pairing(StrEnum):
    NONE = "none"  # no bond needed
    JUST_WORKS = "just_works"  # bond, nothing to type (agent: NoInputNoOutput)
    PASSKEY = "passkey"  # the device shows a passkey the MA types on the screen


class ClockWrite(StrEnum):
    NONE = "none"
    DATE_TIME = "date_time"  # A&D: write 0x2A08 on connect
    CURRENT_TIME = "current_time"  # Omron and others: write 0x2A2B


class BleProfile(_Frozen):
    """How to talk to one model over BLE: what to match, read, write and subscribe."""

    id: str
    summary: str
    service_uuids: tuple[str, ...]  # advertised; the scan filter and the first match rule
    name_prefixes: tuple[str, ...] = ()  # advertised name must start with one (empty: any)
    measurements: Mapping[str, str]  # characteristic UUID -> codec name; subscribed
    features: Mapping[str, str] = {}  # characteristic UUID -> codec name; read on connect
    clock: ClockWrite = ClockWrite.NONE
    racp: bool = False
    use_start_notify: bool = True
    pairing: Pairing = Pairing.NONE

    def matches(self, service_uuids: Iterable[str], name: str | None) -> bool:
        advertised = {uuid128(u) for u in service_uuids}
        if not advertised & {uuid128(u) for u in self.service_uuids}:
            return False
        return not self.name_prefixes or any(
            (name or "").startswith(prefix) for prefix in self.name_prefixes
        )


def _p(**kw: object) -> BleProfile:
    return BleProfile.model_validate(kw)


NONIN_3230_SERVICE = "46a970e0-0d5f-11e2-8b5e-0002a5d5c51b"
NONIN_3230_MEASUREMENT = "0aad7ea0-0d60-11e2-8e3c-0002a5d5c51b"

# The BLE side of the device profiles, by profile id.
BLE_PROFILES: dict[str, BleProfile] = {
    p.id: p
    for p in (
        _p(
            id="gatt-blood-pressure",
            summary="any cuff with the standard Blood Pressure service (0x1810)",
            service_uuids=("1810",),
            measurements={"2a35": "ble:2a35", "2a36": "ble:2a36"},
            features={"2a49": "ble:2a49"},
            racp=True,  # subscribed only when the cuff has it
        ),
        _p(
            id="and-ua-651ble",
            summary="A&D UA-651BLE cuff: wants its Date Time written on connect",
            service_uuids=("1810",),
            name_prefixes=("A&D_UA-651", "UA-651"),
            measurements={"2a35": "ble:2a35", "2a36": "ble:2a36"},
            features={"2a49": "ble:2a49"},
            clock=ClockWrite.DATE_TIME,
        ),
        _p(
            id="beurer-bm57",
            summary="Beurer BM57-class cuff: stored readings over RACP, passkey at first pairing",
            service_uuids=("1810",),
            name_prefixes=("BM57", "BM54", "SBM69"),
            measurements={"2a35": "ble:2a35", "2a36": "ble:2a36"},
            features={"2a49": "ble:2a49"},
            clock=ClockWrite.CURRENT_TIME,
            racp=True,
            pairing=Pairing.PASSKEY,
        ),
        _p(
            id="gatt-thermometer",
            summary="any thermometer with the standard Health Thermometer service (0x1809)",
            service_uuids=("1809",),
            measurements={"2a1c": "ble:2a1c"},
            features={"2a1d": "ble:2a1d"},
        ),
        _p(
            id="gatt-weight-scale",
            summary="any scale with the standard Weight Scale service (0x181D)",
            service_uuids=("181d",),
            measurements={"2a9d": "ble:2a9d"},
            features={"2a9e": "ble:2a9e"},
            clock=ClockWrite.DATE_TIME,
        ),
        _p(
            id="gatt-pulse-oximeter",
            summary="any oximeter with the standard Pulse Oximeter service (0x1822)",
            service_uuids=("1822",),
            measurements={"2a5e": "ble:2a5e", "2a5f": "ble:2a5f"},
            features={"2a60": "ble:2a60"},
        ),
        _p(
            id="nonin-3230",
            summary="Nonin 3230 WristOx (proprietary oximetry service)",
            service_uuids=(NONIN_3230_SERVICE,),
            name_prefixes=("Nonin3230",),
            measurements={NONIN_3230_MEASUREMENT: "ble:nonin-3230"},
            pairing=Pairing.JUST_WORKS,
        ),
    )
}


def ble_profile(profile_id: str) -> BleProfile:
    try:
        return BLE_PROFILES[profile_id]
    except KeyError:
        known = ", ".join(sorted(BLE_PROFILES))
        raise KeyError(f"unknown BLE profile {profile_id!r}; known: {known}") from None


def match_profiles(service_uuids: Iterable[str], name: str | None) -> list[str]:
    """Profile ids whose match rules accept this advert, most specific (named) first."""
    uuids = list(service_uuids)
    found = [p for p in BLE_PROFILES.values() if p.matches(uuids, name)]
    found.sort(key=lambda p: (not p.name_prefixes, p.id))
    return [p.id for p in found]


def encode_date_time(when: datetime) -> bytes:
    """Date Time (0x2A08) as 7 bytes: year u16 LE, month, day, hours, minutes, seconds."""
    return when.year.to_bytes(2, "little") + bytes(
        (when.month, when.day, when.hour, when.minute, when.second)
    )


def encode_current_time(when: datetime) -> bytes:
    """Current Time (0x2A2B): Date Time, day of week (1 Monday), 1/256 s, adjust reason."""
    fraction = when.microsecond * 256 // 1_000_000
    return encode_date_time(when) + bytes((when.isoweekday(), fraction, 0x01))  # manual update


# RACP (0x2A52) requests: op code, operator.
RACP_REPORT_ALL = bytes((0x01, 0x01))
RACP_DELETE_ALL = bytes((0x02, 0x01))
RACP_REPORT_COUNT = bytes((0x04, 0x01))


# ---- events the link reports ----------------------------------------------------------


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    SLEEPING = "sleeping"  # went away as devices do between measurements; will reconnect
    ERROR = "error"


class StateChanged(_Frozen):
    event: Literal["state"] = "state"
    device_id: str
    state: LinkState
    detail: str = ""


class DeviceInfo(_Frozen):
    event: Literal["info"] = "info"
    device_id: str
    battery_percent: int | None = None
    firmware_revision: str | None = None


class FeatureRead(_Frozen):
    event: Literal["feature"] = "feature"
    device_id: str
    characteristic: str
    codec: str
    value: BaseModel | None
    raw_hex: str


class RawFrame(_Frozen):
    """Every notification as it arrived, before decoding (for `station devices log`)."""

    event: Literal["raw"] = "raw"
    device_id: str
    characteristic: str
    raw_hex: str
    received_monotonic_s: float


class ReadingArrived(_Frozen):
    event: Literal["reading"] = "reading"
    device_id: str
    reading: AnyReading
    received_monotonic_s: float


class FrameRejected(_Frozen):
    event: Literal["bad_frame"] = "bad_frame"
    device_id: str
    characteristic: str
    problem: str
    raw_hex: str


class ClockWritten(_Frozen):
    event: Literal["clock"] = "clock"
    device_id: str
    characteristic: str
    written_hex: str


class RacpReply(_Frozen):
    event: Literal["racp"] = "racp"
    device_id: str
    raw_hex: str


LinkEvent = (
    StateChanged
    | DeviceInfo
    | FeatureRead
    | RawFrame
    | ReadingArrived
    | FrameRejected
    | ClockWritten
    | RacpReply
)
Sink = Callable[[LinkEvent], None]


class Seen(_Frozen):
    """An advert heard during the scan (bound or not)."""

    address: str
    name: str | None
    rssi: int
    service_uuids: tuple[str, ...]
    profiles: tuple[str, ...]
    bound_id: str | None


@dataclass
class _Device:
    binding: BoundDevice
    profile: BleProfile
    generation: int = 0
    state: LinkState = LinkState.SLEEPING
    task: asyncio.Task[None] | None = None
    client: BleakClient | None = None
    retry_at: float = 0.0
    backoff_s: float = BACKOFF_FIRST_S
    last_frames: dict[str, tuple[bytes, float]] = field(default_factory=dict)


class BleLink:
    """All bound BLE devices of this station, over one adapter."""

    def __init__(
        self,
        bindings: Iterable[BoundDevice],
        sink: Sink,
        *,
        clock: Callable[[], datetime] = datetime.now,
        mode: Mode = Mode.REAL,
        fetch_stored: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        pair: Callable[[str], bool] | None = None,
    ) -> None:
        self._sink = sink
        self._clock = clock
        self._mode = mode
        self._fetch_stored = fetch_stored
        self._monotonic = monotonic
        self._devices: dict[str, _Device] = {}
        for binding in bindings:
            if binding.address is None:
                continue
            self._devices[binding.address.upper()] = _Device(binding, ble_profile(binding.profile))
        self.seen: dict[str, Seen] = {}
        self._scanner: BleakScanner | None = None
        self._stopped = asyncio.Event()

    @property
    def service_uuids(self) -> list[str]:
        return sorted({uuid128(u) for d in self._devices.values() for u in d.profile.service_uuids})

    def state(self, device_id: str) -> LinkState | None:
        for device in self._devices.values():
            if device.binding.id == device_id:
                return device.state
        return None

    # ---- scanning ------------------------------------------------------------------------

    async def run(self) -> None:
        """Scan and keep bound devices connected until `stop()`."""
        self._stopped.clear()
        scanner = BleakScanner(self._on_advert, service_uuids=self.service_uuids or None)
        self._scanner = scanner
        await scanner.start()
        try:
            await self._stopped.wait()
        finally:
            with contextlib.suppress(BleakError):
                await scanner.stop()
            for device in self._devices.values():
                if device.task is not None:
                    device.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, BleakError):
                        await device.task
                if device.client is not None and device.client.is_connected:
                    with contextlib.suppress(BleakError, TimeoutError):
                        await device.client.disconnect()

    def stop(self) -> None:
        self._stopped.set()

    def _on_advert(self, ble_device: BLEDevice, adv: AdvertisementData) -> None:
        address = ble_device.address.upper()
        device = self._devices.get(address)
        self.seen[address] = Seen(
            address=address,
            name=adv.local_name or ble_device.name,
            rssi=adv.rssi,
            service_uuids=tuple(adv.service_uuids),
            profiles=tuple(match_profiles(adv.service_uuids, adv.local_name or ble_device.name)),
            bound_id=device.binding.id if device else None,
        )
        if device is None:
            return  # the cuff in the next room: seen, never connected
        if not device.profile.matches(adv.service_uuids, adv.local_name or ble_device.name):
            return
        if device.task is not None and not device.task.done():
            return
        if self._monotonic() < device.retry_at:
            return
        device.task = asyncio.create_task(self._session(device, ble_device))

    # ---- one connection ------------------------------------------------------------------

    def _emit_state(self, device: _Device, state: LinkState, detail: str = "") -> None:
        device.state = state
        self._sink(StateChanged(device_id=device.binding.id, state=state, detail=detail))

    async def _session(self, device: _Device, ble_device: BLEDevice) -> None:
        device.generation += 1
        generation = device.generation
        gone = asyncio.Event()
        self._emit_state(device, LinkState.CONNECTING)
        client = BleakClient(
            ble_device,
            disconnected_callback=lambda _c: gone.set(),
            timeout=CONNECT_TIMEOUT_S,
            pair=device.profile.pairing is not Pairing.NONE,
        )
        device.client = client
        try:
            await client.connect()
            device.backoff_s = BACKOFF_FIRST_S
            self._emit_state(device, LinkState.CONNECTED)
            await self._set_up(device, client, generation)
            await gone.wait()
            self._emit_state(device, LinkState.SLEEPING, "device disconnected")
        except (TimeoutError, BleakError, OSError) as exc:
            device.retry_at = self._monotonic() + device.backoff_s
            detail = f"{type(exc).__name__}: {exc}; retrying in {device.backoff_s:g} s"
            device.backoff_s = min(device.backoff_s * 2, BACKOFF_MAX_S)
            if gone.is_set():
                self._emit_state(device, LinkState.SLEEPING, f"device went away ({exc})")
            else:
                self._emit_state(device, LinkState.ERROR, detail)
        finally:
            device.client = None
            # Also after the device left on its own: that releases bleak's D-Bus connection.
            with contextlib.suppress(BleakError, TimeoutError):
                await client.disconnect()

    async def _set_up(self, device: _Device, client: BleakClient, generation: int) -> None:
        profile = device.profile
        chars = {c.uuid: c for s in client.services for c in s.characteristics}
        battery: int | None = None
        firmware: str | None = None
        if BATTERY_LEVEL in chars:
            battery = (await client.read_gatt_char(chars[BATTERY_LEVEL]))[0]
        if FIRMWARE_REVISION in chars:
            data = await client.read_gatt_char(chars[FIRMWARE_REVISION])
            firmware = bytes(data).decode("utf-8", "replace").rstrip("\x00")
        if battery is not None or firmware is not None:
            self._sink(
                DeviceInfo(
                    device_id=device.binding.id, battery_percent=battery, firmware_revision=firmware
                )
            )
        for uuid, codec_name in profile.features.items():
            char = chars.get(uuid128(uuid))
            if char is None:
                continue
            raw = bytes(await client.read_gatt_char(char))
            self._sink(self._decode_feature(device, char.uuid, codec_name, raw))
        await self._write_clock(device, client, chars)
        for uuid, codec_name in profile.measurements.items():
            char = chars.get(uuid128(uuid))
            if char is None:
                continue
            await client.start_notify(
                char,
                self._handler(device, generation, char.uuid, codec_name),
                bluez={"use_start_notify": profile.use_start_notify},
            )
        if profile.racp and RACP in chars:
            await client.start_notify(
                chars[RACP],
                self._racp_handler(device, generation),
                bluez={"use_start_notify": profile.use_start_notify},
            )
            if self._fetch_stored:
                await client.write_gatt_char(chars[RACP], RACP_REPORT_ALL, response=True)

    async def _write_clock(
        self, device: _Device, client: BleakClient, chars: Mapping[str, BleakGATTCharacteristic]
    ) -> None:
        kind = device.profile.clock
        if kind is ClockWrite.NONE:
            return
        uuid = DATE_TIME if kind is ClockWrite.DATE_TIME else CURRENT_TIME
        char = chars.get(uuid)
        if char is None:
            return
        now = self._clock()
        value = encode_date_time(now) if kind is ClockWrite.DATE_TIME else encode_current_time(now)
        try:
            await client.write_gatt_char(char, value, response=True)
        except BleakError as exc:
            # Some models refuse the write; their readings are then judged by the guard's skew.
            log.warning("device %s refused the clock write: %s", device.binding.id, exc)
            return
        self._sink(
            ClockWritten(device_id=device.binding.id, characteristic=uuid, written_hex=value.hex())
        )

    def _decode_feature(self, device: _Device, uuid: str, codec_name: str, raw: bytes) -> LinkEvent:
        try:
            spec = get_codec(codec_name)
            assert isinstance(spec, FrameCodec)
            result = spec.decode(raw)
        except FrameError as exc:
            return FrameRejected(
                device_id=device.binding.id,
                characteristic=uuid,
                problem=exc.describe(),
                raw_hex=raw.hex(),
            )
        except KeyError as exc:
            return FrameRejected(
                device_id=device.binding.id,
                characteristic=uuid,
                problem=str(exc.args[0]),
                raw_hex=raw.hex(),
            )
        value = result if isinstance(result, BaseModel) else None
        return FeatureRead(
            device_id=device.binding.id,
            characteristic=uuid,
            codec=codec_name,
            value=value,
            raw_hex=raw.hex(),
        )

    def _is_duplicate(self, device: _Device, uuid: str, data: bytes, now: float) -> bool:
        last = device.last_frames.get(uuid)
        device.last_frames[uuid] = (data, now)
        return last is not None and last[0] == data and now - last[1] < DUPLICATE_WINDOW_S

    def _handler(
        self, device: _Device, generation: int, uuid: str, codec_name: str
    ) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        spec = get_codec(codec_name)
        if not isinstance(spec, FrameCodec):
            raise TypeError(f"{codec_name} is not a frame codec; GATT values are whole frames")
        device_id = device.binding.id

        def on_notify(_char: BleakGATTCharacteristic, value: bytearray) -> None:
            now = self._monotonic()
            if generation != device.generation:
                return  # a callback left over from an earlier connection
            data = bytes(value)
            if self._is_duplicate(device, uuid, data, now):
                return
            self._sink(
                RawFrame(
                    device_id=device_id,
                    characteristic=uuid,
                    raw_hex=data.hex(),
                    received_monotonic_s=now,
                )
            )
            try:
                result = spec.decode(data)
            except FrameError as exc:
                self._sink(
                    FrameRejected(
                        device_id=device_id,
                        characteristic=uuid,
                        problem=exc.describe(),
                        raw_hex=data.hex(),
                    )
                )
                return
            if isinstance(result, BaseModel):
                return  # a control or status value, not a reading
            for decoded in result:
                reading = (
                    decoded
                    if self._mode is Mode.REAL
                    else decoded.model_copy(update={"mode": self._mode})
                )
                self._sink(
                    ReadingArrived(device_id=device_id, reading=reading, received_monotonic_s=now)
                )

        return on_notify

    def _racp_handler(
        self, device: _Device, generation: int
    ) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        def on_racp(_char: BleakGATTCharacteristic, value: bytearray) -> None:
            if generation == device.generation:
                self._sink(RacpReply(device_id=device.binding.id, raw_hex=bytes(value).hex()))

        return on_racp

    async def racp(self, device_id: str, request: bytes) -> None:
        """Send one RACP request (report / delete / count) to a connected device."""
        for device in self._devices.values():
            if device.binding.id == device_id:
                client = device.client
                if client is None or not client.is_connected:
                    raise BleakError(f"{device_id} is not connected")
                await client.write_gatt_char(RACP, request, response=True)
                return
        raise KeyError(f"no bound BLE device {device_id!r}")
