"""The station's services without the screens: outbox, MQTT link, device links, and the
mode's presenter they feed, all handed over to one UI thread through `post`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from station.app.audited_outbox import AuditedOutbox
from station.app.biomed_port import StationBiomed
from station.app.ble_thread import BleThread
from station.app.credentials import Credentials
from station.app.health import StationHealth
from station.app.lockout_store import LOCKOUT_FILE, FileLockoutStore
from station.app.modes import exam_presenter, lobby_presenter
from station.app.pushed import (
    PushedConfig,
    PushedConfigInbox,
    installed_profiles,
    settings_at_start,
)
from station.app.sync_port import (
    SyncLobby,
    SyncLookup,
    SyncOutbox,
    lookup_answer,
    schedule_to_appointments,
    schedule_to_patients,
    site_records,
)
from station.app.wiring import (
    ONLINE_STATES,
    Post,
    bound_devices,
    filter_schedule,
    local_now,
    remember_appointment,
    remember_schedule,
)
from station.audit import STATION, AuditAction, AuditEvent, AuditTrail
from station.biomed import Biomed, BiomedState
from station.capture import CaptureState
from station.config import Settings, StationMode
from station.devices.manager import (
    Captured,
    DeviceManager,
    DeviceStatus,
    LinkUpdate,
    LiveValue,
    ManagerUpdate,
    deliver,
)
from station.devices.pairing import AgentRegistration, PasskeyRequests
from station.devices.profiles import FirmwareProfile
from station.devices.serial_link import BY_ID_DIR
from station.diagnostics import (
    HEALTH_FILE,
    write_health_snapshot,
)
from station.errors import ConfigError
from station.guard import Ignored
from station.lockout import PinLockout
from station.logs import RecentErrors, Redacted, Redactor
from station.models import AnyReading, Mode
from station.submission import Identification
from station.sync.audit_store import AUDIT_FILE, AuditStore, Subject
from station.sync.contract import (
    AckPayload,
    AckStatus,
    Channel,
    ConfigPayload,
    Presence,
    SchedulePayload,
)
from station.sync.inbound import LookupResult
from station.sync.mqtt import Inbound, MqttLink
from station.sync.outbox import AckPolicy, DeliveryState
from station.ui.ports import Speaker
from station.ui.presenters import BiomedPresenter, ExamPresenter, LobbyPresenter

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"  # the name `station outbox` reads too
DIAGNOSTICS_DIR = "diagnostics"  # bundles exported from the biomed screen, in the state dir
HEALTH_EVERY_S = 10.0
DEVICE_TICK_S = 0.1  # streaming capture episodes are ended this often
EARLY_KEPT = 256  # deliveries waiting for their `saved` record (others' are dropped)


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
        # A stored push is checked again (profiles or the file may have changed since it
        # came); one that fails is set aside with a warning, never a refusal to start.
        push_profiles = installed_profiles(profiles)
        start = settings_at_start(settings, state_dir, push_profiles)
        self.applied_config = start.applied
        self.config_warning = start.warning
        self.schedule_warning = ""
        self.pushed = PushedConfigInbox(
            state_dir,
            clock,
            self.applied_config,
            lambda: post(_nothing),
            local=settings,
            profiles=push_profiles,
            notice=start.warning,
            stored_id=start.stored_id,
        )
        settings = start.settings
        self.settings = settings
        self.redactor = redactor
        self._post = post
        self._clock = clock
        self._reading_mode = reading_mode
        self._profiles = profiles
        self._health_every_s = health_every_s
        self._link_options = dict(link_options or {})
        self._by_id_dir = by_id_dir
        station = settings.station
        self.health_path = state_dir / HEALTH_FILE
        self.bindings = bound_devices(settings)
        key_path = settings.storage.outbox_key_file or state_dir / "outbox.key"
        self.outbox = AuditedOutbox(
            state_dir / OUTBOX_FILE,
            key_path,
            ack_policy=AckPolicy(
                resend_after_s=settings.broker.ack_resend_after_s,
                overdue_after_s=settings.broker.ack_overdue_after_s,
            ),
        )
        # The audit trail: the workflows and the PIN lockout record into one trail on the UI
        # thread (drained after every intent); the sync layer's events go straight to the store.
        self.audit_trail = AuditTrail()
        self._audit_lock = threading.Lock()  # orders the UI thread's and MQTT threads' records
        # Deliveries and acks of messages whose `saved` record is not stored yet.
        self._early: dict[str, list[tuple[AuditAction, str]]] = {}
        self.lockout = PinLockout(
            clock, FileLockoutStore(state_dir / LOCKOUT_FILE), audit=self.audit_trail
        )
        self.health = StationHealth(
            settings,
            self.outbox,
            lambda: self.manager,
            redactor,
            recent_errors,
            broker_problem=lambda: self.link.problem,
            warnings=lambda: [w for w in (self.config_warning, self.schedule_warning) if w],
        )
        self.link = self._open_link(lookup_timeout_s)
        try:
            self.audit = AuditStore(
                state_dir / AUDIT_FILE,
                key_path,
                site=station.site,
                station_id=station.station_id,
                queue=lambda mid, body: self.link.submit(Channel.AUDIT, body, mid),
                queued_already=lambda mid: self.outbox.state(mid) is not DeliveryState.UNKNOWN,
            )
        except BaseException:
            self.outbox.close()
            raise
        self.outbox.watch(self._audit_delivery)
        self._audit_config_at_start(start.applied, start.stored_id, start.warning)
        self.mode = station.mode
        self.manager: DeviceManager | None = None
        self.presenter: ExamPresenter | LobbyPresenter
        self.sync = SyncOutbox(
            self.link,
            self.outbox,
            site=station.site,
            station_id=station.station_id,
            records=site_records(settings, self._profiles),
        )
        self.biomed: BiomedPresenter | None = None
        biomed_pin = credentials.biomed_matcher()
        if biomed_pin is not None:
            biomed = Biomed(
                clock=clock,
                pin=biomed_pin,
                settings=settings.model_copy(update={"devices": list(self.bindings)}),
                lockout=self.lockout,
            )
            self.biomed = BiomedPresenter(
                biomed, StationBiomed(self), language=settings.display.language
            )
        self.presenter = self._make_presenter(credentials, speaker)
        self._remembered_text = ""
        self._presence: dict[str, Presence] = {}
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self._ble = BleThread()
        # The pairing agent's passkey questions, answered on the biomed screen.
        self.passkeys = PasskeyRequests(on_change=lambda: post(_nothing))
        self.started = False

    def _open_link(self, lookup_timeout_s: float) -> MqttLink:
        """The MQTT link over the outbox, with this station's inbound handlers."""
        settings, station = self.settings, self.settings.station
        handlers = Inbound(
            on_schedule=self._on_schedule,
            on_config=self._on_config,
            check_config=self._check_config,
            on_ack=self._on_ack,
            on_lookup=self._on_lookup,
        )
        try:
            # Refuses plain TCP here (ConfigError) when require_tls and no CA: before anything runs.
            return MqttLink(
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

    def _make_presenter(
        self, credentials: Credentials, speaker: Speaker | None
    ) -> ExamPresenter | LobbyPresenter:
        """This mode's presenter (and, in an exam room, the device manager it reads)."""
        settings, station = self.settings, self.settings.station
        try:
            if self.mode == StationMode.EXAM:
                self.manager = DeviceManager(
                    self.bindings, self._from_devices, self._clock, profiles=self._profiles
                )
                return exam_presenter(
                    settings,
                    credentials,
                    clock=self._clock,
                    reading_mode=self._reading_mode,
                    manager=self.manager,
                    sync=self.sync,
                    lookup=SyncLookup(self.link),
                    biomed=self.biomed,
                    lockout=self.lockout,
                )
            else:
                self.lobby = SyncLobby(self.link, site=station.site, station_id=station.station_id)
                return lobby_presenter(
                    settings,
                    credentials,
                    clock=self._clock,
                    lobby=self.lobby,
                    speaker=speaker,
                    biomed=self.biomed,
                    lockout=self.lockout,
                )
        except ConfigError:
            self.audit.close()
            self.outbox.close()
            raise

    # ---- the audit trail ------------------------------------------------------------------

    def drain_audit(self) -> None:
        """On the UI thread: the workflows' audit events into the store (and the outbox)."""
        events = self.audit_trail.take()
        if not events:
            return
        with self._audit_lock:
            self.audit.append(events)
            for event in events:
                if event.action is not AuditAction.SUBMISSION_SAVED:
                    continue
                # The broker (or the practice) may have answered before `saved` was stored.
                message_id = str(event.related_message_id)
                subject = Subject(event.appointment_id, event.mrn, event.actor)
                for action, detail in self._early.pop(message_id, []):
                    self._say(action, subject, message_id, detail)

    def _audit_now(self, action: AuditAction, appointment_id: str | None = None,
                   mrn: str | None = None, related: UUID | None = None,
                   detail: str = "") -> None:
        """An event the sync layer saw (any thread, `_audit_lock` held): stored at once."""
        self.audit.append([AuditEvent(
            at=self._clock(), actor=STATION, action=action, appointment_id=appointment_id,
            mrn=mrn, related_message_id=related, detail=detail)])

    def _audit_submission(self, action: AuditAction, message_id: str, detail: str = "") -> None:
        """A submission's delivery, resend or ack (MQTT threads). Said once each; a message
        whose `saved` record is not stored yet waits for it (`_early`)."""
        with self._audit_lock:
            subject = self.audit.subject(message_id)
            if subject is None:
                if not self.audit.is_own(message_id):
                    early = self._early.setdefault(message_id, [])
                    early.append((action, detail))
                    while len(self._early) > EARLY_KEPT:  # alerts, check-ins: never saved here
                        self._early.pop(next(iter(self._early)))
                return
            self._say(action, subject, message_id, detail)

    def _say(self, action: AuditAction, subject: Subject, message_id: str, detail: str) -> None:
        """Once per action and submission (`_audit_lock` held). The practice's ack proves the
        broker had it: `sent` comes first even when the PUBACK's commit is still gathering."""
        if action in (AuditAction.SUBMISSION_RECEIVED, AuditAction.SUBMISSION_REJECTED):
            self._say(AuditAction.SUBMISSION_SENT, subject, message_id, "")
        if action is not AuditAction.SUBMISSION_RESENT and self.audit.has(action, message_id):
            return
        self._audit_now(action, subject.appointment_id, subject.mrn, UUID(message_id), detail)

    def _audit_delivery(self, action: AuditAction, message_ids: tuple[str, ...]) -> None:
        """The outbox recorded PUBACKs (`submission_sent`) or a resend, on an MQTT thread."""
        for message_id in message_ids:
            self._audit_submission(action, message_id)

    def _audit_config(self, action: AuditAction, message_id: str | UUID, detail: str) -> None:
        """A pushed config's fate, said once per push (the retained copy comes again)."""
        with self._audit_lock:
            if not self.audit.has(action, message_id):
                self._audit_now(action, related=UUID(str(message_id)), detail=detail[:500])

    def _audit_config_at_start(self, applied: PushedConfig | None, stored_id: str,
                               warning: str) -> None:
        if applied is not None:
            self._audit_config(AuditAction.CONFIG_APPLIED, applied.message_id, "")
        if warning and stored_id:
            self._audit_config(AuditAction.CONFIG_REFUSED, stored_id, warning)

    def _check_config(self, payload: ConfigPayload) -> list[str]:
        problems = self.pushed.check(payload)
        if problems:
            self._audit_config(AuditAction.CONFIG_REFUSED, payload.message_id,
                               "; ".join(problems))
        return problems

    def _on_config(self, payload: ConfigPayload) -> None:
        self.pushed.receive(payload)
        applied = self.pushed.applied
        if applied is None or applied.message_id != str(payload.message_id):
            self._audit_config(AuditAction.CONFIG_PUSHED, payload.message_id,
                               "stored: applies on restart")

    # ---- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        requeued = self.audit.requeue()
        if requeued:
            log.warning("%d audit record(s) queued again after a restart", requeued)
        self.link.start()
        if self.manager is not None:
            try:
                self._start_links(self.manager)
            except BaseException:
                # Refusing to start: no bound device may stay retained "online" from the last run.
                for device in self.bindings:
                    self.link.device_presence(device.id, Presence.OFFLINE, device.profile)
                self.manager.stop_links()
                self.link.stop()
                raise
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
        self._ble.stop()
        for device in self.bindings:
            if self._presence.get(device.id) is Presence.ONLINE:
                self.link.device_presence(device.id, Presence.OFFLINE, device.profile)
        self.drain_audit()
        self.link.stop()
        self.audit.close()
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
        self._ble.stop()
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
            self._ble.start(
                manager.ble_link(self._profiles, clock=self._clock, mode=self._reading_mode),
                agent=self._register_agent,
            )

    async def _register_agent(self) -> AgentRegistration:
        """The station's own BlueZ agent: only bound addresses may pair (read at each
        request, so a device bound later pairs too); a passkey is asked on the biomed screen."""
        return await AgentRegistration.register(lambda: self.bindings, prompt=self.passkeys.ask)

    def _housekeeping(self) -> None:
        next_health = 0.0
        while not self._stop.wait(DEVICE_TICK_S):
            try:
                if self.manager is not None:
                    self.manager.tick()
                now = time.monotonic()
                if now >= next_health:
                    next_health = now + self._health_every_s
                    write_health_snapshot(self.health_path, self.health.snapshot())
            except Exception:
                log.exception("station housekeeping failed; retrying")

    # ---- the UI thread ------------------------------------------------------------------

    def after_ui_change(self) -> None:
        """On the UI thread after every intent: what the MA typed becomes patient data for
        the log filter; the workflows' audit events go to the store."""
        self.drain_audit()
        if not isinstance(self.presenter, ExamPresenter):
            return
        patient = self.presenter.rooming.patient
        if patient is not None and patient.identification is Identification.MANUAL:
            # Typed by the MA, on no schedule the filter has seen: taught now, kept until
            # the next one (with the previous, as a schedule's are).
            self.redactor.replace("manual_patient", [
                (Redacted.NAME, [patient.family_name, patient.given_name,
                                 f"{patient.family_name}, {patient.given_name}"]),
                (Redacted.DOB, [patient.birth_date]),
                (Redacted.MRN, [patient.mrn] if patient.mrn else []),
            ], keep_previous=True)  # fmt: skip
        text = self.presenter.rooming.complaint.free_text
        if text and text != self._remembered_text:
            # The text as it stands replaces what it was a keystroke ago: its prefixes ("k",
            # "kn", ...) are not patient values worth keeping, and would blank every "k".
            self.redactor.replace("typed", [(Redacted.TEXT, [text])])
            self._remembered_text = text

    def _apply(self, update: LinkUpdate | LiveValue) -> None:
        """On the UI thread: a device event into the exam presenter, the one path into the
        rooming (whose guard judges it), or a streaming device's live value onto its tile."""
        assert isinstance(self.presenter, ExamPresenter)
        if isinstance(update, LiveValue):
            self.presenter.device_live(
                update.device_id, update.reading, update.state is CaptureState.SETTLING
            )
        elif not isinstance(update, Captured) or not self._biomed_testing(update.device_id):
            # A biomed test measurement is shown in the test view only: no one's vitals.
            rooming = self.presenter.rooming
            tray_before = {item.item_id for item in rooming.tray}
            held_before = rooming.guard.held(update.device_id)
            deliver(self.presenter, update)
            if rooming.guard.held(update.device_id) > held_before:
                log.info("reading from %s held: it came in the connect-burst window (stored "
                         "readings a device sends at connect are judged together)",
                         update.device_id)
            for item in rooming.tray:
                if item.item_id not in tray_before:  # reasons are a closed vocabulary: no PHI
                    log.info(
                        "reading from %s went to the tray: %s",
                        item.device,
                        ", ".join(r.value for r in item.reasons),
                    )

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
        presence = Presence.ONLINE if status.state in ONLINE_STATES else Presence.OFFLINE
        if self._presence.get(status.device_id) != presence:
            self._presence[status.device_id] = presence
            self.link.device_presence(status.device_id, presence, status.profile)

    def _on_schedule(self, payload: SchedulePayload) -> None:
        remember_schedule(self.redactor, payload)  # before anything could log a name
        today = self._clock().astimezone(ZoneInfo(self.settings.records.timezone)).date()
        if payload.schedule_date != today:
            # A retained list from another day (the practice system has not published today's
            # yet): yesterday's patients must not be offered for today's rooms.
            self.schedule_warning = (
                f"the practice system's schedule is for {payload.schedule_date.isoformat()}, "
                f"not today ({today.isoformat()}): not shown; waiting for today's"
            )
            log.warning("schedule %s refused: %s", payload.message_id, self.schedule_warning)
            payload = payload.model_copy(update={"appointments": ()})
        else:
            self.schedule_warning = ""
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
        # Recorded by the outbox (the redraw reads it from there); audited here.
        received = payload.status is AckStatus.RECEIVED
        action = AuditAction.SUBMISSION_RECEIVED if received else AuditAction.SUBMISSION_REJECTED
        self._audit_submission(action, str(payload.message_id), payload.reason[:500])
        self._post(_nothing)  # redraw: "received by the practice system"

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
