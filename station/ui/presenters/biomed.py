"""The biomed screen's presenter: devices, bindings, tests, settings, the diagnostics export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from station.biomed import Biomed, BiomedState, DeviceRow
from station.models import AnyReading
from station.ui.ports import (
    BiomedPort,
)
from station.ui.presenters.base import Tone, _Base, _try
from station.ui.presenters.format import value_text

SCAN_SECONDS = 5.0  # a cuff or scale advertises every second or two when awake

# What the biomed screen says, in one place.
TEXT = {
    "no_devices": "No devices bound or seen. Bind one with `station devices bind ADDRESS "
    "--profile PROFILE` (or PORT for serial), plug in a serial device, or tap Scan to look "
    "for Bluetooth devices in range (wake the device first).",
    "scanning": "Scanning for Bluetooth devices… wake the device (press its button) so it "
    "advertises.",
    "bluetooth": "Bluetooth",
    "scan": "Scan",
    "scan_hint": "tap Scan to list the devices in range",
    "waiting": "waiting for a reading… take a measurement on the device",
    "exported": "Diagnostics bundle written (no patient data): {where}",
    "export_failed": "Diagnostics bundle not written: {why}",
}


@dataclass(frozen=True)
class DeviceLine:
    device_id: str
    title: str
    detail: str
    bound: bool
    present: bool


class BiomedPresenter(_Base):
    """Biomed over the running station (`BiomedPort`): devices, bind/unbind, device test,
    settings, outbox, diagnostics, pushed-config notice. `refresh` pulls the port's view on
    the UI thread (after every hand-over and tick)."""

    def __init__(self, biomed: Biomed, port: BiomedPort) -> None:
        self.biomed = biomed
        self.port = port
        self.message = ""
        self.exported: str = ""
        self._export_text = ""
        self.confirm_unbind: str | None = None  # the device waiting for "Unbind" to be confirmed
        self._tested_at: datetime | None = None  # the last reading recorded in the test view
        self.refresh()

    @property
    def screen(self) -> str:
        return "biomed"

    @property
    def unlocked(self) -> bool:
        return self.biomed.state is not BiomedState.LOCKED

    def words(self, key: str) -> str:
        """A fixed string of the biomed screen (they are kept in TEXT, in one place)."""
        return TEXT[key]

    def scan_bluetooth(self) -> None:
        """Look for Bluetooth devices in range (in the background); found ones join the list
        with their best-matching profile and a Bind button."""
        if _try(self, lambda: self.biomed.require_unlocked("scan for devices")):
            self.port.scan_bluetooth(SCAN_SECONDS)
            self.refresh()

    def scan_status(self) -> str:
        return self.port.bluetooth_scan_status() if self.unlocked else ""

    def empty_text(self) -> str:
        """Why the device list is empty, and what to do (a blank list looked broken)."""
        if self.device_lines():
            return ""
        if self.scan_status().startswith("scanning"):
            return TEXT["scanning"]
        return TEXT["no_devices"]

    def export_text(self) -> str:
        """What the last export wrote and where, or why it failed ("" before any)."""
        return self._export_text

    def refresh(self) -> None:
        """The port's current devices and bindings; a new reading of the device under test
        goes into the test view (decoded + raw), never anywhere else."""
        self.biomed.set_devices(self.port.device_rows())
        self.biomed.set_bound(self.port.bound())
        testing = self.biomed.testing
        if testing is None or self.biomed.state is not BiomedState.DEVICE_TEST:
            return
        latest = self.port.last_reading(testing)
        if latest is None:
            return
        reading, at = latest
        if self._tested_at is None or at > self._tested_at:
            self._tested_at = at
            _try(self, lambda: self.biomed.record_test_reading(testing, reading))

    def unlock(self, pin: str, *, keypad: str = "") -> bool:
        ok = _try(self, lambda: self.biomed.unlock(pin, keypad=keypad))
        if ok:
            self.refresh()
        return ok

    def tick(self) -> bool:
        """The idle lock; True when it locked the screen."""
        if self.lockout_text() and self.message.startswith("too many wrong PINs"):
            self.say("")  # the title counts down instead of a frozen "wait 299 s"
        locked = self.biomed.tick()
        if locked:
            self.say("locked after inactivity", Tone.INFO)
        else:
            self.refresh()
        return locked

    def lock(self) -> None:
        _try(self, self.biomed.lock)

    def fault(self) -> None:
        """An unexpected error (station.ui.faults): said to biomed staff with where to look."""
        self.say(
            "Something went wrong: that step did not complete. The journal has where "
            "(journalctl -u station); try again.",
            Tone.ERROR,
        )

    def bind(self, device_id: str) -> None:
        def action() -> None:
            bound = self.biomed.bind(device_id)  # refuses unknown / already bound / locked
            self.port.bind(next(d for d in bound if d.id == device_id))

        self._store(action, f"{device_id} bound to this station")

    def unbind(self, device_id: str) -> None:
        """Asks first: a stray tap once unbound the cuff in the middle of a clinic."""
        self.confirm_unbind = device_id

    def keep_bound(self) -> None:
        self.confirm_unbind = None

    def unbind_confirmed(self) -> None:
        device_id, self.confirm_unbind = self.confirm_unbind, None
        if device_id is None:
            return

        def action() -> None:
            self.biomed.unbind(device_id)
            self.port.unbind(device_id)

        self._store(action, f"{device_id} unbound")

    def lockout_text(self) -> str:
        """ "" or the countdown after too many wrong PINs ("try again in 4:59")."""
        left = self.biomed.lockout_remaining_s()
        if left <= 0:
            return ""
        whole = int(left + 0.999)
        return f"Too many wrong PINs: try again in {whole // 60}:{whole % 60:02d}"

    def _store(self, action: Callable[[], None], done: str) -> None:
        try:
            if _try(self, action):
                self.say(done, Tone.SUCCESS)
        except (ValueError, LookupError, OSError) as exc:
            self.say(f"not changed: {exc}", Tone.ERROR)
        self.refresh()  # what the store holds now, whatever happened

    def passkey_requests(self) -> tuple[tuple[str, str], ...]:
        """Bound devices waiting for the passkey they show: (device id, address). Shown
        only while unlocked: typing a passkey is a biomed act."""
        return self.port.passkey_requests() if self.unlocked else ()

    def enter_passkey(self, address: str, typed: str) -> None:
        """The 6-digit passkey the device shows (Bluetooth Core: 000000-999999)."""
        if not _try(self, lambda: self.biomed.require_unlocked("pair a device")):
            return
        digits = typed.strip()
        if not (len(digits) == 6 and digits.isdigit()):
            self.message = "the passkey is the 6 digits the device shows (e.g. 012345)"
            return
        if self.port.answer_passkey(address, int(digits)):
            self.message = f"passkey sent to {address}; pairing…"
        else:
            self.message = f"{address} is no longer waiting for a passkey"

    def cancel_passkey(self, address: str) -> None:
        if self.port.answer_passkey(address, None):
            self.message = f"pairing with {address} cancelled"

    def test(self, device_id: str) -> None:
        # Only readings from now on: the test is "take a measurement and see it".
        latest = self.port.last_reading(device_id)
        self._tested_at = None if latest is None else latest[1]
        _try(self, lambda: self.biomed.open_test(device_id))

    def back(self) -> None:
        _try(self, self.biomed.back)

    def open_settings(self) -> None:
        _try(self, self.biomed.open_settings)

    def test_reading(self, device_id: str, reading: AnyReading) -> None:
        _try(self, lambda: self.biomed.record_test_reading(device_id, reading))

    def export(self) -> str:
        """Write the diagnostics bundle (station.diagnostics.build_bundle); where it went."""
        if not _try(self, lambda: self.biomed.require_unlocked("export diagnostics")):
            return ""
        try:
            self.exported = self.port.export_diagnostics()
        except OSError as exc:
            self._export_text = TEXT["export_failed"].format(why=exc.strerror or exc)
            self.say(self._export_text, Tone.ERROR)
            return ""
        self.biomed.diagnostics_exported(self.exported)
        # Said twice: the message fades on the next tap, the line on the screen stays.
        self._export_text = TEXT["exported"].format(where=self.exported)
        self.say(self._export_text, Tone.SUCCESS)
        return self.exported

    def device_lines(self) -> tuple[DeviceLine, ...]:
        return tuple(_device_line(r) for r in self.biomed.devices)

    def settings_lines(self) -> tuple[str, ...]:
        from station.biomed import settings_view

        view = settings_view(self.biomed.settings)
        depth = self.port.outbox_depth()
        outbox = f"Outbox: {depth.pending} waiting to send"
        if depth.oldest_pending_age_s is not None:
            outbox += f", oldest {depth.oldest_pending_age_s:.0f} s"
        if depth.awaiting_ack:
            outbox += f"; {depth.awaiting_ack} awaiting the practice system's receipt"
        lines = [
            f"Site: {view.site}",
            f"Station: {view.station_id} ({view.mode}) {view.room}".rstrip(),
            f"Broker: {view.broker}",
            f"TLS: {view.tls}",
            outbox,
            *(f"Attention: {warning}" for warning in depth.warnings()),
        ]
        notice = self.port.config_notice()
        if notice:
            lines.append(notice)
        return tuple(lines)

    def test_lines(self) -> tuple[str, ...]:
        """Each test reading as a person reads it: what, value and unit, when, which device;
        then the raw bytes and the verdict (never the model's JSON)."""
        lines = []
        for result in self.biomed.test_results:
            lines.append(self._reading_line(result.device_id, result.reading, result.received_at))
            verdict = result.verdict.status
            flags = ", ".join(f.message for f in result.verdict.flags)
            lines.append(
                f"raw: {result.raw_hex or '(none)'} · {verdict}" + (f" · {flags}" if flags else "")
            )
        return tuple(lines)

    def _reading_line(self, device_id: str, reading: AnyReading, at: datetime) -> str:
        value, unit = value_text(reading, self.biomed.settings.display)
        what = reading.kind.value.replace("_", " ").capitalize()
        line = f"{what} {value} {unit}".rstrip()
        pulse = getattr(reading, "pulse_rate_bpm", None)
        if pulse is not None and reading.kind.value != "pulse_rate":
            line += f", pulse {pulse:.0f} /min"
        return f"{line} · {at.strftime('%H:%M:%S')} · {device_id}"


def _device_line(row: DeviceRow) -> DeviceLine:
    parts = [row.profile, row.transport, "in range" if row.present else "not seen"]
    if row.name:
        parts.insert(0, f'"{row.name}" {row.address}')
    if row.rssi_dbm is not None:
        parts.append(f"{row.rssi_dbm} dBm")
    if row.battery_percent is not None:
        parts.append(f"battery {row.battery_percent} %")
    if row.firmware:
        parts.append(f"firmware {row.firmware}")
    if row.last_error:
        parts.append(f"last error: {row.last_error}")
    return DeviceLine(row.device_id, row.device_id, " · ".join(parts), row.bound, row.present)
