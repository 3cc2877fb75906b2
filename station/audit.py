"""The audit trail's events as data: who did what to which chart, collected by the workflows.

Pure: the workflows append `AuditEvent` values to the station's one `AuditTrail` as they act
(like `Rooming.take_alerts`); the composition root drains it after every intent and hand-over
and gives the events to the audit store (station.sync.audit_store), which chains, encrypts and
queues them for the `audit` topic. The audit is the one place patient references belong: an
event names the MRN or the appointment id, never a name, a date of birth, a PIN or a badge id.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class AuditAction(StrEnum):
    """Every action the audit records (issue #17's list); the contract publishes this set."""

    # sign-in and the keypads
    MA_SIGN_IN = "ma_sign_in"
    MA_SIGN_OUT = "ma_sign_out"
    MA_AUTO_SIGN_OUT = "ma_auto_sign_out"
    SIGN_IN_FAILED = "sign_in_failed"  # a wrong PIN or badge at any keypad (detail: the role)
    LOCKED_OUT = "locked_out"  # too many wrong tries: the role's keypad waits (detail: how long)
    STAFF_UNLOCK = "staff_unlock"  # the lobby kiosk left with the staff PIN
    LOCKOUT_CLEARED = "lockout_cleared"  # an administrator's `station credentials unlock`
    # the chart
    PATIENT_OPENED = "patient_opened"
    IDENTIFIERS_CONFIRMED = "identifiers_confirmed"
    READING_ATTACHED = "reading_attached"
    READING_TO_TRAY = "reading_to_tray"
    READING_ACCEPTED_FROM_TRAY = "reading_accepted_from_tray"
    READING_DISCARDED = "reading_discarded"
    MANUAL_ENTRY = "manual_entry"
    CRITICAL_ACKNOWLEDGED = "critical_acknowledged"
    # the submission's way to the practice system
    SUBMISSION_SAVED = "submission_saved"
    SUBMISSION_SENT = "submission_sent"  # the broker took it (PUBACK)
    SUBMISSION_RECEIVED = "submission_received"  # the practice system's ack
    SUBMISSION_REJECTED = "submission_rejected"
    SUBMISSION_RESENT = "submission_resent"
    # the lobby
    CHECKIN_COMPLETED = "checkin_completed"
    HELP_REQUESTED = "help_requested"
    # biomed
    BIOMED_UNLOCK = "biomed_unlock"
    DEVICE_BOUND = "device_bound"
    DEVICE_UNBOUND = "device_unbound"
    DEVICE_TEST = "device_test"
    CONFIG_PUSHED = "config_pushed"
    CONFIG_APPLIED = "config_applied"
    CONFIG_REFUSED = "config_refused"
    DIAGNOSTICS_EXPORTED = "diagnostics_exported"
    AUDIT_EXPORTED = "audit_exported"


# Actors that are not an MA id.
PATIENT_LOBBY = "patient (lobby)"
BIOMED = "biomed"
STAFF = "staff"
UNKNOWN = "unknown"  # a wrong PIN or badge: nobody is known, and what was typed is never kept
STATION = "station"  # the station itself: the broker's PUBACK, the practice's ack, a resend


class AuditEvent(BaseModel):
    """One audited action as a workflow saw it; the store adds the sequence and the chain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime
    actor: str
    action: AuditAction
    appointment_id: str | None = None
    mrn: str | None = None
    related_message_id: UUID | None = None  # the vitals/check-in/config message it is about
    detail: str = ""  # e.g. the reading's kind and device, the role of a failed PIN


class AuditTrail:
    """The station's events waiting to be stored, in the order they happened.

    One trail is shared by every workflow of a station (rooming, check-in, biomed, the PIN
    lockout), so their events keep one order; the composition root takes them with `take`.
    """

    def __init__(self) -> None:
        self._events: list[AuditEvent] = []

    def record(
        self,
        at: datetime,
        actor: str,
        action: AuditAction,
        *,
        appointment_id: str | None = None,
        mrn: str | None = None,
        related_message_id: UUID | None = None,
        detail: str = "",
    ) -> AuditEvent:
        event = AuditEvent(
            at=at,
            actor=actor,
            action=action,
            appointment_id=appointment_id,
            mrn=mrn,
            related_message_id=related_message_id,
            detail=detail,
        )
        self._events.append(event)
        return event

    def take(self) -> tuple[AuditEvent, ...]:
        """The events recorded since the last take, each handed out once."""
        events, self._events = tuple(self._events), []
        return events

    def __len__(self) -> int:
        return len(self._events)
