"""What the screens need from the rest of the station, as Protocols, with in-memory twins.

The composition root plugs in the real outbox/MQTT link and espeak-ng; tests and the demo
without a broker plug in the twins. Nothing here imports Kivy.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import ClassVar, Protocol
from uuid import UUID, uuid5

from station.biomed import DeviceRow
from station.checkin import CheckinRecord, HelpRequest
from station.config import BoundDevice, Settings
from station.diagnostics import DeviceState, OutboxDepth, build_bundle, versions
from station.locale import N_
from station.logs import Redactor
from station.models import AnyReading
from station.questionnaires import StaffAlert
from station.rooming_data import AlertRequest, ScheduledPatient
from station.submission import Submission


class SendState(StrEnum):
    SAVED = "saved"  # durable in the outbox on this station
    RECEIVED = "received"  # the practice system acked it
    REJECTED = "rejected"  # the practice system could not file it (see `rejection`)


class VitalsOutbox(Protocol):
    def submit(self, submission: Submission) -> UUID:
        """Store durably and queue for sending; returns the message id (the ack key)."""
        ...

    def send_state(self, message_id: UUID) -> SendState: ...

    def rejection(self, message_id: UUID) -> str | None:
        """The practice system's reason for a rejected message, else None."""
        ...

    def queued(self) -> int: ...

    def online(self) -> bool: ...


class AlertSink(Protocol):
    """Where the exam station reports an acknowledged critical value."""

    def alert(self, alert: AlertRequest) -> None: ...


class LobbySink(Protocol):
    """Lobby -> practice: the finished check-in, "ask for help" for the front desk, and a
    questionnaire answer staff must act on now (PHQ-9 item 9)."""

    def checkin(self, record: CheckinRecord) -> object: ...  # the real one returns the id

    def help(self, request: HelpRequest) -> None: ...

    def screening_alert(
        self, alert: StaffAlert, *, appointment_id: str, language: str, raised_at: datetime
    ) -> object: ...


class Speaker(Protocol):
    def say(self, text: str, language: str) -> None: ...


class BiomedPort(Protocol):
    """What the biomed screen reads and changes on the running station (device manager,
    bindings.json, outbox, diagnostics bundle, pushed config). Any error it raises carries
    the reason in plain words (ValueError / LookupError / OSError)."""

    def device_rows(self) -> tuple[DeviceRow, ...]:
        """Bound devices with their state, plus devices seen (plugged in / in range)."""
        ...

    def bound(self) -> tuple[BoundDevice, ...]: ...

    def bind(self, device: BoundDevice) -> None: ...

    def unbind(self, device_id: str) -> None: ...

    def last_reading(self, device_id: str) -> tuple[AnyReading, datetime] | None:
        """The device's latest decoded reading and when it came (the device test)."""
        ...

    def outbox_depth(self) -> OutboxDepth: ...

    def passkey_requests(self) -> tuple[tuple[str, str], ...]:
        """(device id, address) of each bound device waiting for its passkey to be typed."""
        ...

    def answer_passkey(self, address: str, passkey: int | None) -> bool:
        """The passkey typed for `address` (None: cancelled); False if none was asked."""
        ...

    def export_diagnostics(self) -> str:
        """Write the diagnostics bundle (no patient data); where it went, in words."""
        ...

    def config_notice(self) -> str:
        """ "" or what a pushed config changed and that it applies on restart."""
        ...

    def scan_bluetooth(self, seconds: float) -> None:
        """Start a Bluetooth LE scan in the background; what it finds joins `device_rows`
        (not bound, in range, with the best-matching profile). Never blocks the caller."""
        ...

    def bluetooth_scan_status(self) -> str:
        """ "" (never scanned), "scanning…", what the last scan found, or why it failed."""
        ...


class LookupOutcome(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class LookupAnswer:
    """The practice system's answer to a scanned barcode, as the exam screen needs it."""

    request_id: UUID
    outcome: LookupOutcome
    patient: ScheduledPatient | None = None


class PatientLookup(Protocol):
    """A scanned wristband or appointment barcode -> a lookup; the answer comes later
    (the composition root hands it to `ExamPresenter.lookup_answered`)."""

    def request(self, barcode: str) -> UUID: ...


_NAMESPACE = UUID("6f1d2a8e-7a57-4d1b-9a53-7b3f0c9e2a10")


class MemoryOutbox:
    """In-memory twin of the outbox + MQTT link: records what would be published."""

    def __init__(self) -> None:
        self.submissions: list[tuple[UUID, Submission]] = []
        self.alerts: list[AlertRequest] = []
        self.checkins: list[CheckinRecord] = []
        self.help_requests: list[HelpRequest] = []
        # (alert, appointment id, language, raised at): what would go on `alert` at once.
        self.screening_alerts: list[tuple[StaffAlert, str, str, datetime]] = []
        self._acked: set[UUID] = set()
        self._rejected: dict[UUID, str] = {}
        self._online = True
        self._lock = threading.Lock()  # acks arrive from the MQTT thread in the real thing

    def submit(self, submission: Submission) -> UUID:
        body = submission.model_dump_json()
        with self._lock:
            # Deterministic for the tests, and new for every submission (a resend is a new one).
            message_id = uuid5(_NAMESPACE, f"{len(self.submissions)}:{body}")
            self.submissions.append((message_id, submission))
        return message_id

    def send_state(self, message_id: UUID) -> SendState:
        with self._lock:
            if message_id in self._rejected:
                return SendState.REJECTED
            return SendState.RECEIVED if message_id in self._acked else SendState.SAVED

    def rejection(self, message_id: UUID) -> str | None:
        with self._lock:
            return self._rejected.get(message_id)

    def reject(self, message_id: UUID, reason: str) -> None:
        """The practice system's `rejected` ack (as the MQTT thread records it)."""
        with self._lock:
            self._rejected[message_id] = reason

    def queued(self) -> int:
        with self._lock:
            if self._online:
                return 0
            return sum(1 for m, _ in self.submissions if m not in self._acked)

    def online(self) -> bool:
        return self._online

    def set_online(self, online: bool) -> None:
        self._online = online

    def ack(self, message_id: UUID) -> None:
        with self._lock:
            self._acked.add(message_id)

    def alert(self, alert: AlertRequest) -> None:
        self.alerts.append(alert)

    def checkin(self, record: CheckinRecord) -> None:
        self.checkins.append(record)

    def help(self, request: HelpRequest) -> None:
        self.help_requests.append(request)

    def screening_alert(
        self, alert: StaffAlert, *, appointment_id: str, language: str, raised_at: datetime
    ) -> None:
        self.screening_alerts.append((alert, appointment_id, language, raised_at))


class MemorySpeaker:
    def __init__(self) -> None:
        self.said: list[tuple[str, str]] = []

    def say(self, text: str, language: str) -> None:
        self.said.append((language, text))


class EspeakSpeaker:
    """Spoken prompts through espeak-ng; a new prompt cuts off the one still speaking."""

    VOICES: ClassVar[dict[str, str]] = {"en": "en-us", "es": "es-419"}

    def __init__(self, binary: str = "espeak-ng", *, wav_path: str | None = None) -> None:
        self._binary = shutil.which(binary)
        self._wav = wav_path  # write speech to this file instead of the speaker (tests, bench)
        self._current: subprocess.Popen[bytes] | None = None

    @property
    def available(self) -> bool:
        return self._binary is not None

    def say(self, text: str, language: str) -> None:
        if self._binary is None:
            return
        if self._current is not None and self._current.poll() is None:
            self._current.terminate()
        # Text goes on stdin, not argv: nothing the patient typed ever reaches a command line.
        command = [self._binary, "-v", self.VOICES.get(language, "en-us"), "--stdin"]
        if self._wav is not None:
            command += ["-w", self._wav]
        self._current = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert self._current.stdin is not None
        self._current.stdin.write(text.encode())
        self._current.stdin.close()

    def wait(self, timeout_s: float = 10.0) -> int | None:
        """Wait for the prompt being spoken to end; its exit status."""
        return None if self._current is None else self._current.wait(timeout_s)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MemoryBiomed:
    """In-memory twin of the running station for the biomed screen (`station ui --mode
    biomed`, tests): rows and readings set by hand; the bundle is built by the same
    `build_bundle` as on a station, into memory."""

    def __init__(
        self,
        settings: Settings,
        rows: tuple[DeviceRow, ...],
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.settings = settings
        self.rows = rows
        self._bound = tuple(settings.devices)
        self.readings: dict[str, tuple[AnyReading, datetime]] = {}
        self.queued = 0
        self.notice = ""
        self.bundle = b""
        self._clock = clock
        self.passkeys_asked: list[tuple[str, str]] = []  # (device id, address)
        self.passkeys_answered: list[tuple[str, int | None]] = []
        self.nearby: tuple[DeviceRow, ...] = ()  # what a Bluetooth scan "finds"
        self.scan_status = ""

    def device_rows(self) -> tuple[DeviceRow, ...]:
        return self.rows

    def bound(self) -> tuple[BoundDevice, ...]:
        return self._bound

    def bind(self, device: BoundDevice) -> None:
        if any(d.id == device.id for d in self._bound):
            raise ValueError(f"id {device.id!r} is already bound; unbind it first")
        self._bound = (*self._bound, device)

    def unbind(self, device_id: str) -> None:
        if not any(d.id == device_id for d in self._bound):
            raise LookupError(f"nothing bound as {device_id!r}")
        self._bound = tuple(d for d in self._bound if d.id != device_id)

    def last_reading(self, device_id: str) -> tuple[AnyReading, datetime] | None:
        return self.readings.get(device_id)

    def outbox_depth(self) -> OutboxDepth:
        return OutboxDepth(pending=self.queued)

    def passkey_requests(self) -> tuple[tuple[str, str], ...]:
        return tuple(self.passkeys_asked)

    def answer_passkey(self, address: str, passkey: int | None) -> bool:
        asked = [r for r in self.passkeys_asked if r[1] == address]
        self.passkeys_asked = [r for r in self.passkeys_asked if r[1] != address]
        if asked:
            self.passkeys_answered.append((address, passkey))
        return bool(asked)

    def export_diagnostics(self) -> str:
        out = io.BytesIO()
        rows = self.rows
        build_bundle(
            out, created_at=self._clock(), versions=versions(), settings=self.settings,
            devices=lambda: [DeviceState(id=r.device_id, profile=r.profile,
                                         transport="ble" if r.address else "serial",
                                         state="in range" if r.present else "not seen",
                                         detail=r.last_error or "") for r in rows],
            outbox=self.outbox_depth, recent_errors=list, redactor=Redactor(),
        )  # fmt: skip
        self.bundle = out.getvalue()
        return "in memory (demo)"

    def config_notice(self) -> str:
        return self.notice

    def scan_bluetooth(self, seconds: float) -> None:
        del seconds  # the twin "finds" its nearby devices at once
        known = {r.device_id for r in self.rows}
        self.rows = (*self.rows, *(r for r in self.nearby if r.device_id not in known))
        self.scan_status = N_("{count} found (demo)").format(count=len(self.nearby))

    def bluetooth_scan_status(self) -> str:
        return self.scan_status
