"""The device manager: one place that knows every bound device and routes its readings.

Links report events on their own threads / loops; the manager keeps each device's status
(state, battery, firmware revision, last reading, last error, live cuff pressure), runs
every reading through the wrong-patient guard, and hands the results to one consumer
callback. The lock makes it safe to call from any thread; the consumer is called outside
the lock, on the calling thread, so a UI consumer must hop to its own loop (Kivy:
`Clock.schedule_once`) and never touch a widget directly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from station.config import BoundDevice
from station.devices.ble_link import (
    DeviceInfo,
    FrameRejected,
    LinkEvent,
    LinkState,
    ReadingArrived,
    StateChanged,
)
from station.guard import Attached, Held, Ignored, Live, Outcome, Unassigned, WrongPatientGuard
from station.models import AnyReading, CuffPressure


class DeviceState(StrEnum):
    UNSEEN = "unseen"  # bound, not heard from since the station started
    CONNECTING = "connecting"
    CONNECTED = "connected"
    MEASURING = "measuring"  # live cuff pressure is arriving
    SLEEPING = "sleeping"  # normal between measurements
    ERROR = "error"


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


ManagerUpdate = Attached | Unassigned | Live | Ignored | DeviceStatus
Consumer = Callable[[ManagerUpdate], None]


class DeviceManager:
    def __init__(
        self,
        bindings: Iterable[BoundDevice],
        guard: WrongPatientGuard,
        consumer: Consumer,
        clock: Callable[[], datetime],
    ) -> None:
        self._lock = threading.Lock()
        self._guard = guard
        self._consumer = consumer
        self._clock = clock
        self._status: dict[str, DeviceStatus] = {
            b.id: DeviceStatus(device_id=b.id, profile=b.profile, address=b.address, port=b.port)
            for b in bindings
        }
        guard.set_bound(self._status)

    def status(self) -> list[DeviceStatus]:
        with self._lock:
            return [self._status[k] for k in sorted(self._status)]

    def handle(self, event: LinkEvent) -> None:
        """Take one event from a link (any thread)."""
        updates: list[ManagerUpdate] = []
        with self._lock:
            current = self._status.get(event.device_id)
            if current is None:
                outcomes: list[Outcome] = [
                    Ignored(device_id=event.device_id, why="device is not bound to this station")
                ]
            else:
                outcomes = self._apply(current, event, updates)
            updates.extend(o for o in outcomes if not isinstance(o, Held))
        for update in updates:
            self._consumer(update)

    def tick(self) -> None:
        """Release connect bursts whose window closed; call it about every 100 ms."""
        with self._lock:
            released = [o for o in self._guard.flush() if not isinstance(o, Held)]
        for update in released:
            self._consumer(update)

    def _set(self, device_id: str, updates: list[ManagerUpdate], **changes: object) -> None:
        status = self._status[device_id].model_copy(update=changes)
        self._status[device_id] = status
        updates.append(status)

    def _apply(
        self, current: DeviceStatus, event: LinkEvent, updates: list[ManagerUpdate]
    ) -> list[Outcome]:
        device_id = current.device_id
        if isinstance(event, StateChanged):
            if event.state is LinkState.CONNECTED:
                self._guard.device_connected(device_id)
            error = event.detail if event.state is LinkState.ERROR else current.last_error
            self._set(
                device_id,
                updates,
                state=_FROM_LINK[event.state],
                last_error=error,
                live_cuff_pressure_mmhg=None,
            )
            return []
        if isinstance(event, DeviceInfo):
            self._set(
                device_id,
                updates,
                battery_percent=event.battery_percent
                if event.battery_percent is not None
                else current.battery_percent,
                firmware_revision=event.firmware_revision or current.firmware_revision,
            )
            return []
        if isinstance(event, FrameRejected):
            self._set(device_id, updates, last_error=event.problem)
            return []
        if isinstance(event, ReadingArrived):
            reading = event.reading
            if isinstance(reading, CuffPressure):
                self._set(
                    device_id,
                    updates,
                    state=DeviceState.MEASURING,
                    live_cuff_pressure_mmhg=reading.cuff_pressure_mmhg,
                )
            else:
                state = (
                    DeviceState.CONNECTED
                    if current.state is DeviceState.MEASURING
                    else current.state
                )
                self._set(
                    device_id,
                    updates,
                    state=state,
                    last_reading=reading,
                    last_reading_at=self._clock(),
                    live_cuff_pressure_mmhg=None,
                )
            return self._guard.offer(device_id, reading)
        return []  # raw frames, features, clock and RACP replies are for logs and the CLI
