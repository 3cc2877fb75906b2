"""The Bluetooth LE link (bleak): scans, connects only to bound devices, turns GATT into events.

One `BleLink` runs one continuous scan filtered by the health-service UUIDs of the bound
devices' firmware profiles (firmware_profiles/*.toml: the `[ble]` table says what to match,
read, write and subscribe; biomed adds a model with a file, not code). An advert from a
bound address (and a name the profile accepts) starts a connection; anything else is only
remembered for `station devices scan`. On connect the link reads the feature / battery /
firmware characteristics, writes the device clock where the profile says so, subscribes to
the measurement characteristics (StartNotify, never AcquireNotify: devices that send before
the CCCD write completes lose data otherwise) and optionally asks RACP for the stored
records. When the device goes away the link waits for its next advert: a cuff that sleeps
between measurements is normal. Failed connects back off exponentially.

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
from collections import OrderedDict
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
from station.devices.pairing import PASSKEY_WAIT_S, describe_pairing_error
from station.devices.profiles import (
    BleSection,
    ClockWrite,
    FirmwareProfile,
    load_profiles,
    match_profiles,
    uuid128,
)
from station.errors import ConfigError, FrameError
from station.models import AnyReading, Mode

log = logging.getLogger(__name__)

# A reconnect can make BlueZ deliver one notification twice within milliseconds; a device
# never sends the same frame twice that fast on purpose (Nonin and PLX frames carry counters).
DUPLICATE_WINDOW_S = 0.25
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
CONNECT_TIMEOUT_S = 15.0
# Adverts remembered for the biomed scan list: more devices than any clinic room hears.
SEEN_CAP = 256
# A device that asks for a passkey at first pairing waits for a person to type it: bleak's
# connect timeout covers Pair, so it gets the agent's wait on top.
PASSKEY_CONNECT_TIMEOUT_S = CONNECT_TIMEOUT_S + PASSKEY_WAIT_S


# Standard GATT pieces every profile may use.
BATTERY_LEVEL = uuid128("2a19")
FIRMWARE_REVISION = uuid128("2a26")
RACP = uuid128("2a52")
DATE_TIME = uuid128("2a08")
CURRENT_TIME = uuid128("2a2b")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def ble_profiles(
    bindings: Iterable[BoundDevice], profiles: Mapping[str, FirmwareProfile]
) -> dict[str, FirmwareProfile]:
    """The firmware profile of every Bluetooth binding, by address; ConfigError names a bad one."""
    found: dict[str, FirmwareProfile] = {}
    problems: list[str] = []
    for binding in bindings:
        if binding.address is None:
            continue
        profile = profiles.get(binding.profile)
        if profile is None:
            known = ", ".join(sorted(p.id for p in profiles.values() if p.ble is not None))
            problems.append(f"{binding.id}: unknown profile {binding.profile!r}; known: {known}")
        elif profile.ble is None:
            problems.append(f"{binding.id}: profile {binding.profile!r} is not a Bluetooth profile")
        else:
            found[binding.address.upper()] = profile
    if problems:
        raise ConfigError("bindings", problems)
    return found


def describe_connect_error(exc: BaseException) -> str:
    """Why a connect failed, in words: BlueZ's pairing errors named, a timeout said so."""
    name = getattr(exc, "dbus_error", None)
    details = getattr(exc, "dbus_error_details", None)
    words = describe_pairing_error(name, str(details or ""))
    if words is not None:
        return words
    if isinstance(exc, TimeoutError):
        return "no answer from the device in time (asleep, out of range, or held by another host)"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


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
    profile: FirmwareProfile
    ble: BleSection
    generation: int = 0
    state: LinkState = LinkState.SLEEPING
    task: asyncio.Task[None] | None = None
    client: BleakClient | None = None
    retry_at: float = 0.0
    backoff_s: float = BACKOFF_FIRST_S
    last_frames: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    pending: set[asyncio.Task[None]] = field(default_factory=set)  # e.g. a clock write


def _short_uuid(uuid: str) -> str:
    return uuid[4:8] if uuid.endswith("-0000-1000-8000-00805f9b34fb") else uuid


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
        profiles: Mapping[str, FirmwareProfile] | None = None,
    ) -> None:
        """`profiles`: the firmware profiles by id (default: `load_profiles()`)."""
        self._sink = sink
        self._clock = clock
        self._mode = mode
        self._fetch_stored = fetch_stored
        self._monotonic = monotonic
        self._profiles = dict(load_profiles() if profiles is None else profiles)
        bound = list(bindings)
        by_address = ble_profiles(bound, self._profiles)
        self._devices: dict[str, _Device] = {}
        for binding in bound:
            if binding.address is None:
                continue
            profile = by_address[binding.address.upper()]
            assert profile.ble is not None  # ble_profiles() checked it
            self._devices[binding.address.upper()] = _Device(binding, profile, profile.ble)
        # Adverts heard, newest last, at most SEEN_CAP addresses: a rogue device cycling random
        # addresses must not grow the kiosk's memory (200,000 adverts took RSS 37 -> 290 MB).
        self.seen: OrderedDict[str, Seen] = OrderedDict()
        self._scanner: BleakScanner | None = None
        self._stopped = asyncio.Event()

    @property
    def service_uuids(self) -> list[str]:
        return sorted({str(u) for d in self._devices.values() for u in d.ble.match.service_uuids})

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
                for pending in list(device.pending):
                    pending.cancel()
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
        name = adv.local_name or ble_device.name
        makers = list(adv.manufacturer_data)
        self.seen.pop(address, None)
        while len(self.seen) >= SEEN_CAP:
            self.seen.popitem(last=False)  # the address heard least recently goes first
        self.seen[address] = Seen(
            address=address,
            name=name,
            rssi=adv.rssi,
            service_uuids=tuple(adv.service_uuids),
            profiles=tuple(
                match_profiles(self._profiles.values(), adv.service_uuids, name, makers)
            ),
            bound_id=device.binding.id if device else None,
        )
        if device is None:
            return  # the cuff in the next room: seen, never connected
        if not device.ble.match.accepts(adv.service_uuids, name, makers):
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
        passkey = device.profile.behaviour.passkey
        client = BleakClient(
            ble_device,
            disconnected_callback=lambda _c: gone.set(),
            timeout=PASSKEY_CONNECT_TIMEOUT_S if passkey else CONNECT_TIMEOUT_S,
            pair=device.profile.pairs,
        )
        device.client = client
        device_id = device.binding.id
        try:
            await client.connect()
            device.backoff_s = BACKOFF_FIRST_S
            log.info("%s connected (%s)", device_id, device.profile.id)
            self._emit_state(device, LinkState.CONNECTED)
            await self._set_up(device, client, generation)
            await gone.wait()
            log.info("%s disconnected (asleep or out of range)", device_id)
            self._emit_state(device, LinkState.SLEEPING, "device disconnected")
        except (TimeoutError, BleakError, OSError) as exc:
            device.retry_at = self._monotonic() + device.backoff_s
            reason = describe_connect_error(exc)
            detail = f"{reason}; retrying in {device.backoff_s:g} s"
            device.backoff_s = min(device.backoff_s * 2, BACKOFF_MAX_S)
            if gone.is_set():
                self._emit_state(device, LinkState.SLEEPING, f"device went away ({reason})")
            else:
                log.warning("%s: %s", device_id, detail)
                self._emit_state(device, LinkState.ERROR, detail)
        finally:
            device.client = None
            # Also after the device left on its own: that releases bleak's D-Bus connection.
            with contextlib.suppress(BleakError, TimeoutError):
                await client.disconnect()

    async def _set_up(self, device: _Device, client: BleakClient, generation: int) -> None:
        profile = device.ble
        start_notify = device.profile.behaviour.use_start_notify
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
        if profile.clock is ClockWrite.CURRENT_TIME_AFTER_NOTIFY:
            if CURRENT_TIME in chars:
                await client.start_notify(
                    chars[CURRENT_TIME],
                    self._current_time_handler(device, generation, client, chars),
                    bluez={"use_start_notify": start_notify},
                )
        else:
            await self._write_clock(device, client, chars)
        for uuid, codec_name in profile.measurements.items():
            char = chars.get(uuid128(uuid))
            if char is None:
                continue
            await client.start_notify(
                char,
                self._handler(device, generation, char.uuid, codec_name),
                bluez={"use_start_notify": start_notify},
            )
        if profile.racp and RACP in chars:
            await client.start_notify(
                chars[RACP],
                self._racp_handler(device, generation),
                bluez={"use_start_notify": start_notify},
            )
            if self._fetch_stored:
                await client.write_gatt_char(chars[RACP], RACP_REPORT_ALL, response=True)

    async def _write_clock(
        self, device: _Device, client: BleakClient, chars: Mapping[str, BleakGATTCharacteristic]
    ) -> None:
        kind = device.ble.clock
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
        except (BleakError, TimeoutError, OSError) as exc:
            # Some models refuse the write; their readings are then judged by the guard's skew.
            log.warning(
                "%s refused the clock write (its readings' times are not trusted): %s",
                device.binding.id,
                describe_connect_error(exc),
            )
            return
        log.info("%s clock set to %s (%s)", device.binding.id, now.isoformat(), _short_uuid(uuid))
        self._sink(
            ClockWritten(device_id=device.binding.id, characteristic=uuid, written_hex=value.hex())
        )

    def _current_time_handler(
        self,
        device: _Device,
        generation: int,
        client: BleakClient,
        chars: Mapping[str, BleakGATTCharacteristic],
    ) -> Callable[[BleakGATTCharacteristic, bytearray], None]:
        """Omron: write the time once, after the first Current Time notification."""
        done = False

        def on_time(_char: BleakGATTCharacteristic, _value: bytearray) -> None:
            nonlocal done
            if done or generation != device.generation:
                return
            done = True
            task = asyncio.ensure_future(self._write_clock(device, client, chars))
            device.pending.add(task)
            task.add_done_callback(device.pending.discard)

        return on_time

    def _decode_feature(self, device: _Device, uuid: str, codec_name: str, raw: bytes) -> LinkEvent:
        try:
            result = device.profile.decoder(codec_name)(raw)
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
        # Strict, or under the decoding quirks the model's profile declares for this codec.
        decode = device.profile.decoder(codec_name)
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
                result = decode(data)
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
