"""The device manager: one place that knows every bound device and routes its readings.

Links report events on their own threads / loops; the manager keeps each device's status
(state, battery, firmware revision, last reading, last error, live cuff pressure), runs
every reading through the device's spot capture (station.capture: a streaming oximeter or
polled scale gives ONE captured reading per measurement episode, the rest are `LiveValue`s
for the tile), and hands what comes out to one consumer callback: `Captured` readings and
`Connected` events for the rooming workflow, which owns the wrong-patient guard and judges
them on its own thread (the manager judges nothing about patients), plus status and live
values. The lock makes it safe to call from any thread; the consumer is called outside the
lock, on the calling thread, so a UI consumer must hop to its own loop (Kivy:
`Clock.schedule_once`) and never touch a widget directly.

The manager owns the links: `start_serial_links()` opens a `SerialLink` per serial binding
(each on its own thread), `ble_link()` makes the one `BleLink` for the Bluetooth bindings
(the caller runs it on its asyncio loop), `stop_links()` stops the serial ones. Both feed
the same status table and consumer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from station.capture import CaptureState, Delivery, SpotCapture
from station.config import BoundDevice
from station.devices.ble_link import (
    BleLink,
    ClockWritten,
    DeviceInfo,
    FrameRejected,
    LinkEvent,
    LinkState,
    RawFrame,
    ReadingArrived,
    StateChanged,
)
from station.devices.codecs.base import BadFrame
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.devices.profiles import FirmwareProfile, load_profiles
from station.devices.serial_link import LinkEvent as SerialEvent
from station.devices.serial_link import LinkState as SerialState
from station.devices.serial_link import LinkStatus, SerialLink
from station.errors import ConfigError
from station.guard import Ignored
from station.models import AnyReading, CuffPressure, Mode
from station.validation import DeviceRanges


class DeviceState(StrEnum):
    UNSEEN = "unseen"  # bound, not heard from since the station started
    CONNECTING = "connecting"
    CONNECTED = "connected"
    MEASURING = "measuring"  # live cuff pressure is arriving
    SLEEPING = "sleeping"  # normal between measurements
    ERROR = "error"


# States in which the device holds a connection (serial: the port is open).
_LINKED = frozenset({DeviceState.CONNECTED, DeviceState.MEASURING})

_FROM_LINK = {
    LinkState.CONNECTING: DeviceState.CONNECTING,
    LinkState.CONNECTED: DeviceState.CONNECTED,
    LinkState.SLEEPING: DeviceState.SLEEPING,
    LinkState.ERROR: DeviceState.ERROR,
}


class DeviceStatus(BaseModel):
    """What the biomed screen and the MQTT `status` topic show for one bound device."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    update: Literal["status"] = "status"
    device_id: str
    profile: str
    address: str | None = None
    port: str | None = None
    state: DeviceState = DeviceState.UNSEEN
    battery_percent: int | None = None
    firmware_revision: str | None = None
    last_reading: AnyReading | None = None
    last_reading_at: datetime | None = None
    last_error: str | None = None
    live_cuff_pressure_mmhg: float | None = None
    frames_rejected: int = 0  # since the station started
    last_frame_monotonic_s: float | None = None  # the link's monotonic clock at the last frame
    clock_set_at: datetime | None = None  # when the station last wrote the device's clock


_FROM_SERIAL = {
    SerialState.CONNECTED: DeviceState.CONNECTED,
    SerialState.DISCONNECTED: DeviceState.ERROR,  # unplugged or not found: reopening
    SerialState.GARBLED: DeviceState.ERROR,  # nothing decodes: baud rate or parity
    SerialState.STOPPED: DeviceState.UNSEEN,
}


class LiveValue(BaseModel):
    """A streaming device's latest reading, for its tile only: never attached, never trayed.

    `reading` None: the episode ended (sensor off, scale empty, silence) and the tile's live
    value goes. `state` settling: "measuring…"; captured: the spot value has gone to the guard.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    update: Literal["live_value"] = "live_value"
    device_id: str
    reading: AnyReading | None
    state: CaptureState


class Captured(BaseModel):
    """A reading for the rooming: a spot reading, a streaming episode's captured one, or live
    cuff pressure. `received_at`: when the link handed it over (the station clock), which the
    guard compares with the session's start."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    update: Literal["captured"] = "captured"
    device_id: str
    reading: AnyReading
    received_at: datetime


class Connected(BaseModel):
    """A device that dumps stored readings (re)connected: the guard's burst window opens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    update: Literal["connected"] = "connected"
    device_id: str
    at: datetime


class ClockSet(BaseModel):
    """The station wrote this device's clock on its current connection (the guard then
    trusts the device's times within a small tolerance, until it disconnects)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    update: Literal["clock_set"] = "clock_set"
    device_id: str
    at: datetime


class Disconnected(BaseModel):
    """The device's connection ended (asleep, gone, failed): its clock is unknown again and
    its live cuff gauge, if any, stops."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    update: Literal["disconnected"] = "disconnected"
    device_id: str
    at: datetime


LinkUpdate = Captured | Connected | ClockSet | Disconnected
ManagerUpdate = LinkUpdate | Ignored | DeviceStatus | LiveValue


class ReadingSink(Protocol):
    """Where device events are judged: the rooming workflow (or the exam presenter over it)."""

    def offer(
        self, device_id: str, reading: AnyReading, received_at: datetime | None = None
    ) -> object: ...

    def device_connected(self, device_id: str, at: datetime | None = None) -> None: ...

    def device_clock_set(self, device_id: str, at: datetime | None = None) -> None: ...

    def device_disconnected(self, device_id: str, at: datetime | None = None) -> None: ...


def deliver(sink: ReadingSink, update: LinkUpdate) -> None:
    """Hand one device event to the workflow, on the one thread that drains the links'
    events: the only way a device event reaches a session or the tray, in every mode."""
    if isinstance(update, Connected):
        sink.device_connected(update.device_id, update.at)
    elif isinstance(update, ClockSet):
        sink.device_clock_set(update.device_id, update.at)
    elif isinstance(update, Disconnected):
        sink.device_disconnected(update.device_id, update.at)
    else:
        sink.offer(update.device_id, update.reading, update.received_at)
Consumer = Callable[[ManagerUpdate], None]


class DeviceManager:
    def __init__(
        self,
        bindings: Iterable[BoundDevice],
        consumer: Consumer,
        clock: Callable[[], datetime],
        *,
        profiles: Mapping[str, FirmwareProfile] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`profiles` say each device's delivery (default: the installed profiles, read on
        first need); `monotonic` times capture episodes (seconds; tests pass their own)."""
        self._lock = threading.Lock()
        self._consumer = consumer
        self._clock = clock
        self._bindings = {b.id: b for b in bindings}
        self._status: dict[str, DeviceStatus] = {
            b.id: DeviceStatus(device_id=b.id, profile=b.profile, address=b.address, port=b.port)
            for b in self._bindings.values()
        }
        self._serial_links: dict[str, SerialLink] = {}
        # Serial devices that dump stored readings when opened; the others stream live data,
        # and a connect burst window would send every reading of a streaming oximeter to the tray.
        self._serial_dumps: set[str] = set()
        self._profiles: dict[str, FirmwareProfile] | None = (
            None if profiles is None else dict(profiles)
        )
        self._monotonic = monotonic
        self._captures: dict[str, SpotCapture] = {}

    @property
    def bound_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._bindings))

    def measuring_ranges(self) -> dict[str, DeviceRanges]:
        """Each bound device's manufacturer-stated measuring ranges, from its profile."""
        with self._lock:
            self._known_profiles()
            profiles = self._profiles or {}
        found: dict[str, DeviceRanges] = {}
        for device_id, binding in self._bindings.items():
            profile = profiles.get(binding.profile)
            if profile is not None and profile.ranges:
                found[device_id] = DeviceRanges(profile.id, profile.device_ranges())
        return found

    # ---- the links ---------------------------------------------------------------------------

    def start_serial_links(
        self,
        profiles: Mapping[str, FirmwareProfile] | None = None,
        *,
        reading_mode: Mode = Mode.REAL,
        **link_options: object,
    ) -> list[SerialLink]:
        """Open one SerialLink per serial binding (its port, its profile) and start it.

        `reading_mode` DEMO or TEST when the other ends are simulators; `link_options` go to
        `SerialLink` (e.g. backoff). A binding to an unknown or Bluetooth profile raises
        ConfigError before anything starts.
        """
        known = dict(load_profiles() if profiles is None else profiles)
        if self._profiles is None:
            self._profiles = known
        chosen: list[tuple[BoundDevice, FirmwareProfile]] = []
        problems: list[str] = []
        for binding in self._bindings.values():
            if binding.port is None or binding.id in self._serial_links:
                continue
            profile = known.get(binding.profile)
            if profile is None or profile.serial is None:
                what = "unknown profile" if profile is None else "not a serial profile:"
                problems.append(f"{binding.id}: {what} {binding.profile!r}")
            else:
                chosen.append((binding, profile))
        if problems:
            raise ConfigError("bindings", problems)
        started: list[SerialLink] = []
        for binding, profile in chosen:
            if profile.behaviour.sends_stored_on_connect:
                self._serial_dumps.add(binding.id)
            link = SerialLink(
                profile,
                self.serial_sink(binding.id),
                port=binding.port,
                reading_mode=reading_mode,
                **link_options,  # type: ignore[arg-type]
            )
            self._serial_links[binding.id] = link
            with self._lock:
                self._capture_for(binding.id)  # built here, not on the first reading's path
            link.start()
            started.append(link)
        return started

    def stop_links(self) -> None:
        """Stop every serial link (each reports `stopped`)."""
        links = list(self._serial_links.values())
        self._serial_links.clear()
        for link in links:
            link.stop()

    def serial_link(self, device_id: str) -> SerialLink | None:
        """The running link of a serial device, e.g. to send it a named command."""
        return self._serial_links.get(device_id)

    def ble_link(
        self, profiles: Mapping[str, FirmwareProfile] | None = None, **options: object
    ) -> BleLink:
        """The BleLink for the Bluetooth bindings, reporting here; run `link.run()` on a loop."""
        bindings = [b for b in self._bindings.values() if b.address is not None]
        with self._lock:
            if profiles is not None and self._profiles is None:
                self._profiles = dict(profiles)
            for binding in bindings:
                self._capture_for(binding.id)
        return BleLink(bindings, self.handle, profiles=profiles, **options)  # type: ignore[arg-type]

    def serial_sink(self, device_id: str) -> Callable[[SerialEvent], None]:
        """The `on_event` callback of a SerialLink for `device_id`."""
        return lambda event: self.handle_serial(device_id, event)

    def status(self) -> list[DeviceStatus]:
        with self._lock:
            return [self._status[k] for k in sorted(self._status)]

    def handle(self, event: LinkEvent) -> None:
        """Take one event from a link (any thread)."""
        updates: list[ManagerUpdate] = []
        with self._lock:
            current = self._status.get(event.device_id)
            if current is None:
                updates.append(
                    Ignored(device_id=event.device_id, why="device is not bound to this station")
                )
            else:
                self._apply(current, event, updates)
        for update in updates:
            self._consumer(update)

    def handle_serial(self, device_id: str, event: SerialEvent) -> None:
        """Take one event from a SerialLink (its thread)."""
        if isinstance(event, LinkStatus):
            updates: list[ManagerUpdate] = []
            with self._lock:
                current = self._status.get(device_id)
                if current is None:
                    return
                if event.state is SerialState.CONNECTED and device_id in self._serial_dumps:
                    updates.append(Connected(device_id=device_id, at=self._clock()))
                elif event.state is not SerialState.CONNECTED and current.state in _LINKED:
                    updates.append(Disconnected(device_id=device_id, at=self._clock()))
                detail = event.detail or None
                self._set(
                    device_id,
                    updates,
                    state=_FROM_SERIAL[event.state],
                    last_error=detail if detail else current.last_error,
                    live_cuff_pressure_mmhg=None,
                )
            for update in updates:
                self._consumer(update)
            return
        if isinstance(event, BadFrame):
            problem = f"{event.codec}: {event.problem}"
            if event.expected:
                problem += f" (expected {event.expected})"
            self.handle(
                FrameRejected(
                    device_id=device_id,
                    characteristic="serial",
                    problem=problem,
                    raw_hex=event.raw_hex,
                )
            )
        elif isinstance(event, DeviceEvent):
            if event.code is DeviceEventCode.FIRMWARE_REVISION:
                self.handle(DeviceInfo(device_id=device_id, firmware_revision=event.detail))
        elif isinstance(event, AnyReading):
            self.handle(
                ReadingArrived(
                    device_id=device_id, reading=event, received_monotonic_s=time.monotonic()
                )
            )

    def tick(self) -> None:
        """End streaming episodes that went silent; call it about every 100 ms."""
        updates: list[ManagerUpdate] = []
        with self._lock:
            now_s = self._monotonic()
            for device_id in sorted(self._captures):
                step = self._captures[device_id].expire(now_s)
                if step.episode_ended:
                    self._episode_ended(device_id, updates)
        for update in updates:
            self._consumer(update)

    def capture_state(self, device_id: str) -> CaptureState | None:
        """Where a device's capture is (None: not bound)."""
        with self._lock:
            capture = self._captures.get(device_id)
            if capture is None and device_id in self._bindings:
                capture = self._capture_for(device_id)
            return None if capture is None else capture.state

    # ---- capture ----------------------------------------------------------------------------

    def _capture_for(self, device_id: str) -> SpotCapture:
        """The device's capture, from its profile's delivery (call with the lock held)."""
        capture = self._captures.get(device_id)
        if capture is not None:
            return capture
        profile = self._known_profiles().get(self._bindings[device_id].profile)
        if profile is None:
            capture = SpotCapture(Delivery.SPOT)
        else:
            b = profile.behaviour
            capture = SpotCapture(b.delivery, b.capture, spot_codecs=b.spot_codecs)
        self._captures[device_id] = capture
        return capture

    def _known_profiles(self) -> Mapping[str, FirmwareProfile]:
        """The installed profiles, read on first need (call with the lock held)."""
        if self._profiles is None:
            try:
                self._profiles = load_profiles()
            except ConfigError:
                # start_serial_links reports a bad profile file; until then a device is
                # treated as spot with no stated ranges.
                self._profiles = {}
        return self._profiles

    def _episode_ended(self, device_id: str, updates: list[ManagerUpdate]) -> None:
        updates.append(LiveValue(device_id=device_id, reading=None, state=CaptureState.IDLE))
        if self._status[device_id].state is DeviceState.MEASURING:
            self._set(device_id, updates, state=DeviceState.CONNECTED)

    def _set(self, device_id: str, updates: list[ManagerUpdate], **changes: object) -> None:
        status = self._status[device_id].model_copy(update=changes)
        self._status[device_id] = status
        updates.append(status)

    def _apply(self, current: DeviceStatus, event: LinkEvent, updates: list[ManagerUpdate]) -> None:
        device_id = current.device_id
        if isinstance(event, StateChanged):
            if event.state is LinkState.CONNECTED:
                updates.append(Connected(device_id=device_id, at=self._clock()))
            elif event.state is not LinkState.CONNECTING and current.state in _LINKED:
                updates.append(Disconnected(device_id=device_id, at=self._clock()))
            error = event.detail if event.state is LinkState.ERROR else current.last_error
            self._set(
                device_id,
                updates,
                state=_FROM_LINK[event.state],
                last_error=error,
                live_cuff_pressure_mmhg=None,
            )
            return
        if isinstance(event, DeviceInfo):
            self._set(
                device_id,
                updates,
                battery_percent=event.battery_percent
                if event.battery_percent is not None
                else current.battery_percent,
                firmware_revision=event.firmware_revision or current.firmware_revision,
            )
            return
        if isinstance(event, FrameRejected):
            self._set(
                device_id,
                updates,
                last_error=event.problem,
                frames_rejected=current.frames_rejected + 1,
            )
            return
        if isinstance(event, ClockWritten):
            updates.append(ClockSet(device_id=device_id, at=self._clock()))
            self._set(device_id, updates, clock_set_at=self._clock())
            return
        if isinstance(event, RawFrame):
            self._set(device_id, updates, last_frame_monotonic_s=event.received_monotonic_s)
            return
        if isinstance(event, ReadingArrived):
            reading = event.reading
            received_at = self._clock()
            if isinstance(reading, CuffPressure):
                self._set(
                    device_id,
                    updates,
                    state=DeviceState.MEASURING,
                    live_cuff_pressure_mmhg=reading.cuff_pressure_mmhg,
                )
                updates.append(
                    Captured(device_id=device_id, reading=reading, received_at=received_at)
                )
                return
            step = self._capture_for(device_id).feed(reading, self._monotonic())
            if step.state is CaptureState.SETTLING:
                state = DeviceState.MEASURING  # a streaming episode, nothing captured yet
            elif current.state is DeviceState.MEASURING:
                state = DeviceState.CONNECTED
            else:
                state = current.state
            self._set(
                device_id,
                updates,
                state=state,
                last_reading=reading,
                last_reading_at=received_at,
                live_cuff_pressure_mmhg=None,
                last_frame_monotonic_s=event.received_monotonic_s,
            )
            if step.live is not None or step.episode_ended:
                updates.append(LiveValue(device_id=device_id, reading=step.live, state=step.state))
            if step.forward is not None:  # else live only: captured once per episode, or never
                updates.append(
                    Captured(device_id=device_id, reading=step.forward, received_at=received_at)
                )
        # raw frames, features, clock and RACP replies are for logs and the CLI
