"""The composition root: builds the station's services from Settings and runs them under Kivy.

`StationServices` wires the concrete adapters — the encrypted outbox, the MQTT link, the
device manager with its serial and BLE links and the wrong-patient guard — to the mode's
presenter, and needs no Kivy: tests and the headless demo drive it with their own loop.
Everything from a link or MQTT thread reaches the presenter through `post`, the hand-over
to the UI thread (Kivy: `StationUI.deliver`). `run_station` puts the Kivy screens on top,
with sd_notify READY, the watchdog fed from the Kivy clock and a clean SIGTERM shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, ValidationError

from station.biomed import Biomed, BiomedState, DeviceRow
from station.capture import CaptureState
from station.checkin import Checkin
from station.config import BoundDevice, Settings, StationMode, describe_validation_error
from station.devices.bindings import BindingStore
from station.devices.ble_link import BleLink
from station.devices.manager import (
    Captured,
    Connected,
    DeviceManager,
    DeviceState,
    DeviceStatus,
    LiveValue,
    ManagerUpdate,
    deliver,
)
from station.devices.profiles import FirmwareProfile, load_profiles
from station.devices.serial_link import BY_ID_DIR, scan_ports
from station.diagnostics import (
    HEALTH_FILE,
    HealthSnapshot,
    OutboxDepth,
    build_bundle,
    bundle_file_name,
    versions,
    write_health_snapshot,
)
from station.diagnostics import DeviceState as HealthDevice
from station.errors import ConfigError
from station.guard import Ignored
from station.logs import RecentErrors, Redacted, Redactor
from station.models import AnyReading, Mode
from station.rooming import Rooming
from station.rooming_data import ScheduledPatient
from station.sdnotify import Notifier, Watchdog
from station.sync.contract import (
    AckPayload,
    ConfigPayload,
    Presence,
    SchedulePayload,
    StationConfigPush,
)
from station.sync.contract import Appointment as ContractAppointment
from station.sync.inbound import LookupResult
from station.sync.mqtt import Inbound, MqttLink
from station.sync.outbox import Outbox
from station.ui.ports import MemorySpeaker, Speaker
from station.ui.presenters import BiomedPresenter, ExamPresenter, LobbyPresenter
from station.ui.sync_port import (
    SyncLobby,
    SyncLookup,
    SyncOutbox,
    lookup_answer,
    schedule_to_appointments,
    schedule_to_patients,
)

log = logging.getLogger(__name__)

Post = Callable[[Callable[[], object]], None]
OUTBOX_FILE = "outbox.sqlite3"  # the name `station outbox` reads too
CREDENTIALS_FILE = "credentials.toml"  # beside station.toml; readable by the service user only
PUSHED_CONFIG_FILE = "pushed-config.json"  # the last `config` the practice system pushed
DIAGNOSTICS_DIR = "diagnostics"  # bundles exported from the biomed screen, in the state dir
HEALTH_EVERY_S = 10.0
DEVICE_TICK_S = 0.1  # streaming capture episodes are ended this often
_ONLINE_STATES = {DeviceState.CONNECTED, DeviceState.MEASURING, DeviceState.SLEEPING}


def local_now() -> datetime:
    # Aware, in the station's zone: device clocks send local wall time without a zone, and
    # the guard reads those in the zone of this clock.
    return datetime.now(UTC).astimezone()


# ------------------------------------------------------------------------------ credentials


class Credentials(BaseModel):
    """Who may sign in: kept out of station.toml so the settings can be shared and diffed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ma: dict[str, str] = {}  # badge id or PIN -> MA id (the id goes into the record, never a log)
    staff_pin: str | None = None  # the lobby kiosk's way out
    biomed_pin: str | None = None


def load_credentials(path: Path) -> Credentials:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            str(path),
            [
                "file not found: the station needs the MA badges/PINs ([ma]) and the lobby "
                "staff_pin; see docs/configuration.md"
            ],
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from exc
    try:
        return Credentials.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), describe_validation_error(exc)) from exc


# ------------------------------------------------------------------------------ the services


def bound_devices(settings: Settings) -> tuple[BoundDevice, ...]:
    """The settings' [[devices]] plus what biomed bound (bindings.json); an id in both is the
    settings' (the file an installer wrote wins over a tap on the biomed screen)."""
    devices = {d.id: d for d in BindingStore(settings.storage.state_dir).list()}
    for device in settings.devices:
        if device.id in devices and devices[device.id] != device:
            log.warning(
                "device %s is bound in both station.toml and bindings.json; using station.toml",
                device.id,
            )
        devices[device.id] = device
    return tuple(devices[k] for k in sorted(devices))


def filter_schedule(
    patients: tuple[ScheduledPatient, ...], room: str, provider: str
) -> tuple[ScheduledPatient, ...]:
    """This room's (and provider's) list when the settings name them; unassigned ones stay."""
    return tuple(
        p
        for p in patients
        if (not room or not p.room or p.room == room)
        and (not provider or not p.provider or p.provider == provider)
    )


def remember_schedule(redactor: Redactor, payload: SchedulePayload) -> None:
    """Today's identifiers are patient data: no log line may carry them from now on."""
    for appointment in payload.appointments:
        remember_appointment(redactor, appointment)


def remember_appointment(redactor: Redactor, appointment: ContractAppointment) -> None:
    patient = appointment.patient
    redactor.remember(
        Redacted.NAME,
        patient.family_name,
        patient.given_name,
        f"{patient.family_name}, {patient.given_name}",
    )
    redactor.remember(Redacted.DOB, patient.birth_date)
    redactor.remember(Redacted.MRN, patient.mrn)
    if appointment.reason:
        redactor.remember(Redacted.TEXT, appointment.reason)


class PushedConfig(BaseModel):
    """The last accepted `config` push, kept in the state directory: applied at start-up
    (never mid-rooming: devices and guard windows change only on a restart)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str
    received_at: datetime
    settings: StationConfigPush


def read_pushed_config(state_dir: Path) -> PushedConfig | None:
    path = state_dir / PUSHED_CONFIG_FILE
    try:
        return PushedConfig.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValidationError as exc:
        raise ConfigError(str(path), describe_validation_error(exc)) from exc


def write_pushed_config(state_dir: Path, pushed: PushedConfig) -> None:
    path = state_dir / PUSHED_CONFIG_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(pushed.model_dump_json(indent=2), encoding="utf-8")
    tmp.replace(path)  # a reader (the next start) never sees half a file


def apply_pushed(settings: Settings, push: StationConfigPush) -> Settings:
    """The pushed sections replace the file's; what the push leaves out stays."""
    changes: dict[str, Any] = {}
    if push.display is not None:
        changes["display"] = push.display
    if push.devices is not None:
        changes["devices"] = list(push.devices)
    if push.guard is not None:
        changes["guard"] = push.guard
    return settings.model_copy(update=changes)


def describe_push(push: StationConfigPush) -> str:
    parts = [name for name in ("display", "devices", "guard") if getattr(push, name) is not None]
    return ", ".join(parts) or "no settings"


class StationServices:
    """Everything `station run` runs except the screens; `start()` / `stop()`.

    `post` runs a callable on the UI thread (the only thread that touches the presenter and
    the rooming workflow, which owns the session, the wrong-patient guard and the tray): link
    threads only hand their events over. The UI host calls `after_ui_change()` on that thread
    after every intent, which tells the log filter what the MA typed.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        post: Post,
        credentials: Credentials,
        redactor: Redactor,
        clock: Callable[[], datetime] = local_now,
        reading_mode: Mode = Mode.REAL,
        speaker: Speaker | None = None,
        profiles: Mapping[str, FirmwareProfile] | None = None,
        health_every_s: float = HEALTH_EVERY_S,
        link_options: Mapping[str, Any] | None = None,
        recent_errors: RecentErrors | None = None,
        by_id_dir: Path = BY_ID_DIR,
        lookup_timeout_s: float = 5.0,
    ) -> None:
        state_dir = settings.storage.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.applied_config = read_pushed_config(state_dir)
        if self.applied_config is not None:
            settings = apply_pushed(settings, self.applied_config.settings)
        self.settings = settings
        self.redactor = redactor
        self._post = post
        self._clock = clock
        self._reading_mode = reading_mode
        self._profiles = profiles
        self._health_every_s = health_every_s
        self._link_options = dict(link_options or {})
        self._recent_errors = recent_errors
        self._by_id_dir = by_id_dir
        self.config_notice = ""  # set from the MQTT thread; a str swap, read by biomed
        self.last_config_id = ""  # the last accepted push seen, applied or not
        station = settings.station
        self.health_path = state_dir / HEALTH_FILE
        self.bindings = bound_devices(settings)
        key_path = settings.storage.outbox_key_file or state_dir / "outbox.key"
        self.outbox = Outbox(state_dir / OUTBOX_FILE, key_path)
        handlers = Inbound(
            on_schedule=self._on_schedule,
            on_config=self._on_config,
            on_ack=self._on_ack,
            on_lookup=self._on_lookup,
        )
        try:
            # Refuses plain TCP here (ConfigError) when require_tls and no CA: before anything runs.
            self.link = MqttLink(
                settings.broker,
                site=station.site,
                station_id=station.station_id,
                outbox=self.outbox,
                handlers=handlers,
                devices=self.bindings,
                lookup_timeout_s=lookup_timeout_s,
            )
        except BaseException:
            self.outbox.close()
            raise
        self.mode = station.mode
        self.manager: DeviceManager | None = None
        self.presenter: ExamPresenter | LobbyPresenter
        self.sync = SyncOutbox(
            self.link, self.outbox, site=station.site, station_id=station.station_id
        )
        self.biomed: BiomedPresenter | None = None
        if credentials.biomed_pin:
            biomed = Biomed(
                clock=clock,
                pin=credentials.biomed_pin,
                settings=settings.model_copy(update={"devices": list(self.bindings)}),
            )
            self.biomed = BiomedPresenter(biomed, StationBiomed(self))
        if self.mode == StationMode.EXAM:
            if not credentials.ma:
                self.outbox.close()
                raise ConfigError(
                    "credentials",
                    [
                        "[ma]: empty: an exam station needs at least "
                        "one MA badge or PIN to sign in with"
                    ],
                )
            self.manager = DeviceManager(
                self.bindings, self._from_devices, clock, profiles=self._profiles
            )
            rooming = Rooming(
                clock=clock,
                credentials=credentials.ma,
                display=settings.display,
                idle_signout_s=settings.session.ma_idle_signout_s,
                mode=reading_mode,
                bound_devices=self.manager.bound_ids,
                guard_policy=settings.guard,
                device_ranges=self.manager.measuring_ranges(),
            )
            # The links only hand over: `_from_devices` posts each reading to the UI thread,
            # where the rooming's guard judges it (the one path, as in every mode and test).
            self.presenter = ExamPresenter(
                rooming, self.sync, self.sync, biomed=self.biomed, lookup=SyncLookup(self.link)
            )
        else:
            if credentials.staff_pin is None:
                self.outbox.close()
                raise ConfigError(
                    "credentials",
                    ["staff_pin: missing: a lobby kiosk needs a staff PIN to leave kiosk mode"],
                )
            self.lobby = SyncLobby(self.link, site=station.site, station_id=station.station_id)
            checkin = Checkin(
                clock=clock,
                staff_pin=credentials.staff_pin,
                idle_warning_s=settings.session.lobby_idle_warning_s,
                idle_wipe_s=settings.session.lobby_idle_wipe_s,
                default_language=settings.display.locale[:2],
            )
            self.presenter = LobbyPresenter(
                checkin, self.lobby, speaker or MemorySpeaker(), biomed=self.biomed
            )
        self._remembered_text = ""
        self._presence: dict[str, Presence] = {}
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self._ble: BleLink | None = None
        self._ble_loop: asyncio.AbstractEventLoop | None = None
        self._ble_thread: threading.Thread | None = None
        self.started = False

    # ---- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.link.start()
        if self.manager is not None:
            self._start_links(self.manager)
        self._stop.clear()
        self._housekeeper = threading.Thread(
            target=self._housekeeping, name="station-house", daemon=True
        )
        self._housekeeper.start()
        self.started = True
        log.info("station started: mode %s, %d bound device(s)", self.mode, len(self.bindings))

    def stop(self) -> None:
        """Links down, the offline status published (no last will), the outbox closed."""
        self._stop.set()
        if self._housekeeper is not None:
            self._housekeeper.join(5)
        if self.manager is not None:
            self.manager.stop_links()
        self._stop_ble()
        for device in self.bindings:
            if self._presence.get(device.id) is Presence.ONLINE:
                self.link.device_presence(device.id, Presence.OFFLINE, device.profile)
        self.link.stop()
        self.outbox.close()
        self.started = False
        log.info("station stopped")

    def rebind(self) -> None:
        """On the UI thread, after biomed bound or unbound a device: a new device manager
        over the new bindings (bindings.json re-read), its links started; the old one's
        links stopped first. Only from biomed, i.e. with no rooming confirmed."""
        if self.manager is None or not isinstance(self.presenter, ExamPresenter):
            self.bindings = bound_devices(self.settings)
            return
        self.manager.stop_links()
        self._stop_ble()
        before = self.bindings
        self.bindings = bound_devices(self.settings)
        kept = {d.id for d in self.bindings}
        for device in before:
            # An unbound device's retained status must not say "online" for ever (a stopped
            # serial link reports itself; this covers a link that went without a word).
            if device.id not in kept and self._presence.pop(device.id, None) is Presence.ONLINE:
                self.link.device_presence(device.id, Presence.OFFLINE, device.profile)
        self.manager = DeviceManager(
            self.bindings, self._from_devices, self._clock, profiles=self._profiles
        )
        self.presenter.rooming.set_bound_devices(
            self.manager.bound_ids, self.manager.measuring_ranges()
        )
        if self.started:
            self._start_links(self.manager)
        log.info("bindings changed: %d bound device(s)", len(self.bindings))

    def _start_links(self, manager: DeviceManager) -> None:
        manager.start_serial_links(
            self._profiles, reading_mode=self._reading_mode, **self._link_options
        )
        if any(b.address is not None for b in self.bindings):
            self._start_ble(manager)

    def _stop_ble(self) -> None:
        if self._ble is not None and self._ble_loop is not None:
            self._ble_loop.call_soon_threadsafe(self._ble.stop)
            if self._ble_thread is not None:
                self._ble_thread.join(5)
        self._ble = self._ble_loop = self._ble_thread = None

    def _start_ble(self, manager: DeviceManager) -> None:
        link = manager.ble_link(self._profiles, clock=self._clock, mode=self._reading_mode)
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._ble_loop = loop
            ready.set()
            try:
                loop.run_until_complete(link.run())
            except Exception:
                log.exception("Bluetooth link stopped")
            finally:
                loop.close()

        self._ble = link
        self._ble_thread = threading.Thread(target=run, name="ble-link", daemon=True)
        self._ble_thread.start()
        ready.wait(5)

    def _housekeeping(self) -> None:
        next_health = 0.0
        while not self._stop.wait(DEVICE_TICK_S):
            try:
                if self.manager is not None:
                    self.manager.tick()
                now = time.monotonic()
                if now >= next_health:
                    next_health = now + self._health_every_s
                    write_health_snapshot(self.health_path, self.health_snapshot())
            except Exception:
                log.exception("station housekeeping failed; retrying")

    def device_states(self) -> list[HealthDevice]:
        """Bound devices as the diagnostics bundle and health.json report them."""
        manager = self.manager
        if manager is None:
            return []
        return [
            HealthDevice(
                id=status.device_id,
                profile=status.profile,
                transport="ble" if status.address else "serial",
                state=status.state.value,
                detail=status.last_error or "",
            )
            for status in manager.status()
        ]

    def outbox_depth(self) -> OutboxDepth:
        stats = self.outbox.stats()
        return OutboxDepth(
            pending=stats.depth, oldest_pending_age_s=stats.oldest_age_s(datetime.now(UTC))
        )

    def health_snapshot(self) -> HealthSnapshot:
        return HealthSnapshot(
            taken_at=datetime.now(UTC), devices=self.device_states(), outbox=self.outbox_depth()
        )

    def export_diagnostics(self) -> Path:
        """The support bundle (station.diagnostics.build_bundle, as `station diagnostics`),
        from the running services, into <state_dir>/diagnostics/."""
        now = datetime.now(UTC)
        folder = self.settings.storage.state_dir / DIAGNOSTICS_DIR
        folder.mkdir(exist_ok=True)
        path = folder / bundle_file_name(self.settings.station.station_id, now)
        recent = self._recent_errors
        with open(path, "xb") as out:
            build_bundle(
                out,
                created_at=now,
                versions=versions(),
                settings=self.settings,
                devices=self.device_states,
                outbox=self.outbox_depth,
                recent_errors=lambda: [] if recent is None else list(recent.lines),
                redactor=self.redactor,
                name=str(path),
            )
        return path

    # ---- the UI thread ------------------------------------------------------------------

    def after_ui_change(self) -> None:
        """On the UI thread after every intent: what the MA typed becomes patient data for
        the log filter."""
        if not isinstance(self.presenter, ExamPresenter):
            return
        text = self.presenter.rooming.complaint.free_text
        if text and text != self._remembered_text:
            self.redactor.remember(Redacted.TEXT, text)
            self._remembered_text = text

    def _apply(self, update: Captured | Connected | LiveValue) -> None:
        """On the UI thread: a device event into the exam presenter, the one path into the
        rooming (whose guard judges it), or a streaming device's live value onto its tile."""
        assert isinstance(self.presenter, ExamPresenter)
        if isinstance(update, LiveValue):
            self.presenter.device_live(
                update.device_id, update.reading, update.state is CaptureState.SETTLING
            )
        elif isinstance(update, Connected) or not self._biomed_testing(update.device_id):
            # A biomed test measurement is shown in the test view only: no one's vitals.
            deliver(self.presenter, update)

    def _biomed_testing(self, device_id: str) -> bool:
        biomed = self.biomed
        return (
            biomed is not None
            and biomed.biomed.state is BiomedState.DEVICE_TEST
            and biomed.biomed.testing == device_id
        )

    # ---- link and MQTT threads ----------------------------------------------------------

    def _from_devices(self, update: ManagerUpdate) -> None:
        if isinstance(update, DeviceStatus):
            self._device_presence(update)
            self._post(_nothing)  # redraw: the banner and biomed rows read the manager
        elif isinstance(update, Ignored):
            log.info("reading from %s ignored: %s", update.device_id, update.why)
        elif isinstance(self.presenter, ExamPresenter):
            self._post(partial(self._apply, update))

    def _device_presence(self, status: DeviceStatus) -> None:
        presence = Presence.ONLINE if status.state in _ONLINE_STATES else Presence.OFFLINE
        if self._presence.get(status.device_id) != presence:
            self._presence[status.device_id] = presence
            self.link.device_presence(status.device_id, presence, status.profile)

    def _on_schedule(self, payload: SchedulePayload) -> None:
        remember_schedule(self.redactor, payload)  # before anything could log a name
        presenter = self.presenter
        if isinstance(presenter, ExamPresenter):
            room, provider = self.settings.station.room, self.settings.station.provider
            patients = filter_schedule(schedule_to_patients(payload), room, provider)
            self._post(partial(presenter.rooming.set_schedule, patients))
        else:
            self.lobby.set_schedule(payload)
            self._post(
                partial(presenter.checkin.set_appointments, schedule_to_appointments(payload))
            )

    def _on_ack(self, payload: AckPayload) -> None:
        del payload  # recorded by the outbox; the redraw reads it from there
        self._post(_nothing)  # redraw: "received by the practice system"

    def _on_config(self, payload: ConfigPayload) -> None:
        """Validated by the sync layer. Kept for the next start, never hot-applied: devices
        and guard windows must not change mid-rooming. The retained copy comes again on
        every connect; the one already applied is no news."""
        message_id = str(payload.message_id)
        self.last_config_id = message_id
        if self.applied_config is not None and self.applied_config.message_id == message_id:
            return
        received = self._clock()
        try:
            write_pushed_config(
                self.settings.storage.state_dir,
                PushedConfig(
                    message_id=message_id, received_at=received, settings=payload.settings
                ),
            )
        except OSError as exc:
            log.error("pushed config %s not stored: %s", message_id, exc.strerror)
            self.config_notice = (
                f"New configuration {message_id[:8]} could not be stored "
                f"({exc.strerror}): not applied"
            )
        else:
            log.warning("config %s stored; it applies when the station restarts", message_id)
            self.config_notice = (
                f"New configuration received {received:%H:%M} "
                f"({describe_push(payload.settings)}): applies on restart"
            )
        self._post(_nothing)  # redraw the biomed settings

    def _on_lookup(self, result: LookupResult) -> None:
        """The practice system's answer to a scanned barcode (MQTT thread)."""
        presenter = self.presenter
        if not isinstance(presenter, ExamPresenter):
            return
        if result.appointment is not None:
            # Patient data from here on: before anything could log it.
            remember_appointment(self.redactor, result.appointment)
        self._post(partial(presenter.lookup_answered, lookup_answer(result)))

    # ---- for tests and the demo ---------------------------------------------------------

    def device_reading(self, device_id: str, reading: AnyReading) -> None:
        """A reading as a link delivers it (any thread): manager, guard, hand-over."""
        assert self.manager is not None
        from station.devices.ble_link import ReadingArrived

        self.manager.handle(
            ReadingArrived(
                device_id=device_id, reading=reading, received_monotonic_s=time.monotonic()
            )
        )


def _nothing() -> None:
    """Posted only for the redraw that follows every hand-over."""


class StationBiomed:
    """The biomed screen's port on the running station: the device manager's status and
    last readings, serial ports plugged in, bindings.json (then the manager rebuilt), the
    outbox's depth, the one diagnostics bundle, the pushed-config notice."""

    def __init__(self, services: StationServices) -> None:
        self._services = services
        self._profiles: Mapping[str, FirmwareProfile] | None = None

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
                present=status.state in _ONLINE_STATES,
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
        return tuple(rows[k] for k in sorted(rows))

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

    def outbox_depth(self) -> OutboxDepth:
        return self._services.outbox_depth()

    def export_diagnostics(self) -> str:
        return str(self._services.export_diagnostics())

    def config_notice(self) -> str:
        return self._services.config_notice


def _id_for_port(path: str) -> str:
    """A device id for an unbound serial port, from its stable name (topic-level safe)."""
    name = Path(path).name.removeprefix("usb-")
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
    return ("serial-" + cleaned)[:64].rstrip("-_.")


class HeadlessHost:
    """The UI thread without Kivy (the headless demo, tests): whoever calls `run_until` is the
    UI thread; link and MQTT threads `post` to it, as they would to the Kivy clock."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self.services: StationServices | None = None

    def post(self, action: Callable[[], object]) -> None:
        self._queue.put(action)

    def _changed(self) -> None:
        if self.services is not None:
            self.services.after_ui_change()

    def intent(self, name: str, *args: Any) -> None:
        """An MA tap, as StationUI.intent does it."""
        assert self.services is not None
        presenter: Any = self.services.presenter
        target = presenter.biomed if presenter.screen == "biomed" else presenter
        getattr(target, name)(*args)
        self._changed()

    def run_until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        """Run hand-overs (and the presenter's tick once a second) until `done()`; a
        TimeoutError naming `what` if it never is."""
        assert self.services is not None
        deadline = time.monotonic() + timeout_s
        next_tick = time.monotonic() + 1.0
        while not done():
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"{what}: not done after {timeout_s:g} s")
            try:
                action = self._queue.get(timeout=min(0.05, max(0.0, deadline - now)))
            except queue.Empty:
                pass
            else:
                action()
                self._changed()
            if time.monotonic() >= next_tick:
                next_tick += 1.0
                self.services.presenter.tick()
                self._changed()


# ------------------------------------------------------------------------------ with Kivy


def credentials_path(config_file: Path | None) -> Path:
    explicit = os.environ.get("STATION_CREDENTIALS")
    if explicit:
        return Path(explicit)
    base = config_file.parent if config_file is not None else Path("/etc/station")
    return base / CREDENTIALS_FILE


def start_logging(
    stream: TextIO | None = None, recent: RecentErrors | None = None
) -> tuple[Redactor, Callable[[], None]]:
    """The station's logging, scrubbed by one Redactor that the services teach today's
    patients to (schedule, typed text). Returns it and the undo. `recent` keeps the last
    warnings and errors for the diagnostics bundle."""
    from station.logs import setup_logging

    redactor = Redactor()
    return redactor, setup_logging(redactor, stream=stream, recent=recent or RecentErrors())


def run_station(settings: Settings, config_file: Path | None = None) -> int:
    """`station run`: services + Kivy screens until SIGTERM or the window closes."""
    recent = RecentErrors()
    redactor, undo_logging = start_logging(recent=recent)
    try:
        credentials = load_credentials(credentials_path(config_file))
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)  # noqa: T201 - the operator's terminal
        print("station: refusing to start without credentials", file=sys.stderr)  # noqa: T201
        undo_logging()
        return 2
    try:
        return _run_with_kivy(settings, credentials, redactor, recent)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)  # noqa: T201
        print("station: refusing to start", file=sys.stderr)  # noqa: T201
        return 2
    finally:
        undo_logging()


def _run_with_kivy(
    settings: Settings, credentials: Credentials, redactor: Redactor, recent: RecentErrors
) -> int:
    from station.ui.ports import EspeakSpeaker

    ui_box: list[Any] = []  # the StationUI, once Kivy has built it
    pending: list[Callable[[], object]] = []

    def post(action: Callable[[], object]) -> None:
        # Before the window exists, messages (the retained schedule) wait for it.
        if ui_box:
            ui_box[0].deliver(action)
        else:
            pending.append(action)

    speaker = EspeakSpeaker() if settings.station.mode == StationMode.LOBBY else None
    services = StationServices(
        settings,
        post=post,
        credentials=credentials,
        redactor=redactor,
        speaker=speaker,
        recent_errors=recent,
    )
    # Services first: a refusal (plain TCP, bad outbox key) comes before Kivy takes over
    # stderr and before any window opens.
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    from kivy.config import Config

    Config.set("graphics", "rotation", str(settings.display.rotation))
    if settings.station.mode == StationMode.LOBBY:
        Config.set("kivy", "keyboard_mode", "systemanddock")
    from kivy.clock import Clock

    from station.ui.app import StationApp, StationUI

    notifier = Notifier.from_environment()
    watchdog = Watchdog.from_environment(notifier)

    def factory() -> StationUI:
        ui = StationUI(
            settings.station.mode.value, services.presenter, on_change=services.after_ui_change
        )
        ui_box.append(ui)
        for action in pending:
            ui.deliver(action)
        pending.clear()
        return ui

    app = StationApp(factory)

    def on_sigterm(_signum: int, _frame: object) -> None:
        Clock.schedule_once(lambda _dt: app.stop(), 0)

    signal.signal(signal.SIGTERM, on_sigterm)
    services.start()
    notifier.ready(f"{settings.station.mode.value} station {settings.station.station_id}")
    every = watchdog.feed_every_s
    if every is not None:
        Clock.schedule_interval(lambda _dt: watchdog.tick(time.monotonic()), every / 2)
    try:
        app.run()
    finally:
        notifier.stopping()
        services.stop()
    return 0
