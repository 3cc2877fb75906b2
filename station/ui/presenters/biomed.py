"""The biomed screen's presenter: devices, bindings, tests, settings, the diagnostics export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from station.biomed import Biomed, BiomedState, DeviceRow
from station.locale import N_, Translate
from station.models import AnyReading, Kind
from station.ui.ports import (
    BiomedPort,
)
from station.ui.presenters.base import Tone, _Base, _try
from station.ui.presenters.format import value_text

SCAN_SECONDS = 5.0  # a cuff or scale advertises every second or two when awake

# What the biomed screen says, in one place.
TEXT = {
    "no_devices": N_(
        "No devices bound or seen. Bind one with `station devices bind ADDRESS "
        "--profile PROFILE` (or PORT for serial), plug in a serial device, or tap Scan to look "
        "for Bluetooth devices in range (wake the device first)."
    ),
    "scanning": N_(
        "Scanning for Bluetooth devices… wake the device (press its button) so it advertises."
    ),
    "bluetooth": N_("Bluetooth"),
    "scan": N_("Scan"),
    "scan_hint": N_("tap Scan to list the devices in range"),
    "waiting": N_("waiting for a reading… take a measurement on the device"),
    "exported": N_("Diagnostics bundle written (no patient data): {where}"),
    "export_failed": N_("Diagnostics bundle not written: {why}"),
}

# A test reading's kind, as biomed reads it (the kind's own name, not the MA's tile title).
KIND_NAMES: dict[Kind, str] = {
    Kind.BLOOD_PRESSURE: N_("Blood pressure"),
    Kind.CUFF_PRESSURE: N_("Cuff pressure"),
    Kind.PULSE_OXIMETRY: N_("Pulse oximetry"),
    Kind.TEMPERATURE: N_("Temperature"),
    Kind.BODY_WEIGHT: N_("Body weight"),
    Kind.BODY_HEIGHT: N_("Body height"),
    Kind.RESPIRATORY_RATE: N_("Respiratory rate"),
    Kind.PAIN_SEVERITY: N_("Pain severity"),
    Kind.HEAD_CIRCUMFERENCE: N_("Head circumference"),
}

VERDICT_WORDS = {"accepted": N_("accepted"), "rejected": N_("rejected")}


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

    def __init__(self, biomed: Biomed, port: BiomedPort, *, language: str = "en") -> None:
        self.use_language(language)  # `[display] language`
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
        """A fixed string of the biomed screen (they are kept in TEXT, in one place), in the
        station's language."""
        return self._(TEXT[key])

    def scan_bluetooth(self) -> None:
        """Look for Bluetooth devices in range (in the background); found ones join the list
        with their best-matching profile and a Bind button."""
        if _try(self, lambda: self.biomed.require_unlocked(N_("scan for devices"))):
            self.port.scan_bluetooth(SCAN_SECONDS)
            self.refresh()

    def scan_status(self) -> str:
        return self.said(self.port.bluetooth_scan_status()) if self.unlocked else ""

    def empty_text(self) -> str:
        """Why the device list is empty, and what to do (a blank list looked broken)."""
        if self.device_lines():
            return ""
        if self.unlocked and self.port.bluetooth_scan_status().startswith("scanning"):
            return self.words("scanning")
        return self.words("no_devices")

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
        if self.lockout_text() and self.message.startswith(self._("too many wrong PINs")):
            self.say("")  # the title counts down instead of a frozen "wait 299 s"
        locked = self.biomed.tick()
        if locked:
            self.say(self._("locked after inactivity"), Tone.INFO)
        else:
            self.refresh()
        return locked

    def lock(self) -> None:
        _try(self, self.biomed.lock)

    def fault(self) -> None:
        """An unexpected error (station.ui.faults): said to biomed staff with where to look."""
        self.say(
            self._(
                "Something went wrong: that step did not complete. The journal has where "
                "(journalctl -u station); try again."
            ),
            Tone.ERROR,
        )

    def bind(self, device_id: str) -> None:
        def action() -> None:
            bound = self.biomed.bind(device_id)  # refuses unknown / already bound / locked
            self.port.bind(next(d for d in bound if d.id == device_id))

        self._store(action, self._("{device} bound to this station").format(device=device_id))

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

        self._store(action, self._("{device} unbound").format(device=device_id))

    def lockout_text(self) -> str:
        """ "" or the countdown after too many wrong PINs ("try again in 4:59")."""
        left = self.biomed.lockout_remaining_s()
        if left <= 0:
            return ""
        whole = int(left + 0.999)
        return self._("Too many wrong PINs: try again in {time}").format(
            time=f"{whole // 60}:{whole % 60:02d}"
        )

    def _store(self, action: Callable[[], None], done: str) -> None:
        try:
            if _try(self, action):
                self.say(done, Tone.SUCCESS)
        except (ValueError, LookupError, OSError) as exc:
            self.say(self._("not changed: {why}").format(why=exc), Tone.ERROR)
        self.refresh()  # what the store holds now, whatever happened

    def passkey_requests(self) -> tuple[tuple[str, str], ...]:
        """Bound devices waiting for the passkey they show: (device id, address). Shown
        only while unlocked: typing a passkey is a biomed act."""
        return self.port.passkey_requests() if self.unlocked else ()

    def enter_passkey(self, address: str, typed: str) -> None:
        """The 6-digit passkey the device shows (Bluetooth Core: 000000-999999)."""
        if not _try(self, lambda: self.biomed.require_unlocked(N_("pair a device"))):
            return
        digits = typed.strip()
        if not (len(digits) == 6 and digits.isdigit()):
            self.message = self._("the passkey is the 6 digits the device shows (e.g. 012345)")
            return
        if self.port.answer_passkey(address, int(digits)):
            self.message = self._("passkey sent to {address}; pairing…").format(address=address)
        else:
            self.message = self._("{address} is no longer waiting for a passkey").format(
                address=address
            )

    def cancel_passkey(self, address: str) -> None:
        if self.port.answer_passkey(address, None):
            self.message = self._("pairing with {address} cancelled").format(address=address)

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
        if not _try(self, lambda: self.biomed.require_unlocked(N_("export diagnostics"))):
            return ""
        try:
            self.exported = self.port.export_diagnostics()
        except OSError as exc:
            why = exc.strerror or exc
            self._export_text = self.words("export_failed").format(why=why)
            self.say(self._export_text, Tone.ERROR)
            return ""
        self.biomed.diagnostics_exported(self.exported)
        # Said twice: the message fades on the next tap, the line on the screen stays.
        self._export_text = self.words("exported").format(where=self.said(self.exported))
        self.say(self._export_text, Tone.SUCCESS)
        return self.exported

    def device_lines(self) -> tuple[DeviceLine, ...]:
        return tuple(_device_line(r, self._) for r in self.biomed.devices)

    def settings_lines(self) -> tuple[str, ...]:
        from station.biomed import settings_view

        _ = self._
        view = settings_view(self.biomed.settings)
        depth = self.port.outbox_depth()
        outbox = _("Outbox: {count} waiting to send").format(count=depth.pending)
        if depth.oldest_pending_age_s is not None:
            age = f"{depth.oldest_pending_age_s:.0f}"
            outbox += ", " + _("oldest {seconds} s").format(seconds=age)
        if depth.awaiting_ack:
            outbox += "; " + _("{count} awaiting the practice system's receipt").format(
                count=depth.awaiting_ack
            )
        station = _("Station: {station} ({mode}) {room}").format(
            station=view.station_id, mode=view.mode, room=view.room
        )
        lines = [
            _("Site: {site}").format(site=view.site),
            station.rstrip(),
            _("Broker: {broker}").format(broker=view.broker),
            _("TLS: {tls}").format(tls=self.said(view.tls)),
            outbox,
            *(_("Attention: {warning}").format(warning=self.said(w)) for w in depth.warnings()),
        ]
        notice = self.port.config_notice()
        if notice:
            lines.append(self.said(notice))
        return tuple(lines)

    def test_lines(self) -> tuple[str, ...]:
        """Each test reading as a person reads it: what, value and unit, when, which device;
        then the raw bytes and the verdict (never the model's JSON)."""
        lines = []
        for result in self.biomed.test_results:
            lines.append(self._reading_line(result.device_id, result.reading, result.received_at))
            verdict = self._(VERDICT_WORDS[result.verdict.status])
            flags = ", ".join(self.said(f.message) for f in result.verdict.flags)
            raw = result.raw_hex or self._("(none)")
            line = self._("raw: {raw} · {verdict}").format(raw=raw, verdict=verdict)
            lines.append(line + (f" · {flags}" if flags else "")
            )
        return tuple(lines)

    def _reading_line(self, device_id: str, reading: AnyReading, at: datetime) -> str:
        value, unit = value_text(reading, self.biomed.settings.display)
        what = self._(KIND_NAMES.get(reading.kind, reading.kind.value))
        line = f"{what} {value} {unit}".rstrip()
        pulse = getattr(reading, "pulse_rate_bpm", None)
        if pulse is not None and reading.kind.value != "pulse_rate":
            line += ", " + self._("pulse {rate} /min").format(rate=f"{pulse:.0f}")
        return f"{line} · {at.strftime('%H:%M:%S')} · {device_id}"


def _device_line(row: DeviceRow, _: Translate) -> DeviceLine:
    parts = [row.profile, _(row.transport), _("in range") if row.present else _("not seen")]
    if row.name:
        parts.insert(0, f'"{row.name}" {row.address}')
    if row.rssi_dbm is not None:
        parts.append(f"{row.rssi_dbm} dBm")
    if row.battery_percent is not None:
        parts.append(_("battery {percent} %").format(percent=row.battery_percent))
    if row.firmware:
        parts.append(_("firmware {version}").format(version=row.firmware))
    if row.last_error:
        parts.append(_("last error: {error}").format(error=row.last_error))
    return DeviceLine(row.device_id, row.device_id, " · ".join(parts), row.bound, row.present)
