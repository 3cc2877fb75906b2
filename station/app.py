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

from station.capture import CaptureState
from station.checkin import Checkin
from station.config import BoundDevice, Settings, StationMode, describe_validation_error
from station.devices.bindings import BindingStore
from station.devices.ble_link import BleLink
from station.devices.manager import (
    DeviceManager,
    DeviceState,
    DeviceStatus,
    LiveValue,
    ManagerUpdate,
)
from station.devices.profiles import FirmwareProfile
from station.diagnostics import (
    HEALTH_FILE,
    HealthSnapshot,
    OutboxDepth,
    write_health_snapshot,
)
from station.diagnostics import DeviceState as HealthDevice
from station.errors import ConfigError
from station.guard import Attached, Ignored, Live, Outcome, Unassigned, WrongPatientGuard
from station.logs import Redacted, Redactor
from station.models import AnyReading, Mode
from station.rooming import CONFIRMED_STATES, Rooming, ScheduledPatient
from station.sdnotify import Notifier, Watchdog
from station.sync.contract import AckPayload, ConfigPayload, Presence, SchedulePayload
from station.sync.mqtt import Inbound, MqttLink
from station.sync.outbox import Outbox
from station.ui.ports import MemorySpeaker, Speaker
from station.ui.presenters import ExamPresenter, LobbyPresenter
from station.ui.sync_port import (
    SyncLobby,
    SyncOutbox,
    schedule_to_appointments,
    schedule_to_patients,
)

log = logging.getLogger(__name__)

Post = Callable[[Callable[[], object]], None]
OUTBOX_FILE = "outbox.sqlite3"  # the name `station outbox` reads too
CREDENTIALS_FILE = "credentials.toml"  # beside station.toml; readable by the service user only
HEALTH_EVERY_S = 10.0
DEVICE_TICK_S = 0.1  # the guard's connect-burst windows are released this often
SESSION_CHANGED = "the patient on this station changed while the reading was on its way"
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
            ["file not found: the station needs the MA badges/PINs ([ma]) and the lobby "
             "staff_pin; see docs/configuration.md"],
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from exc
    try:
        return Credentials.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), describe_validation_error(exc)) from exc


# ------------------------------------------------------------------------------ the guard


class LockedGuard(WrongPatientGuard):
    """The guard shared by the link threads (offer, flush) and the UI thread (the session).

    One lock makes each judgment see one session: without it a reading could be checked
    against one session's start and attached to the next one's id.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._guard_lock = threading.RLock()  # re-entrant: offer() calls flush()
        super().__init__(*args, **kwargs)

    def _locked(name: str) -> Any:  # type: ignore[misc]  # noqa: N805 - a class-body helper
        method = getattr(WrongPatientGuard, name)

        def wrapper(self: LockedGuard, *args: Any, **kwargs: Any) -> Any:
            with self._guard_lock:
                return method(self, *args, **kwargs)

        wrapper.__name__ = name
        wrapper.__doc__ = method.__doc__
        return wrapper

    offer = _locked("offer")
    flush = _locked("flush")
    open_session = _locked("open_session")
    close_session = _locked("close_session")
    device_connected = _locked("device_connected")
    set_bound = _locked("set_bound")
    accept = _locked("accept")
    discard = _locked("discard")
    del _locked


# ------------------------------------------------------------------------------ the services


def bound_devices(settings: Settings) -> tuple[BoundDevice, ...]:
    """The settings' [[devices]] plus what biomed bound (bindings.json); an id in both is the
    settings' (the file an installer wrote wins over a tap on the biomed screen)."""
    devices = {d.id: d for d in BindingStore(settings.storage.state_dir).list()}
    for device in settings.devices:
        if device.id in devices and devices[device.id] != device:
            log.warning("device %s is bound in both station.toml and bindings.json; "
                        "using station.toml", device.id)
        devices[device.id] = device
    return tuple(devices[k] for k in sorted(devices))


def filter_schedule(
    patients: tuple[ScheduledPatient, ...], room: str, provider: str
) -> tuple[ScheduledPatient, ...]:
    """This room's (and provider's) list when the settings name them; unassigned ones stay."""
    return tuple(
        p for p in patients
        if (not room or not p.room or p.room == room)
        and (not provider or not p.provider or p.provider == provider)
    )


def remember_schedule(redactor: Redactor, payload: SchedulePayload) -> None:
    """Today's identifiers are patient data: no log line may carry them from now on."""
    for appointment in payload.appointments:
        patient = appointment.patient
        redactor.remember(Redacted.NAME, patient.family_name, patient.given_name,
                          f"{patient.family_name}, {patient.given_name}")
        redactor.remember(Redacted.DOB, patient.birth_date)
        redactor.remember(Redacted.MRN, patient.mrn)
        if appointment.reason:
            redactor.remember(Redacted.TEXT, appointment.reason)


class StationServices:
    """Everything `station run` runs except the screens; `start()` / `stop()`.

    `post` runs a callable on the UI thread (the only thread that touches the presenter);
    the UI host calls `after_ui_change()` on that thread after every intent, hand-over and
    tick, which keeps the guard's session in step with the rooming.
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
    ) -> None:
        self.settings = settings
        self.redactor = redactor
        self._post = post
        self._clock = clock
        self._reading_mode = reading_mode
        self._profiles = profiles
        self._health_every_s = health_every_s
        self._link_options = dict(link_options or {})
        station = settings.station
        state_dir = settings.storage.state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.health_path = state_dir / HEALTH_FILE
        self.bindings = bound_devices(settings)
        key_path = settings.storage.outbox_key_file or state_dir / "outbox.key"
        self.outbox = Outbox(state_dir / OUTBOX_FILE, key_path)
        handlers = Inbound(on_schedule=self._on_schedule, on_config=self._on_config,
                           on_ack=self._on_ack)
        try:
            # Refuses plain TCP here (ConfigError) when require_tls and no CA: before anything runs.
            self.link = MqttLink(settings.broker, site=station.site,
                                 station_id=station.station_id, outbox=self.outbox,
                                 handlers=handlers, devices=self.bindings)
        except BaseException:
            self.outbox.close()
            raise
        self.mode = station.mode
        self.manager: DeviceManager | None = None
        self.guard: LockedGuard | None = None
        self.presenter: ExamPresenter | LobbyPresenter
        self.sync = SyncOutbox(self.link, self.outbox, site=station.site,
                               station_id=station.station_id)
        if self.mode == StationMode.EXAM:
            if not credentials.ma:
                self.outbox.close()
                raise ConfigError("credentials", ["[ma]: empty: an exam station needs at least "
                                                  "one MA badge or PIN to sign in with"])
            self.guard = LockedGuard(clock, [b.id for b in self.bindings], settings.guard)
            self.manager = DeviceManager(self.bindings, self.guard, self._from_devices, clock)
            rooming = Rooming(clock=clock, credentials=credentials.ma, display=settings.display,
                              idle_signout_s=settings.session.ma_idle_signout_s,
                              mode=reading_mode)
            # No guard in the presenter: the manager judges every reading on the link thread
            # with the shared guard above; `_from_devices` hands the outcomes over.
            self.presenter = ExamPresenter(rooming, self.sync, self.sync)
        else:
            if credentials.staff_pin is None:
                self.outbox.close()
                raise ConfigError("credentials", ["staff_pin: missing: a lobby kiosk needs a "
                                                  "staff PIN to leave kiosk mode"])
            self.lobby = SyncLobby(self.link, site=station.site, station_id=station.station_id)
            checkin = Checkin(clock=clock, staff_pin=credentials.staff_pin,
                              idle_warning_s=settings.session.lobby_idle_warning_s,
                              idle_wipe_s=settings.session.lobby_idle_wipe_s,
                              default_language=settings.display.locale[:2])
            self.presenter = LobbyPresenter(checkin, self.lobby, speaker or MemorySpeaker())
        self._session_token: str | None = None
        self._session_patient: str | None = None
        self._sessions = 0
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
            self.manager.start_serial_links(self._profiles, reading_mode=self._reading_mode,
                                            **self._link_options)
            if any(b.address is not None for b in self.bindings):
                self._start_ble(self.manager)
        self._stop.clear()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="station-house",
                                             daemon=True)
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
        if self._ble is not None and self._ble_loop is not None:
            self._ble_loop.call_soon_threadsafe(self._ble.stop)
            if self._ble_thread is not None:
                self._ble_thread.join(5)
        for device in self.bindings:
            if self._presence.get(device.id) is Presence.ONLINE:
                self.link.device_presence(device.id, Presence.OFFLINE, device.profile)
        self.link.stop()
        self.outbox.close()
        self.started = False
        log.info("station stopped")

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

    def health_snapshot(self) -> HealthSnapshot:
        devices: list[HealthDevice] = []
        if self.manager is not None:
            for status in self.manager.status():
                devices.append(HealthDevice(
                    id=status.device_id, profile=status.profile,
                    transport="ble" if status.address else "serial", state=status.state.value,
                    detail=status.last_error or ""))
        stats = self.outbox.stats()
        now = datetime.now(UTC)
        return HealthSnapshot(taken_at=now, devices=devices, outbox=OutboxDepth(
            pending=stats.depth, oldest_pending_age_s=stats.oldest_age_s(now)))

    # ---- the UI thread ------------------------------------------------------------------

    def after_ui_change(self) -> None:
        """On the UI thread: the guard's session follows the rooming's confirmed patient, and
        what the MA typed becomes patient data for the log filter."""
        if not isinstance(self.presenter, ExamPresenter) or self.guard is None:
            return
        rooming = self.presenter.rooming
        patient = rooming.patient
        confirmed = rooming.state in CONFIRMED_STATES and patient is not None
        if confirmed and patient is not None and self._session_patient != patient.appointment_id:
            self._sessions += 1
            # A fresh token per confirmation: an Attached outcome for an earlier session of
            # the same appointment can never match it.
            self._session_token = f"{patient.appointment_id}#{self._sessions}"
            self._session_patient = patient.appointment_id
            self.guard.open_session(self._session_token)
        elif not confirmed and self._session_token is not None:
            self.guard.close_session()
            self._session_token = self._session_patient = None
        text = rooming.complaint.free_text
        if text and text != self._remembered_text:
            self.redactor.remember(Redacted.TEXT, text)
            self._remembered_text = text

    def _apply(self, outcome: Outcome | LiveValue) -> None:
        """On the UI thread: one guard outcome into the rooming, or a streaming device's
        live value onto its tile (never into the rooming: only its captured reading is)."""
        assert isinstance(self.presenter, ExamPresenter) and self.guard is not None
        rooming = self.presenter.rooming
        if isinstance(outcome, LiveValue):
            self.presenter.device_live(outcome.device_id, outcome.reading,
                                       outcome.state is CaptureState.SETTLING)
        elif isinstance(outcome, Live):
            rooming.on_device_reading(outcome.reading, outcome.device_id)
        elif isinstance(outcome, Attached):
            if outcome.session_id == self._session_token:
                rooming.on_device_reading(outcome.reading, outcome.device_id)
            else:
                rooming.on_device_reading(outcome.reading, outcome.device_id,
                                          held_reason=SESSION_CHANGED)
        elif isinstance(outcome, Unassigned):
            entry = outcome.entry
            # One tray, the rooming's: the MA accepts or discards there.
            self.guard.discard(entry.entry_id)
            rooming.on_device_reading(entry.reading, entry.device_id,
                                      held_reason=entry.describe())

    # ---- link and MQTT threads ----------------------------------------------------------

    def _from_devices(self, update: ManagerUpdate) -> None:
        if isinstance(update, DeviceStatus):
            self._device_presence(update)
            self._post(_nothing)  # redraw: the banner and biomed rows read the manager
        elif isinstance(update, Ignored):
            log.info("reading from %s ignored: %s", update.device_id, update.why)
        else:
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
            self._post(partial(presenter.checkin.set_appointments,
                               schedule_to_appointments(payload)))

    def _on_ack(self, payload: AckPayload) -> None:
        self.sync.note_ack(payload)
        self._post(_nothing)  # redraw: "received by the practice system"

    def _on_config(self, payload: ConfigPayload) -> None:
        # Validated by the sync layer; applying display/devices/guard live is not wired yet.
        log.warning("config %s accepted by the sync layer; restart the station to apply it",
                    payload.message_id)

    # ---- for tests and the demo ---------------------------------------------------------

    def device_reading(self, device_id: str, reading: AnyReading) -> None:
        """A reading as a link delivers it (any thread): manager, guard, hand-over."""
        assert self.manager is not None
        from station.devices.ble_link import ReadingArrived

        self.manager.handle(ReadingArrived(device_id=device_id, reading=reading,
                                           received_monotonic_s=time.monotonic()))


def _nothing() -> None:
    """Posted only for the redraw that follows every hand-over."""


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
        getattr(self.services.presenter, name)(*args)
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


def start_logging(stream: TextIO | None = None) -> tuple[Redactor, Callable[[], None]]:
    """The station's logging, scrubbed by one Redactor that the services teach today's
    patients to (schedule, typed text). Returns it and the undo."""
    from station.logs import RecentErrors, setup_logging

    redactor = Redactor()
    return redactor, setup_logging(redactor, stream=stream, recent=RecentErrors())


def run_station(settings: Settings, config_file: Path | None = None) -> int:
    """`station run`: services + Kivy screens until SIGTERM or the window closes."""
    redactor, undo_logging = start_logging()
    try:
        credentials = load_credentials(credentials_path(config_file))
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)  # noqa: T201 - the operator's terminal
        print("station: refusing to start without credentials", file=sys.stderr)  # noqa: T201
        undo_logging()
        return 2
    try:
        return _run_with_kivy(settings, credentials, redactor)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)  # noqa: T201
        print("station: refusing to start", file=sys.stderr)  # noqa: T201
        return 2
    finally:
        undo_logging()


def _run_with_kivy(settings: Settings, credentials: Credentials, redactor: Redactor) -> int:
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
    services = StationServices(settings, post=post, credentials=credentials, redactor=redactor,
                               speaker=speaker)
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
        ui = StationUI(settings.station.mode.value, services.presenter,
                       on_change=services.after_ui_change)
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
