"""What the exam screens show, built from the rooming: the banner, the patient list, the
tiles, the tray, the review. Read-only; the intents are ExamPresenter's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from station.config import DisplaySection
from station.models import AnyReading, Kind
from station.rooming import SAME_NAME_NOTE, Rooming
from station.rooming_data import (
    COMMON_COMPLAINTS,
    Complaint,
    MedicationReview,
    Onset,
    Refusal,
    RoomingState,
    ScheduledPatient,
    VitalEntry,
)
from station.submission import Identification
from station.ui.ports import SendState, VitalsOutbox
from station.ui.presenters.format import (
    TILE_KIND,
    TILE_TITLES,
    ExamBanner,
    PatientRow,
    ReviewRow,
    Tile,
    TrayCard,
    empty_unit,
    entry_notes,
    entry_severity,
    entry_source,
    fmt_dob,
    fmt_in_display,
    fmt_measured,
    fmt_number,
    fmt_optional,
    value_text,
)
from station.ui.presenters.patient_entry import confirm_note
from station.vitals import shown_for_age, vital_kind

if TYPE_CHECKING:
    from uuid import UUID

    from station.submission import Submission


@dataclass(frozen=True)
class SentRooming:
    message_id: UUID
    submission: Submission
    patient: str  # "ZZTEST, Alpha · 05/17/1970": who it was, for the MA


def _collision_mrn(patient: ScheduledPatient) -> str:
    """The MRN, when another patient on the list has a name that looks the same (a patient
    entered by hand may have none: then nothing more can tell them apart here)."""
    if SAME_NAME_NOTE not in patient.identity_notes:
        return ""
    return patient.mrn or ""


def offline_saved(waiting: int) -> str:
    """What Send says with no link to the practice system: where the rooming is, that it goes
    by itself, and how many wait (a bare "Saved — waiting" looked stuck for ever)."""
    return (
        "Saved on this station — will send when the practice system is reachable "
        f"({waiting} waiting)"
    )


# Review order: what blocks Send first, then what needs a second look.
_REVIEW_ORDER = {"critical": 0, "rejected": 1, "warning": 2, "info": 3, "ok": 4}


class ExamViews:
    """The exam presenter's read side (mixed into ExamPresenter, which owns these)."""

    rooming: Rooming
    outbox: VitalsOutbox
    message: str
    sent_id: UUID | None
    sent: dict[UUID, SentRooming]
    live: dict[str, AnyReading]

    def list_summary(self) -> tuple[str, ...]:
        raise NotImplementedError  # ExamLists: the medications, allergies, results in words

    def blocker_words(self, refusal: Refusal, message: str) -> str:
        raise NotImplementedError  # ExamLists: short words where Review lists the items

    @property
    def display(self) -> DisplaySection:
        return self.rooming.display

    def banner(self) -> ExamBanner:
        patient = self.rooming.patient
        shown = ""
        if patient is not None and self.rooming.state in (
            RoomingState.VITALS,
            RoomingState.COMPLAINT,
            RoomingState.REVIEW,
        ):
            shown = f"{patient.display_name} · {fmt_dob(patient.birth_date)}"
        return ExamBanner(
            online=self.outbox.online(),
            queued=self.outbox.queued(),
            ma=self.rooming.ma_id or "",
            patient=shown,
            message=self.message,
        )

    def patient_rows(self) -> tuple[PatientRow, ...]:
        return tuple(
            PatientRow(
                p.appointment_id,
                p.start_time,
                p.display_name,
                fmt_dob(p.birth_date),
                notes=p.identity_notes,
                mrn=_collision_mrn(p),
            )
            for p in self.rooming.schedule
        )

    def parked_text(self) -> str:
        parked = self.rooming.parked
        if parked is None:
            return ""
        return f"Unsent rooming of {parked.display_name} is open: pick them to finish it"

    def confirm_lines(self) -> tuple[str, str, str]:
        patient = self.rooming.patient
        if patient is None:
            return "", "", ""
        age = int(patient.age_years(self.rooming.now().date()))
        return patient.display_name, f"Born {fmt_dob(patient.birth_date)}", f"age {age}"

    def identity_warning(self) -> str:
        """Under the two identifiers: what was hidden or mixed in the name, and the MRN when
        another patient on the list has the same name (#20: look-alike names)."""
        patient = self.rooming.patient
        if patient is None:
            return ""
        # A patient entered by hand says so first, with the MRN or that it is not known.
        lines = [self.confirm_note()] if self.confirm_note() else []
        mrn = _collision_mrn(patient)
        lines += [f"MRN {mrn}"] if mrn else []
        lines += [f"Check: {note}" for note in patient.identity_notes]
        return "\n".join(lines)

    def confirm_note(self) -> str:
        """ "" for a scheduled patient; for one entered by hand, that it was and the MRN."""
        patient = self.rooming.patient
        if patient is None or patient.identification is not Identification.MANUAL:
            return ""
        return confirm_note(patient.mrn)

    def tiles(self) -> tuple[Tile, ...]:
        tiles = []
        patient = self.rooming.patient
        age = None if patient is None else patient.age_years(self.rooming.now().date())
        for key, kind in TILE_KIND.items():
            if kind is not None and age is not None and not shown_for_age(vital_kind(kind), age):
                continue  # e.g. head circumference: children under 3 only
            if key == "pulse":
                tiles.append(self._pulse_tile())
                continue
            if key == "bmi":
                bmi = self.rooming.bmi_kg_m2()
                tiles.append(
                    Tile(
                        "bmi",
                        "BMI",
                        "—" if bmi is None else fmt_number(bmi, 1),
                        "kg/m²",
                        "computed" if bmi is not None else "needs weight and height",
                        (),
                        "empty" if bmi is None else "ok",
                        False,
                        0,
                    )
                )
                continue
            assert kind is not None
            entry = self.rooming.latest(kind)
            count = sum(1 for e in self.rooming.entries if e.kind == kind)
            scale = self.rooming.latest(Kind.BODY_WEIGHT)
            scale_height = getattr(scale.reading, "height_cm", None) if scale else None
            if key == "height" and entry is None and scale is not None and scale_height:
                # A scale with a height rod measures both; its height fills this tile.
                value, unit = fmt_in_display("height_cm", scale_height, self.display, 1)
                tiles.append(
                    Tile(key, TILE_TITLES[key], value, unit, entry_source(scale), (), "ok", True, 1)
                )
                continue
            measuring = [(d, r) for d, r in sorted(self.live.items()) if r.kind == kind]
            if measuring:
                device_id, reading = measuring[-1]
                value, unit = value_text(reading, self.display)
                tiles.append(
                    Tile(
                        key,
                        TILE_TITLES[key],
                        value,
                        unit,
                        f"{device_id} · measuring…",
                        (),
                        "info",
                        True,
                        count,
                    )
                )
                continue
            if entry is None:
                unit = empty_unit(kind, self.display)
                tiles.append(Tile(key, TILE_TITLES[key], "—", unit, "", (), "empty", True, 0))
                continue
            value, unit = value_text(entry.reading, self.display)
            tiles.append(
                Tile(
                    key,
                    TILE_TITLES[key],
                    value,
                    unit,
                    entry_source(entry),
                    entry_notes(entry, self.display),
                    entry_severity(entry),
                    True,
                    count,
                )
            )
        return tuple(tiles)

    def _pulse_tile(self) -> Tile:
        with_pulse = [
            e
            for e in self.rooming.entries
            if e.verdict.accepted and getattr(e.reading, "pulse_rate_bpm", None) is not None
        ]
        if not with_pulse:
            return Tile("pulse", "Pulse", "—", "/min", "with BP or SpO2", (), "empty", False, 0)
        entry = with_pulse[-1]
        pulse = getattr(entry.reading, "pulse_rate_bpm", None)
        notes = tuple(f.message for f in entry.verdict.flags if "pulse" in f.code)
        return Tile(
            "pulse",
            "Pulse",
            fmt_optional(pulse, 0),
            "/min",
            entry_source(entry),
            notes,
            "critical"
            if any(f.code in {"bradycardia", "tachycardia"} for f in entry.verdict.flags)
            else "ok",
            False,
            len(with_pulse),
        )

    def live_cuff(self) -> float | None:
        return self.rooming.live_cuff_mmhg

    def tray_cards(self) -> tuple[TrayCard, ...]:
        cards = []
        for item in self.rooming.tray:
            value, unit = value_text(item.reading, self.display)
            name = item.reading.kind.value.replace("_", " ")
            title = f"{name} {value} {unit} · {item.device}"
            if item.reading.measured_at is not None:
                title += f" · measured {fmt_measured(item.reading.measured_at, item.received_at)}"
            cards.append(TrayCard(item.item_id, title, item.reason))
        return tuple(cards)

    def complaint_picks(self) -> tuple[tuple[str, bool], ...]:
        chosen = self.rooming.complaint.picks
        return tuple((c, c in chosen) for c in COMMON_COMPLAINTS)

    def _shown_record(
        self,
    ) -> tuple[tuple[VitalEntry, ...], Complaint, tuple[MedicationReview, ...]]:
        """What the review shows: the open rooming, or once sent, the record that was sent."""
        record = self.rooming.last_record
        if self.rooming.state is RoomingState.SENT and record is not None:
            return record.entries, record.complaint, record.medications
        return self.rooming.entries, self.rooming.complaint, self.rooming.medications

    def review_rows(self) -> tuple[ReviewRow, ...]:
        """Critical values first (each beside its acknowledge button), then the rest in the
        order taken: the MA never scrolls to find what blocks Send."""
        entries, _, _ = self._shown_record()
        rows = []
        for entry in entries:
            value, unit = value_text(entry.reading, self.display)
            rows.append(
                ReviewRow(
                    entry.entry_id,
                    entry.kind.value.replace("_", " "),
                    f"{value} {unit}".strip(),
                    entry_source(entry),
                    entry_notes(entry, self.display),
                    entry_severity(entry),
                    entry.verdict.accepted and entry.verdict.critical and not entry.acknowledged,
                    entry.acknowledged,
                )
            )
        return tuple(sorted(rows, key=lambda r: _REVIEW_ORDER.get(r.severity, 9)))

    def review_summary(self) -> tuple[str, ...]:
        _, c, _ = self._shown_record()
        lines = []
        done = self.sent.get(self.sent_id) if self.sent_id is not None else None
        if done is not None and self.rooming.state is RoomingState.SENT:
            lines.append(f"Sent for {done.patient}")
        if c.reason_for_visit:
            lines.append(f"Reason for visit: {c.reason_for_visit}")
        complaint = "; ".join((*c.picks, *filter(None, [c.free_text])))
        lines.append(f"Chief complaint: {complaint or '—'}")
        if c.onset != Onset.UNKNOWN:
            lines.append(f"Onset: {c.onset.value}")
        lines.extend(self.list_summary())
        record = self.rooming.last_record
        sent = self.rooming.state is RoomingState.SENT and record is not None
        bmi = record.bmi_kg_m2 if sent and record is not None else self.rooming.bmi_kg_m2()
        if bmi is not None:
            lines.append(f"BMI {bmi:.1f} kg/m² (computed)")
        return tuple(lines)

    def send_blockers(self) -> tuple[str, ...]:
        return tuple(self.blocker_words(r, m) for r, m in self.rooming.send_refusals())

    def send_status(self) -> str:
        if self.sent_id is None:
            return ""
        return self._status_of(self.sent_id)

    def _status_of(self, message_id: UUID) -> str:
        state = self.outbox.send_state(message_id)
        if state == SendState.REJECTED:
            return f"not filed: {self.outbox.rejection(message_id) or 'no reason given'}"
        if state == SendState.RECEIVED:
            return "Received by the practice system"
        if not self.outbox.online():
            return offline_saved(self.outbox.queued())
        return "Saved — waiting for the practice system"

    def send_rejected(self) -> bool:
        return self.sent_id is not None and (
            self.outbox.send_state(self.sent_id) == SendState.REJECTED
        )

    def rejected_rows(self) -> tuple[tuple[UUID, str], ...]:
        """Roomings sent this sign-in that the practice system did not file: (id, text)."""
        return tuple(
            (m, f"{sent.patient} — {self._status_of(m)}")
            for m, sent in self.sent.items()
            if self.outbox.send_state(m) == SendState.REJECTED
        )
