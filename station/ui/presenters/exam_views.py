"""What the exam screens show, built from the rooming: the banner, the patient list, the
tiles, the tray, the review. Read-only; the intents are ExamPresenter's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from station.config import DisplaySection
from station.locale import N_, Translate, no_translation
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

ONSET_WORDS = {
    "today": N_("today"),
    "days": N_("days"),
    "weeks": N_("weeks"),
    "months": N_("months"),
    "chronic": N_("long\u2011standing"),  # a non-breaking hyphen: never "long-standi ng"
    "unknown": N_("not sure"),
}

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


def offline_saved(waiting: int, _: Translate = no_translation) -> str:
    """What Send says with no link to the practice system: where the rooming is, that it goes
    by itself, and how many wait (a bare "Saved — waiting" looked stuck for ever)."""
    return _(
        "Saved on this station — will send when the practice system is reachable "
        "({waiting} waiting)"
    ).format(waiting=waiting)


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

    if TYPE_CHECKING:  # ExamPresenter's (from _Base): into the station's language

        def _(self, text: str) -> str: ...

        def said(self, text: str) -> str: ...

    def kind_name(self, kind: Kind) -> str:
        """A kind of reading as the MA reads it ("Blood pressure"), translated."""
        return self._(vital_kind(kind).title)

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
                notes=tuple(self.said(note) for note in p.identity_notes),
                mrn=_collision_mrn(p),
            )
            for p in self.rooming.schedule
        )

    def parked_text(self) -> str:
        parked = self.rooming.parked
        if parked is None:
            return ""
        return self._("Unsent rooming of {name} is open: pick them to finish it").format(
            name=parked.display_name
        )

    def confirm_lines(self) -> tuple[str, str, str]:
        patient = self.rooming.patient
        if patient is None:
            return "", "", ""
        age = int(patient.age_years(self.rooming.now().date()))
        return (
            patient.display_name,
            self._("Born {date}").format(date=fmt_dob(patient.birth_date)),
            self._("age {years}").format(years=age),
        )

    def identity_warning(self) -> str:
        """Under the two identifiers: what was hidden or mixed in the name, and the MRN when
        another patient on the list has the same name (#20: look-alike names)."""
        patient = self.rooming.patient
        if patient is None:
            return ""
        # A patient entered by hand says so first, with the MRN or that it is not known.
        lines = [self.confirm_note()] if self.confirm_note() else []
        mrn = _collision_mrn(patient)
        lines += [self._("MRN {mrn}").format(mrn=mrn)] if mrn else []
        lines += [
            self._("Check: {notes}").format(notes=self.said(note))
            for note in patient.identity_notes
        ]
        return "\n".join(lines)

    def confirm_note(self) -> str:
        """ "" for a scheduled patient; for one entered by hand, that it was and the MRN."""
        patient = self.rooming.patient
        if patient is None or patient.identification is not Identification.MANUAL:
            return ""
        return confirm_note(patient.mrn, self._)

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
                how = self._("computed") if bmi is not None else self._("needs weight and height")
                tiles.append(
                    Tile(
                        "bmi",
                        self._("BMI"),
                        "—" if bmi is None else fmt_number(bmi, 1),
                        "kg/m²",
                        how,
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
                source = entry_source(scale, self._)
                title = self._(TILE_TITLES[key])
                tiles.append(Tile(key, title, value, unit, source, (), "ok", True, 1))
                continue
            measuring = [(d, r) for d, r in sorted(self.live.items()) if r.kind == kind]
            if measuring:
                device_id, reading = measuring[-1]
                value, unit = value_text(reading, self.display)
                tiles.append(
                    Tile(
                        key,
                        self._(TILE_TITLES[key]),
                        value,
                        unit,
                        self._("{device} · measuring…").format(device=device_id),
                        (),
                        "info",
                        True,
                        count,
                    )
                )
                continue
            if entry is None:
                unit = empty_unit(kind, self.display)
                title = self._(TILE_TITLES[key])
                tiles.append(Tile(key, title, "—", unit, "", (), "empty", True, 0))
                continue
            value, unit = value_text(entry.reading, self.display)
            tiles.append(
                Tile(
                    key,
                    self._(TILE_TITLES[key]),
                    value,
                    unit,
                    entry_source(entry, self._),
                    entry_notes(entry, self.display, self.said),
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
            return Tile(
                "pulse", self._("Pulse"), "—", "/min", self._("with BP or SpO2"), (), "empty",
                False, 0,
            )
        entry = with_pulse[-1]
        pulse = getattr(entry.reading, "pulse_rate_bpm", None)
        notes = tuple(self.said(f.message) for f in entry.verdict.flags if "pulse" in f.code)
        return Tile(
            "pulse",
            self._("Pulse"),
            fmt_optional(pulse, 0),
            "/min",
            entry_source(entry, self._),
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
            name = self.kind_name(item.reading.kind)
            title = f"{name} {value} {unit} · {item.device}"
            if item.reading.measured_at is not None:
                at = fmt_measured(item.reading.measured_at, item.received_at)
                title += " · " + self._("measured {time}").format(time=at)
            cards.append(TrayCard(item.item_id, title, self.said(item.reason)))
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
                    self.kind_name(entry.kind),
                    f"{value} {unit}".strip(),
                    entry_source(entry, self._),
                    entry_notes(entry, self.display, self.said),
                    entry_severity(entry),
                    entry.verdict.accepted and entry.verdict.critical and not entry.acknowledged,
                    entry.acknowledged,
                )
            )
        return tuple(sorted(rows, key=lambda r: _REVIEW_ORDER.get(r.severity, 9)))

    def review_summary(self) -> tuple[str, ...]:
        _shown, c, _medications = self._shown_record()
        _ = self._
        lines = []
        done = self.sent.get(self.sent_id) if self.sent_id is not None else None
        if done is not None and self.rooming.state is RoomingState.SENT:
            lines.append(_("Sent for {patient}").format(patient=done.patient))
        if c.reason_for_visit:
            lines.append(_("Reason for visit: {reason}").format(reason=c.reason_for_visit))
        complaint = "; ".join((*(_(p) for p in c.picks), *filter(None, [c.free_text])))
        lines.append(_("Chief complaint: {complaint}").format(complaint=complaint or "—"))
        if c.onset != Onset.UNKNOWN:
            onset = _(ONSET_WORDS.get(c.onset.value, c.onset.value))
            lines.append(_("Onset: {onset}").format(onset=onset))
        lines.extend(self.list_summary())
        record = self.rooming.last_record
        sent = self.rooming.state is RoomingState.SENT and record is not None
        bmi = record.bmi_kg_m2 if sent and record is not None else self.rooming.bmi_kg_m2()
        if bmi is not None:
            lines.append(_("BMI {bmi} kg/m² (computed)").format(bmi=f"{bmi:.1f}"))
        return tuple(lines)

    def send_blockers(self) -> tuple[str, ...]:
        return tuple(self.said(self.blocker_words(r, m)) for r, m in self.rooming.send_refusals())

    def send_status(self) -> str:
        if self.sent_id is None:
            return ""
        return self._status_of(self.sent_id)

    def _status_of(self, message_id: UUID) -> str:
        state = self.outbox.send_state(message_id)
        if state == SendState.REJECTED:
            reason = self.outbox.rejection(message_id) or self._("no reason given")
            return self._("not filed: {reason}").format(reason=reason)
        if state == SendState.RECEIVED:
            return self._("Received by the practice system")
        if not self.outbox.online():
            return offline_saved(self.outbox.queued(), self._)
        return self._("Saved — waiting for the practice system")

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
