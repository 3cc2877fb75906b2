"""Biomed workflow: PIN-protected device list, bind/unbind, device test, settings, diagnostics.

Pure like the other workflows: the device inventory and the bound list are values handed in
by the composition root (the device manager, bindings.json); binding returns the new
bound-device list for it to store. The diagnostics bundle is station.diagnostics' one
`build_bundle`, fed by the composition root: this module holds no patient data to leak.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from station.audit import BIOMED, AuditAction
from station.config import BoundDevice, Settings
from station.locale import N_
from station.lockout import PinLockout, Role, plain_matcher
from station.models import AnyReading
from station.validation import Verdict, validate
from station.workflow import Clock, RefusedError, check_allowed, next_state


class BiomedState(StrEnum):
    LOCKED = "locked"
    DEVICES = "devices"
    DEVICE_TEST = "device_test"
    SETTINGS = "settings"


class BiomedEvent(StrEnum):
    UNLOCK = "unlock"
    LOCK = "lock"
    OPEN_TEST = "open_test"
    OPEN_SETTINGS = "open_settings"
    BACK = "back"


B, BE = BiomedState, BiomedEvent
TRANSITIONS: dict[tuple[BiomedState, BiomedEvent], BiomedState] = {
    (B.LOCKED, BE.UNLOCK): B.DEVICES,
    (B.DEVICES, BE.OPEN_TEST): B.DEVICE_TEST,
    (B.DEVICES, BE.OPEN_SETTINGS): B.SETTINGS,
    (B.DEVICE_TEST, BE.BACK): B.DEVICES,
    (B.SETTINGS, BE.BACK): B.DEVICES,
    **{(s, BE.LOCK): B.LOCKED for s in (B.DEVICES, B.DEVICE_TEST, B.SETTINGS)},
}


class BiomedRefusal(StrEnum):
    WRONG_PIN = "wrong_pin"
    LOCKED_OUT = "locked_out"
    UNKNOWN_DEVICE = "unknown_device"
    ALREADY_BOUND = "already_bound"
    NOT_BOUND = "not_bound"
    WRONG_DEVICE = "wrong_device"
    WRONG_SCREEN = "wrong_screen"  # e.g. bind while locked


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeviceRow(_Frozen):
    """One device the station can see or has bound, as the device manager reports it."""

    device_id: str
    profile: str
    address: str | None = None  # Bluetooth LE
    port: str | None = None  # serial
    present: bool = False  # in range (BLE) or plugged in (serial)
    bound: bool = False
    battery_percent: int | None = None
    firmware: str | None = None
    last_error: str | None = None
    name: str | None = None  # what it advertises (a Bluetooth scan), e.g. "A&D_UA-651BLE"
    rssi_dbm: int | None = None  # signal strength at the scan

    @property
    def transport(self) -> str:
        return N_("Bluetooth LE") if self.address else N_("serial")


class TestResult(_Frozen):
    """What the device-test view shows: the decoded reading, its raw bytes and verdict."""

    __test__ = False  # not a pytest test class, whatever its name

    device_id: str
    reading: AnyReading
    raw_hex: str
    verdict: Verdict
    received_at: datetime


class SettingsView(_Frozen):
    site: str
    station_id: str
    mode: str
    room: str
    broker: str
    tls: str


def settings_view(settings: Settings) -> SettingsView:
    broker = settings.broker
    if not broker.require_tls:
        tls = N_("off — not for production")
    elif broker.cert_file is not None:
        tls = N_("mutual TLS (client certificate)")
    else:
        tls = "TLS"
    return SettingsView(
        site=settings.station.site,
        station_id=settings.station.station_id,
        mode=settings.station.mode.value,
        room=settings.station.room,
        broker=f"{broker.host}:{broker.port}",
        tls=tls,
    )


class Biomed:
    def __init__(
        self,
        *,
        clock: Clock,
        pin: str | Callable[[str], bool],
        settings: Settings,
        idle_lock_s: float = 120.0,
        lockout: PinLockout | None = None,
    ) -> None:
        self._clock = clock
        # A plain PIN in tests and the demo; the station's hashed one as a matcher.
        self._pin = plain_matcher(pin) if isinstance(pin, str) else pin
        # The station's one lockout: biomed has its own count (station.lockout's policy).
        self.lockout = lockout or PinLockout(clock)
        self.audit = self.lockout.audit
        self.settings = settings
        self.idle_lock_s = idle_lock_s
        self.state = BiomedState.LOCKED
        self._last_activity = clock()
        self.devices: tuple[DeviceRow, ...] = ()
        self.testing: str | None = None
        self.test_results: tuple[TestResult, ...] = ()

    def _fire(self, event: BiomedEvent) -> None:
        self.state = next_state(TRANSITIONS, self.state, event)
        self._last_activity = self._clock()

    @property
    def locked_out_s(self) -> int:
        """Seconds until a biomed PIN may be tried again; 0 when it may now."""
        return self.lockout.wait_s(Role.BIOMED)

    def matches(self, pin: str) -> bool:
        """Whether `pin` is the biomed PIN, for a keypad that also takes other PINs: not
        counted here, so the caller must count the try against its own role. False while
        biomed is locked out (a right PIN then says nothing either)."""
        return not self.locked_out_s and self._pin(pin.strip())

    def _locked_out_text(self) -> str:
        return N_("too many wrong PINs") + f": wait {self.locked_out_s} s"

    def unlock(self, pin: str, *, keypad: str = "") -> None:
        check_allowed(TRANSITIONS, self.state, BE.UNLOCK)
        if self.locked_out_s:
            raise RefusedError(BiomedRefusal.LOCKED_OUT, self._locked_out_text())
        typed = pin.strip()
        if not self.lockout.try_pin(Role.BIOMED, lambda: self._pin(typed) or None, keypad=keypad):
            if self.locked_out_s:
                raise RefusedError(BiomedRefusal.LOCKED_OUT, self._locked_out_text())
            raise RefusedError(BiomedRefusal.WRONG_PIN, N_("PIN not accepted"))
        self._fire(BE.UNLOCK)
        self.audit.record(self._clock(), BIOMED, AuditAction.BIOMED_UNLOCK, detail=keypad)

    def lockout_remaining_s(self) -> float:
        """Seconds until a PIN may be tried again after too many wrong ones; 0 when not
        locked out (the screen counts this down)."""
        return float(self.locked_out_s)

    def lock(self) -> None:
        self._fire(BE.LOCK)
        self.testing = None
        self.test_results = ()

    def tick(self) -> bool:
        """Locks after inactivity; True when it did."""
        if self.state == B.LOCKED:
            return False
        if (self._clock() - self._last_activity).total_seconds() < self.idle_lock_s:
            return False
        self.lock()
        return True

    # -- devices ----------------------------------------------------------------------------

    def set_bound(self, devices: tuple[BoundDevice, ...]) -> None:
        """What is bound right now (station.toml + bindings.json), not a user action."""
        self.settings = self.settings.model_copy(update={"devices": list(devices)})
        self.set_devices(self.devices)

    def require_unlocked(self, what: str) -> None:
        """Refuses `what` on the PIN screen (export diagnostics, say)."""
        self._require(what, B.DEVICES, B.SETTINGS, B.DEVICE_TEST)

    def diagnostics_exported(self, where: str) -> None:
        """The composition root wrote the no-patient-data bundle to `where`."""
        self.audit.record(self._clock(), BIOMED, AuditAction.DIAGNOSTICS_EXPORTED, detail=where)

    def set_devices(self, rows: tuple[DeviceRow, ...]) -> None:
        """The device manager's latest view (not a user action)."""
        bound = {d.id for d in self.settings.devices}
        self.devices = tuple(
            sorted(
                (r.model_copy(update={"bound": r.device_id in bound}) for r in rows),
                # By id only: binding or unbinding never moves the rows under a finger.
                key=lambda r: r.device_id,
            )
        )

    def _row(self, device_id: str) -> DeviceRow:
        for row in self.devices:
            if row.device_id == device_id:
                return row
        raise RefusedError(BiomedRefusal.UNKNOWN_DEVICE, f"no device {device_id!r} in the list")

    def _require(self, what: str, *states: BiomedState) -> None:
        if self.state not in states:
            raise RefusedError(
                BiomedRefusal.WRONG_SCREEN,
                N_("cannot {what} on the {screen} screen").format(
                    what=what, screen=self.state.value
                ),
            )
        self._last_activity = self._clock()

    def bind(self, device_id: str) -> tuple[BoundDevice, ...]:
        """Bind a device to this station; returns the new list for the settings file."""
        self._require(N_("bind"), B.DEVICES)
        row = self._row(device_id)
        if row.bound:
            raise RefusedError(
                BiomedRefusal.ALREADY_BOUND,
                N_("{device} is already bound").format(device=device_id),
            )
        new = BoundDevice(id=row.device_id, profile=row.profile, address=row.address, port=row.port)
        bound = (*self.settings.devices, new)
        self._apply(bound)
        self.audit.record(self._clock(), BIOMED, AuditAction.DEVICE_BOUND,
                          detail=f"{device_id} ({row.profile})")
        return bound

    def unbind(self, device_id: str) -> tuple[BoundDevice, ...]:
        self._require(N_("unbind"), B.DEVICES)
        row = self._row(device_id)
        if not row.bound:
            raise RefusedError(
                BiomedRefusal.NOT_BOUND, N_("{device} is not bound").format(device=device_id)
            )
        bound = tuple(d for d in self.settings.devices if d.id != device_id)
        self._apply(bound)
        self.audit.record(self._clock(), BIOMED, AuditAction.DEVICE_UNBOUND,
                          detail=f"{device_id} ({row.profile})")
        return bound

    def _apply(self, bound: tuple[BoundDevice, ...]) -> None:
        self.settings = self.settings.model_copy(update={"devices": list(bound)})
        self.set_devices(self.devices)

    def open_test(self, device_id: str) -> None:
        row = self._row(device_id)
        if not row.bound:
            raise RefusedError(
                BiomedRefusal.NOT_BOUND,
                N_("bind {device} before testing it").format(device=device_id),
            )
        self._fire(BE.OPEN_TEST)
        self.testing = device_id
        self.test_results = ()
        self.audit.record(self._clock(), BIOMED, AuditAction.DEVICE_TEST,
                          detail=f"{device_id} ({row.profile})")

    def record_test_reading(self, device_id: str, reading: AnyReading) -> TestResult:
        """A reading from the device under test: shown decoded and raw, never sent anywhere."""
        self._require(N_("record a test reading"), B.DEVICE_TEST)
        if device_id != self.testing:
            raise RefusedError(
                BiomedRefusal.WRONG_DEVICE, f"testing {self.testing}, not {device_id}"
            )
        result = TestResult(
            device_id=device_id,
            reading=reading,
            raw_hex=reading.raw_hex,
            verdict=validate(reading),
            received_at=self._clock(),
        )
        self.test_results = (*self.test_results, result)
        return result

    def back(self) -> None:
        self._fire(BE.BACK)
        self.testing = None
        self.test_results = ()

    # -- settings ---------------------------------------------------------------------------

    def open_settings(self) -> SettingsView:
        self._fire(BE.OPEN_SETTINGS)
        return settings_view(self.settings)
