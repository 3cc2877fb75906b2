"""The biomed screen's port on the running station."""

from __future__ import annotations

from typing import TYPE_CHECKING

from station.app.wiring import ONLINE_STATES

if TYPE_CHECKING:
    from station.app.services import StationServices

import asyncio
import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

from bleak.exc import BleakError
from dbus_fast import DBusError

from station.app.ble_thread import _release_bleak
from station.biomed import DeviceRow
from station.config import BoundDevice
from station.devices.bindings import BindingStore
from station.devices.ble_scan import SeenBle, ble_device_id, scan_ble
from station.devices.profiles import FirmwareProfile, load_profiles
from station.devices.serial_link import scan_ports
from station.diagnostics import (
    OutboxDepth,
)
from station.errors import ConfigError
from station.locale import N_
from station.models import AnyReading

log = logging.getLogger(__name__)


class StationBiomed:
    """The biomed screen's port on the running station: the device manager's status and
    last readings, serial ports plugged in, bindings.json (then the manager rebuilt), the
    outbox's depth, the one diagnostics bundle, the pushed-config notice."""

    def __init__(self, services: StationServices) -> None:
        self._services = services
        self._profiles: Mapping[str, FirmwareProfile] | None = None
        self._scan = BleScanRunner()

    def _known_profiles(self) -> Mapping[str, FirmwareProfile]:
        if self._profiles is None:
            try:
                self._profiles = self._services._profiles or load_profiles()
            except ConfigError:
                self._profiles = {}
        return self._profiles

    def device_rows(self) -> tuple[DeviceRow, ...]:
        services = self._services
        rows: dict[str, DeviceRow] = {}
        manager = services.manager
        for status in manager.status() if manager is not None else []:
            rows[status.device_id] = DeviceRow(
                device_id=status.device_id,
                profile=status.profile,
                address=status.address,
                port=status.port,
                present=status.state in ONLINE_STATES,
                bound=True,
                battery_percent=status.battery_percent,
                firmware=status.firmware_revision,
                last_error=status.last_error,
            )
        for device in services.bindings:
            if device.id not in rows:
                rows[device.id] = DeviceRow(
                    device_id=device.id,
                    profile=device.profile,
                    address=device.address,
                    port=device.port,
                )
        bound_ports = {d.port for d in services.bindings if d.port}
        for seen in scan_ports(self._known_profiles().values(), by_id_dir=services._by_id_dir):
            if seen.path in bound_ports or seen.device in bound_ports:
                continue
            device_id = _id_for_port(seen.path)
            rows.setdefault(
                device_id,
                DeviceRow(
                    device_id=device_id,
                    profile=seen.profiles[0] if seen.profiles else "unknown",
                    port=seen.path,
                    present=True,
                ),
            )
        bound_addresses = {d.address for d in services.bindings if d.address}
        for ble in self._scan.found:
            if ble.address in bound_addresses or not ble.profiles:
                continue
            rows.setdefault(
                ble_device_id(ble.address),
                DeviceRow(
                    device_id=ble_device_id(ble.address),
                    profile=ble.profiles[0],
                    address=ble.address,
                    present=True,
                    name=ble.name,
                    rssi_dbm=ble.rssi,
                ),
            )
        return tuple(rows[k] for k in sorted(rows))

    def scan_bluetooth(self, seconds: float) -> None:
        self._scan.start(self._known_profiles().values(), seconds)

    def bluetooth_scan_status(self) -> str:
        return self._scan.status

    def bound(self) -> tuple[BoundDevice, ...]:
        return self._services.bindings

    def bind(self, device: BoundDevice) -> None:
        if device.profile not in self._known_profiles():
            raise ValueError(
                f"no firmware profile {device.profile!r} for {device.id}: bind it "
                "with `station devices bind --profile` instead"
            )
        BindingStore(self._services.settings.storage.state_dir).bind(device)
        self._services.rebind()

    def unbind(self, device_id: str) -> None:
        if any(d.id == device_id for d in self._services.settings.devices):
            raise ValueError(f"{device_id} is bound in station.toml; change it there")
        BindingStore(self._services.settings.storage.state_dir).unbind(device_id)
        self._services.rebind()

    def last_reading(self, device_id: str) -> tuple[AnyReading, datetime] | None:
        manager = self._services.manager
        for status in manager.status() if manager is not None else []:
            if status.device_id == device_id and status.last_reading is not None:
                assert status.last_reading_at is not None
                return status.last_reading, status.last_reading_at
        return None

    def passkey_requests(self) -> tuple[tuple[str, str], ...]:
        """(device id, address) of each bound device waiting for its passkey to be typed."""
        names = {d.address: d.id for d in self._services.bindings if d.address}
        return tuple(
            (names.get(r.address, r.address), r.address)
            for r in self._services.passkeys.pending()
        )

    def answer_passkey(self, address: str, passkey: int | None) -> bool:
        return self._services.passkeys.answer(address, passkey)

    def outbox_depth(self) -> OutboxDepth:
        return self._services.health.outbox_depth()

    def export_diagnostics(self) -> str:
        path = self._services.health.export_diagnostics()
        return N_("{path} ({size} bytes)").format(path=path, size=f"{path.stat().st_size:,}")

    def config_notice(self) -> str:
        return self._services.pushed.notice


def _id_for_port(path: str) -> str:
    """A device id for an unbound serial port, from its stable name (topic-level safe)."""
    name = Path(path).name.removeprefix("usb-")
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return ("serial-" + cleaned)[:64].rstrip("-_.")


class BleScanRunner:
    """One Bluetooth scan at a time, on a thread and asyncio loop of its own (the screen never
    waits); `found` and `status` are read from the UI thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.found: tuple[SeenBle, ...] = ()
        self.status = ""

    def start(self, profiles: Iterable[FirmwareProfile], seconds: float) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return  # one scan is enough
            self.status = N_("scanning ({seconds} s)…").format(seconds=f"{seconds:g}")
            known = list(profiles)
            self._thread = threading.Thread(
                target=self._run, args=(known, seconds), name="ble-scan", daemon=True
            )
            self._thread.start()

    def wait(self, timeout_s: float) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _run(self, profiles: list[FirmwareProfile], seconds: float) -> None:
        async def scan() -> tuple[SeenBle, ...]:
            try:
                return await scan_ble(profiles, seconds)
            finally:
                await _release_bleak()  # this loop ends here: close bleak's bus for it

        try:
            found = asyncio.run(scan())
        except (BleakError, DBusError, OSError) as exc:
            log.warning("Bluetooth scan failed: %s", exc)
            self.status = N_("scan failed: {why} (is Bluetooth on and BlueZ running?)").format(
                why=exc
            )
            return
        self.found = found
        self.status = N_("{count} found in {seconds} s").format(
            count=len(found), seconds=f"{seconds:g}"
        )
