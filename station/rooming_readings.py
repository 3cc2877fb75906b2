"""Readings in the rooming: device offers judged by the guard, manual entry, the tray and
critical values. Every reading of every mode enters through `RoomingReadings.offer`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from station.audit import AuditAction
from station.guard import Attached, Live, Unassigned
from station.locale import N_
from station.manual_entry import MANUAL_CODEC, manual_reading
from station.models import AnyReading, Kind
from station.rooming_base import RoomingBase, _Session
from station.rooming_data import (
    CONFIRMED_STATES,
    AlertRequest,
    EntrySource,
    Refusal,
    TrayItem,
    VitalEntry,
)
from station.units import bmi_kg_m2
from station.validation import ClinicalFlag, DeviceRanges, validate, with_plausibility_flag
from station.workflow import (
    RefusedError,
)


class RoomingReadings(RoomingBase):
    """Device readings, typed values, the tray and critical-value acknowledgement."""

    # -- readings ---------------------------------------------------------------------------

    def set_bound_devices(
        self, device_ids: Iterable[str], ranges: Mapping[str, DeviceRanges] | None = None
    ) -> None:
        """The devices biomed bound to this station (readings from any other are ignored) and
        their profiles' measuring ranges (a value outside them is not a measurement)."""
        self.guard.set_bound(device_ids)
        self._device_ranges = dict(ranges or {})

    def device_connected(self, device_id: str, at: datetime | None = None) -> None:
        """A device that dumps stored readings (re)connected: its burst window opens."""
        self.guard.device_connected(device_id, at)

    def device_clock_set(self, device_id: str, at: datetime | None = None) -> None:
        """The station wrote the device's clock on this connection: the guard trusts its times
        within a small tolerance until it disconnects."""
        del at  # the guard needs only that it happened on this connection
        self.guard.device_clock_set(device_id)

    def device_disconnected(self, device_id: str, at: datetime | None = None) -> None:
        """The device went away (asleep, out of range, failed): its clock is unknown again and
        a cuff's live pressure gauge stops (a cuff that drops mid-inflation sends no result)."""
        del at
        self.guard.device_disconnected(device_id)
        if self._live_cuff_device in (None, device_id):
            self.live_cuff_mmhg = None
            self._live_cuff_device = None

    def offer(
        self, device_id: str, reading: AnyReading, received_at: datetime | None = None
    ) -> list[VitalEntry | TrayItem]:
        """A reading from a device link, judged by the guard. Not an MA action: no activity
        stamp. `received_at` is when the link handed it over (default: now).

        What the guard doubts (stored, older than the session, arrived before it, burst at
        connect, no patient confirmed...) goes to the tray with its reasons; live cuff pressure
        only moves the gauge; an unbound device's reading never enters. Returns what was placed
        (a held burst reading is placed later, by `tick`).
        """
        return self._place(self.guard.offer(device_id, reading, received_at))

    def _place(self, outcomes: Iterable[object]) -> list[VitalEntry | TrayItem]:
        placed: list[VitalEntry | TrayItem] = []
        for outcome in outcomes:
            if isinstance(outcome, Live):
                self.live_cuff_mmhg = getattr(outcome.reading, "cuff_pressure_mmhg", None)
                self._live_cuff_device = outcome.device_id
            elif isinstance(outcome, Attached):
                if outcome.reading.kind == Kind.BLOOD_PRESSURE:
                    self.live_cuff_mmhg = None
                assert self._session is not None and self.state in CONFIRMED_STATES
                entry = self._attach(
                    self._session,
                    reading=outcome.reading,
                    device=outcome.device_id,
                    source=EntrySource.DEVICE,
                    now=outcome.received_at,
                )
                placed.append(entry)
                self._audit(AuditAction.READING_ATTACHED, detail=_what(entry))
            elif isinstance(outcome, Unassigned):
                if outcome.reading.kind == Kind.BLOOD_PRESSURE:
                    self.live_cuff_mmhg = None
                item = TrayItem(
                    item_id=next(self._ids),
                    reading=outcome.reading,
                    device=outcome.device_id,
                    reason=outcome.describe(),
                    received_at=outcome.received_at,
                    reasons=outcome.reasons,
                    measured_before_s=outcome.measured_before_s,
                )
                self._tray.append(item)
                placed.append(item)
                # Nobody's yet: held for the MA, so no patient reference.
                self._audit(
                    AuditAction.READING_TO_TRAY,
                    detail=f"{item.reading.kind.value} from {item.device} "
                    f"(tray {item.item_id}: {', '.join(r.value for r in item.reasons)})",
                    with_patient=False,
                )
        return placed

    def _attach(
        self,
        session: _Session,
        *,
        reading: AnyReading,
        device: str,
        source: EntrySource,
        now: datetime,
        tray_reason: str = "",
    ) -> VitalEntry:
        checked = with_plausibility_flag(reading)
        ranges = None if source is EntrySource.MANUAL else self._device_ranges.get(device)
        entry = VitalEntry(
            entry_id=next(self._ids),
            reading=checked,
            verdict=validate(checked, age_years=self._age(session), device_ranges=ranges),
            source=source,
            device=device,
            received_at=now,
            tray_reason=tray_reason,
        )
        session.entries.append(entry)  # a retake adds; the earlier reading stays
        return entry

    def enter_manual(self, kind: Kind, shown: Mapping[str, float]) -> VitalEntry:
        """Values typed on the keypad in display units; validated exactly like a device's."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot enter a value"))
        now = self._touch()
        reading = with_plausibility_flag(manual_reading(kind, shown, self.display, self.mode))
        verdict = validate(reading, age_years=self._age(session))
        if not verdict.accepted:
            # A typo is not a measurement: nothing is attached, the MA types it again.
            raise RefusedError(Refusal.INVALID_ENTRY, f"{kind.value} not accepted", verdict.reasons)
        entry = self._attach(
            session, reading=reading, device=MANUAL_CODEC, source=EntrySource.MANUAL, now=now
        )
        self._audit(AuditAction.MANUAL_ENTRY, detail=_what(entry), at=now)
        return entry

    @property
    def entries(self) -> tuple[VitalEntry, ...]:
        return tuple(self._session.entries) if self._session else ()

    def latest(self, kind: Kind) -> VitalEntry | None:
        """The newest accepted reading of a kind (what its tile shows), else the newest."""
        of_kind = [e for e in self.entries if e.kind == kind]
        accepted = [e for e in of_kind if e.verdict.accepted]
        pool = accepted or of_kind
        return pool[-1] if pool else None

    def bmi_kg_m2(self) -> float | None:
        """From the newest accepted weight and height (the scale's, else the typed one)."""
        weight = self.latest(Kind.BODY_WEIGHT)
        height = self.latest(Kind.BODY_HEIGHT)
        height_cm: float | None = None
        if height is not None and height.verdict.accepted:
            height_cm = getattr(height.reading, "height_cm", None)
        if weight is None or not weight.verdict.accepted:
            return None
        weight_kg = getattr(weight.reading, "weight_kg", None)
        height_cm = height_cm or getattr(weight.reading, "height_cm", None)
        if weight_kg is None or not height_cm:
            return None
        return bmi_kg_m2(weight_kg, height_cm)

    # -- critical values ----------------------------------------------------------------------

    def unacknowledged_critical(self) -> tuple[VitalEntry, ...]:
        return tuple(
            e
            for e in self.entries
            if e.verdict.accepted and e.verdict.critical and not e.acknowledged
        )

    def acknowledge_critical(self, entry_id: int) -> AlertRequest:
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot acknowledge"))
        now = self._touch()
        index = next((i for i, e in enumerate(session.entries) if e.entry_id == entry_id), None)
        if index is None:
            raise RefusedError(Refusal.UNKNOWN_ITEM, f"no reading {entry_id} for this patient")
        entry = session.entries[index]
        critical = [f for f in entry.verdict.flags if f.severity == "critical"]
        if not critical or not entry.verdict.accepted:
            raise RefusedError(Refusal.NOT_CRITICAL, f"reading {entry_id} is not critical")
        session.entries[index] = entry.model_copy(
            update={"acknowledged": True, "acknowledged_at": now}
        )
        return self._raise_alert(critical[0], entry_id, now, _what(entry))

    def _raise_alert(
        self, flag: ClinicalFlag, entry_id: int, now: datetime, what: str
    ) -> AlertRequest:
        """A critical value the MA acknowledged (a reading or a point-of-care result): its
        alert, queued for the composition root, and the audit record saying so."""
        session = self._confirmed_session(Refusal.NO_PATIENT, "cannot acknowledge")
        assert self.ma_id is not None
        alert = AlertRequest(
            appointment_id=session.patient.appointment_id,
            code=flag.code,
            message=flag.message,
            entry_id=entry_id,
            acknowledged_by=self.ma_id,
            acknowledged_at=now,
        )
        self._alerts.append(alert)
        self._audit(AuditAction.CRITICAL_ACKNOWLEDGED, detail=f"{flag.code} on {what}", at=now)
        return alert

    def take_alerts(self) -> tuple[AlertRequest, ...]:
        """Alerts to publish, each handed out once."""
        alerts, self._alerts = tuple(self._alerts), []
        return alerts

    # -- the unassigned tray -----------------------------------------------------------------

    @property
    def tray(self) -> tuple[TrayItem, ...]:
        return tuple(self._tray)

    def _tray_index(self, item_id: int) -> int:
        for i, item in enumerate(self._tray):
            if item.item_id == item_id:
                return i
        raise RefusedError(Refusal.UNKNOWN_ITEM, f"no tray item {item_id}")

    def accept_tray(self, item_id: int) -> VitalEntry:
        """The MA's deliberate choice: this held-back reading is this patient's."""
        index = self._tray_index(item_id)
        session = self._confirmed_session(Refusal.NO_PATIENT, "cannot accept a tray reading")
        now = self._touch()
        item = self._tray.pop(index)
        entry = self._attach(
            session,
            reading=item.reading,
            device=item.device,
            source=EntrySource.TRAY,
            now=now,
            tray_reason=item.reason,
        )
        self._audit(
            AuditAction.READING_ACCEPTED_FROM_TRAY,
            detail=f"{_what(entry)} (tray {item_id})",
            at=now,
        )
        return entry

    def discard_tray(self, item_id: int) -> None:
        index = self._tray_index(item_id)
        now = self._touch()
        item = self._tray.pop(index)
        self._audit(
            AuditAction.READING_DISCARDED,
            detail=f"{item.reading.kind.value} from {item.device} (tray {item_id})",
            at=now,
            with_patient=False,
        )


def _what(entry: VitalEntry) -> str:
    """The audit's words for an entry: kind, device and entry number, never a value."""
    return f"{entry.kind.value} from {entry.device} (entry {entry.entry_id})"
