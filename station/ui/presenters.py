"""Presenters: turn workflow state into plain view models and screen taps into intents.

No Kivy here (a test holds this module to that): screens call these methods and render the
frozen view models they return. Every refusal from a workflow becomes `message` text for the
screen's banner; nothing raises into a Kivy callback.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID

from station.biomed import Biomed, BiomedState, DeviceRow
from station.checkin import Checkin, CheckinState, ContactChange, TickResult
from station.config import DisplaySection
from station.manual_entry import MANUAL_FIELDS, display_value
from station.models import AnyReading, Kind
from station.rooming import Rooming
from station.rooming_data import (
    COMMON_COMPLAINTS,
    MedicationStatus,
    Onset,
    RoomingEvent,
    RoomingState,
    VitalEntry,
)
from station.rooming_record import record_to_submission
from station.ui.ports import (
    AlertSink,
    BiomedPort,
    LobbySink,
    LookupAnswer,
    LookupOutcome,
    PatientLookup,
    SendState,
    Speaker,
    VitalsOutbox,
)
from station.validation import Severity
from station.vitals import shown_for_age, vital_field, vital_kind
from station.vitals import tiles as vital_tiles
from station.workflow import IllegalTransitionError, RefusedError

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def _try(presenter: _Base, action: Callable[[], object]) -> bool:
    """Run an intent; a refusal or illegal step becomes the banner text, never an exception."""
    try:
        action()
    except RefusedError as exc:
        presenter.message = exc.message + "".join(f" — {d}" for d in exc.details)
        return False
    except IllegalTransitionError as exc:
        presenter.message = str(exc)
        return False
    presenter.message = ""
    return True


class _Base:
    message: str = ""


# ------------------------------------------------------------------------------------------
# MA rooming
# ------------------------------------------------------------------------------------------

SCREEN_OF: dict[RoomingState, str] = {
    RoomingState.SIGNED_OUT: "signin",
    RoomingState.SIGNED_IN: "patients",
    RoomingState.PATIENT_PICKED: "confirm",
    RoomingState.VITALS: "vitals",
    RoomingState.COMPLAINT: "complaint",
    RoomingState.REVIEW: "review",
    RoomingState.SENT: "review",
}


@dataclass(frozen=True)
class PatientRow:
    appointment_id: str
    time: str
    name: str
    birth_date: str


@dataclass(frozen=True)
class Tile:
    key: str
    title: str
    value: str  # "124/80", "—" when empty
    unit: str
    source: str  # "cuff · 09:02", "typed · 09:03", ""
    notes: tuple[str, ...]  # flags and reasons in plain words
    severity: str  # "empty", "ok", "info", "warning", "critical", "rejected"
    editable: bool
    count: int  # readings of this kind taken (a retake keeps both)


@dataclass(frozen=True)
class TrayCard:
    item_id: int
    text: str
    reason: str


@dataclass(frozen=True)
class KeypadView:
    title: str
    labels: tuple[str, ...]
    values: tuple[str, ...]
    active: int


@dataclass(frozen=True)
class ReviewRow:
    entry_id: int
    title: str
    value: str
    source: str
    notes: tuple[str, ...]
    severity: str
    needs_ack: bool
    acknowledged: bool


@dataclass(frozen=True)
class ExamBanner:
    online: bool
    queued: int
    ma: str
    patient: str  # "ZZTEST, Alpha · 05/17/1970" once confirmed, else ""
    message: str


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def _dob(moment: datetime | object) -> str:
    return moment.strftime("%m/%d/%Y") if hasattr(moment, "strftime") else str(moment)


def _tile_layout() -> dict[str, Kind | None]:
    """The vitals screen's tiles in order: one per kind with a tile in the table of vitals,
    plus the computed ones (pulse after BP, BMI after height; None: no kind of its own)."""
    layout: dict[str, Kind | None] = {}
    for row in vital_tiles():
        assert row.tile is not None
        layout[row.tile] = row.kind
        if row.kind is Kind.BLOOD_PRESSURE:
            layout["pulse"] = None
        elif row.kind is Kind.BODY_HEIGHT:
            layout["bmi"] = None
    return layout


TILE_KIND: dict[str, Kind | None] = _tile_layout()
TILE_TITLES: dict[str, str] = {
    "pulse": "Pulse",
    "bmi": "BMI",
    **{row.tile: row.title for row in vital_tiles() if row.tile is not None},
}


def _field_title(name: str, kind: Kind) -> str:
    label = vital_field(name).label
    title = label[:1].upper() + label[1:]
    return f"{title} (optional)" if name in vital_kind(kind).optional_typed else title


def _value_text(reading: AnyReading, display: DisplaySection) -> tuple[str, str]:
    """Screens round; the model never does. BP shows as SYS/DIA; every other kind its first
    required field, in the display unit, with the table's decimals."""
    row = vital_kind(reading.kind)
    if reading.kind is Kind.BLOOD_PRESSURE:
        sys_ = getattr(reading, "systolic_mmhg", None)
        dia = getattr(reading, "diastolic_mmhg", None)
        return f"{_num(sys_, 0)}/{_num(dia, 0)}", vital_field("systolic_mmhg").symbol
    name = row.required[0]
    return _shown(name, getattr(reading, name, None), display, vital_field(name).decimals)


def _num(value: float | None, decimals: int) -> str:
    return "—" if value is None else _fmt(value, decimals)


def _shown(name: str, value: float | None, display: DisplaySection, dp: int) -> tuple[str, str]:
    if value is None:
        return "—", display_value(name, 0.0, display)[1]
    shown, unit = display_value(name, value, display)
    return _fmt(shown, dp), unit


def _severity(entry: VitalEntry) -> str:
    if not entry.verdict.accepted:
        return "rejected"
    severities = [f.severity for f in entry.verdict.flags]
    for level in (Severity.CRITICAL, Severity.WARNING, Severity.INFO):
        if level in severities:
            return level.value
    return "ok"


def _notes(entry: VitalEntry) -> tuple[str, ...]:
    notes = tuple(f.message for f in entry.verdict.flags)
    if not entry.verdict.accepted:
        notes = ("not accepted: " + "; ".join(entry.verdict.reasons), *notes)
    if entry.acknowledged:
        notes = (*notes, "acknowledged — clinician alerted")
    return notes


def _source(entry: VitalEntry) -> str:
    how = {"device": entry.device, "manual": "typed", "tray": f"{entry.device} (from tray)"}
    return f"{how[entry.source.value]} · {_hhmm(entry.received_at)}"


class ExamPresenter(_Base):
    """MA rooming on the exam-room station."""

    def __init__(
        self,
        rooming: Rooming,
        outbox: VitalsOutbox,
        events: AlertSink,
        *,
        biomed: BiomedPresenter | None = None,
        lookup: PatientLookup | None = None,
    ) -> None:
        self.rooming = rooming
        self.outbox = outbox
        self.events = events
        # Biomed staff reach their screen from sign-in with the biomed PIN; None: no PIN set.
        self.biomed = biomed
        self.lookup = lookup
        self._lookup_id: UUID | None = None  # the barcode lookup the MA is waiting for
        self.message = ""
        self.keypad: KeypadView | None = None
        self._keypad_kind: Kind | None = None
        self._keypad_fields: tuple[str, ...] = ()
        self.sent_id: UUID | None = None
        self.taps = 0  # counted for bench/ui.py's taps-per-rooming figure
        # Streaming devices' latest readings while an episode settles: device id -> reading.
        # Shown on the tile with "measuring…"; never an entry (the captured one is).
        self.live: dict[str, AnyReading] = {}

    @property
    def display(self) -> DisplaySection:
        return self.rooming.display

    @property
    def screen(self) -> str:
        if self.biomed is not None and self.biomed.unlocked:
            return "biomed"
        return SCREEN_OF[self.rooming.state]

    def _tap(self) -> None:
        self.taps += 1

    # -- intents ------------------------------------------------------------------------------

    def sign_in(self, credential: str) -> bool:
        """From the badge reader (it types and presses Enter) or the PIN keypad; the biomed
        PIN opens the biomed screen instead (its wrong tries count toward biomed's lockout)."""
        if _try(self, lambda: self.rooming.sign_in(credential)):
            return True
        refused = self.message
        if self.biomed is not None and self.biomed.unlock(credential.strip()):
            self.message = ""
            return False
        self.message = refused  # never say whether it was nearly a biomed PIN
        return False

    def scan_barcode(self, barcode: str) -> None:
        """A wristband or appointment barcode scanned on the patient list: ask the practice
        system who it is; the answer comes to `lookup_answered`."""
        code = barcode.strip()
        if self.lookup is None or not code:
            return
        if self.rooming.state is not RoomingState.SIGNED_IN:
            self.message = "scan the barcode on the patient list"
            return
        self._lookup_id = self.lookup.request(code)
        self.message = "looking up the scanned barcode…"

    def lookup_answered(self, answer: LookupAnswer) -> None:
        """On the UI thread. Found: that patient is picked for the two-identifier check
        (never confirmed here). Not found / no answer: say so; the list still works."""
        if answer.request_id != self._lookup_id:
            return  # an older scan, or one the MA has moved on from
        self._lookup_id = None
        if self.rooming.state is not RoomingState.SIGNED_IN:
            return
        patient = answer.patient
        if answer.outcome is LookupOutcome.FOUND and patient is not None:
            if all(p.appointment_id != patient.appointment_id for p in self.rooming.schedule):
                self.rooming.set_schedule((*self.rooming.schedule, patient))
            if _try(self, lambda: self.rooming.pick_patient(patient.appointment_id)):
                self.message = "scanned: check name and date of birth with the patient"
        elif answer.outcome is LookupOutcome.NOT_FOUND:
            self.message = "not found — pick from the list or ask the front desk"
        else:
            self.message = (
                "no answer from the practice system — pick from the list or ask the front desk"
            )

    def sign_out(self) -> None:
        self._tap()
        self.keypad = None
        _try(self, self.rooming.sign_out)

    def pick(self, appointment_id: str) -> None:
        self._tap()
        _try(self, lambda: self.rooming.pick_patient(appointment_id))

    def confirm(self) -> None:
        self._tap()
        _try(self, self.rooming.confirm_identifiers)

    def not_this_patient(self) -> None:
        self._tap()
        _try(self, self.rooming.not_this_patient)

    def discard_parked(self) -> None:
        self._tap()
        _try(self, self.rooming.discard_parked)

    def go(self, screen: str) -> None:
        self._tap()
        event = {
            "vitals": RoomingEvent.TO_VITALS,
            "complaint": RoomingEvent.TO_COMPLAINT,
            "review": RoomingEvent.TO_REVIEW,
        }[screen]
        _try(self, lambda: self.rooming.go(event))

    def offer(
        self, device_id: str, reading: AnyReading, received_at: datetime | None = None
    ) -> None:
        """On the UI thread (links hand readings over to it): the rooming's one entry point,
        where the wrong-patient guard judges it. `received_at`: when the link handed it over."""
        self.rooming.offer(device_id, reading, received_at)

    def device_reading(self, reading: AnyReading, device_id: str) -> None:
        """A reading arriving now (the simulated devices of `station ui`, the UI tests)."""
        self.offer(device_id, reading)

    def device_live(self, device_id: str, reading: AnyReading | None, measuring: bool) -> None:
        """On the UI thread: a streaming device's live value (None: the episode ended).

        Only a settling episode's value is shown (`measuring`); once captured, the tile shows
        the captured entry, like any device reading.
        """
        if reading is None or not measuring:
            self.live.pop(device_id, None)
        else:
            self.live[device_id] = reading

    def device_connected(self, device_id: str, at: datetime | None = None) -> None:
        self.rooming.device_connected(device_id, at)

    def accept_tray(self, item_id: int) -> None:
        self._tap()
        _try(self, lambda: self.rooming.accept_tray(item_id))

    def discard_tray(self, item_id: int) -> None:
        self._tap()
        _try(self, lambda: self.rooming.discard_tray(item_id))

    def acknowledge(self, entry_id: int) -> None:
        self._tap()
        if _try(self, lambda: self.rooming.acknowledge_critical(entry_id)):
            for alert in self.rooming.take_alerts():
                self.events.alert(alert)

    def toggle_complaint(self, pick: str) -> None:
        self._tap()
        _try(self, lambda: self.rooming.toggle_complaint(pick))

    def set_free_text(self, text: str) -> None:
        _try(self, lambda: self.rooming.set_complaint(free_text=text))

    def set_onset(self, onset: Onset) -> None:
        self._tap()
        _try(self, lambda: self.rooming.set_complaint(onset=onset))

    def set_medication(self, index: int, status: MedicationStatus) -> None:
        self._tap()
        _try(self, lambda: self.rooming.set_medication_status(index, status))

    def send(self) -> None:
        self._tap()
        patient = self.rooming.patient

        def action() -> None:
            record = self.rooming.send()
            assert patient is not None
            self.sent_id = self.outbox.submit(record_to_submission(record, patient))

        _try(self, action)

    def next_patient(self) -> None:
        self._tap()
        self.sent_id = None
        _try(self, self.rooming.next_patient)

    def tick(self) -> bool:
        """The inactivity timer and the guard's burst windows; True when it signed out."""
        if self.biomed is not None and self.biomed.unlocked:
            self.biomed.tick()
        out = self.rooming.tick()
        if out:
            self.keypad = None
            self.message = "signed out after inactivity"
        return out

    # -- the keypad ---------------------------------------------------------------------------

    def open_keypad(self, tile_key: str) -> None:
        self._tap()
        kind = TILE_KIND.get(tile_key)
        if kind is None or kind not in MANUAL_FIELDS:
            self.message = f"{TILE_TITLES.get(tile_key, tile_key)} is not typed in by hand"
            return
        self._keypad_kind = kind
        self._keypad_fields = MANUAL_FIELDS[kind]
        labels = tuple(
            f"{_field_title(f, kind)} ({display_value(f, 0.0, self.display)[1]})"
            for f in self._keypad_fields
        )
        self.keypad = KeypadView(
            title=f"Type {TILE_TITLES[tile_key].lower()}",
            labels=labels,
            values=("",) * len(labels),
            active=0,
        )

    def keypad_key(self, key: str) -> None:
        pad = self.keypad
        if pad is None:
            return
        self._tap()
        values = list(pad.values)
        current = values[pad.active]
        active = pad.active
        if key == "Del":
            values[active] = current[:-1]
        elif key == "next":
            active = (active + 1) % len(values)
        elif key == "." and "." in current:
            return
        elif len(current) < 6:
            values[active] = current + key
        self.keypad = KeypadView(pad.title, pad.labels, tuple(values), active)

    def keypad_select(self, index: int) -> None:
        if self.keypad is not None:
            self.keypad = KeypadView(
                self.keypad.title, self.keypad.labels, self.keypad.values, index
            )

    def keypad_cancel(self) -> None:
        self._tap()
        self.keypad = None
        self.message = ""

    def keypad_ok(self) -> None:
        self._tap()
        pad, kind = self.keypad, self._keypad_kind
        if pad is None or kind is None:
            return
        shown: dict[str, float] = {}
        for name, text in zip(self._keypad_fields, pad.values, strict=True):
            if not text:
                continue
            try:
                shown[name] = float(text)
            except ValueError:
                self.message = f"{_field_title(name, kind)}: {text!r} is not a number"
                return
        if _try(self, lambda: self.rooming.enter_manual(kind, shown)):
            self.keypad = None

    # -- views --------------------------------------------------------------------------------

    def banner(self) -> ExamBanner:
        patient = self.rooming.patient
        shown = ""
        if patient is not None and self.rooming.state in (
            RoomingState.VITALS,
            RoomingState.COMPLAINT,
            RoomingState.REVIEW,
        ):
            shown = f"{patient.display_name} · {_dob(patient.birth_date)}"
        return ExamBanner(
            online=self.outbox.online(),
            queued=self.outbox.queued(),
            ma=self.rooming.ma_id or "",
            patient=shown,
            message=self.message,
        )

    def patient_rows(self) -> tuple[PatientRow, ...]:
        return tuple(
            PatientRow(p.appointment_id, p.start_time, p.display_name, _dob(p.birth_date))
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
        return patient.display_name, f"Born {_dob(patient.birth_date)}", f"age {age}"

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
                        "—" if bmi is None else _fmt(bmi, 1),
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
                value, unit = _shown("height_cm", scale_height, self.display, 1)
                tiles.append(
                    Tile(key, TILE_TITLES[key], value, unit, _source(scale), (), "ok", True, 1)
                )
                continue
            measuring = [(d, r) for d, r in sorted(self.live.items()) if r.kind == kind]
            if measuring:
                device_id, reading = measuring[-1]
                value, unit = _value_text(reading, self.display)
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
                unit = _value_text_empty(kind, self.display)
                tiles.append(Tile(key, TILE_TITLES[key], "—", unit, "", (), "empty", True, 0))
                continue
            value, unit = _value_text(entry.reading, self.display)
            tiles.append(
                Tile(
                    key,
                    TILE_TITLES[key],
                    value,
                    unit,
                    _source(entry),
                    _notes(entry),
                    _severity(entry),
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
            _num(pulse, 0),
            "/min",
            _source(entry),
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
            value, unit = _value_text(item.reading, self.display)
            name = item.reading.kind.value.replace("_", " ")
            cards.append(
                TrayCard(item.item_id, f"{name} {value} {unit} · {item.device}", item.reason)
            )
        return tuple(cards)

    def complaint_picks(self) -> tuple[tuple[str, bool], ...]:
        chosen = self.rooming.complaint.picks
        return tuple((c, c in chosen) for c in COMMON_COMPLAINTS)

    def review_rows(self) -> tuple[ReviewRow, ...]:
        rows = []
        for entry in self.rooming.entries:
            value, unit = _value_text(entry.reading, self.display)
            rows.append(
                ReviewRow(
                    entry.entry_id,
                    entry.kind.value.replace("_", " "),
                    f"{value} {unit}".strip(),
                    _source(entry),
                    _notes(entry),
                    _severity(entry),
                    entry.verdict.accepted and entry.verdict.critical and not entry.acknowledged,
                    entry.acknowledged,
                )
            )
        return tuple(rows)

    def review_summary(self) -> tuple[str, ...]:
        c = self.rooming.complaint
        lines = []
        if c.reason_for_visit:
            lines.append(f"Reason for visit: {c.reason_for_visit}")
        complaint = "; ".join((*c.picks, *filter(None, [c.free_text])))
        lines.append(f"Chief complaint: {complaint or '—'}")
        if c.onset != Onset.UNKNOWN:
            lines.append(f"Onset: {c.onset.value}")
        for med in self.rooming.medications:
            lines.append(f"{med.medication.name}: {med.status.value.replace('_', ' ')}")
        bmi = self.rooming.bmi_kg_m2()
        if bmi is not None:
            lines.append(f"BMI {bmi:.1f} kg/m² (computed)")
        return tuple(lines)

    def send_blockers(self) -> tuple[str, ...]:
        return tuple(m for _, m in self.rooming.send_refusals())

    def send_status(self) -> str:
        if self.sent_id is None:
            return ""
        if self.outbox.send_state(self.sent_id) == SendState.RECEIVED:
            return "Received by the practice system"
        if not self.outbox.online():
            return "Saved on this station — will send when the network is back"
        return "Saved — waiting for the practice system"


def _value_text_empty(kind: Kind, display: DisplaySection) -> str:
    return display_value(vital_kind(kind).required[0], 0.0, display)[1]


# ------------------------------------------------------------------------------------------
# Lobby self check-in
# ------------------------------------------------------------------------------------------


def translations(language: str) -> gettext.NullTranslations:
    # English is the source language; any other must have its compiled catalog.
    return gettext.translation(
        "station", LOCALE_DIR, languages=[language], fallback=language == "en"
    )


def N_(text: str) -> str:  # noqa: N802 - the gettext marker name xgettext and Babel know
    return text


# Every lobby string, marked for extraction; a test holds the Spanish catalog to this list.
LOBBY_TEXT = (
    N_("Welcome"),
    N_("Check in for your appointment"),
    N_("Check in"),
    N_("Or scan the QR code from your reminder"),
    N_("Ask for help"),
    N_("Larger text"),
    N_("Find your appointment"),
    N_("Last name"),
    N_("Date of birth (MM/DD/YYYY)"),
    N_("Find"),
    N_("Back"),
    N_("Please see the front desk"),
    N_("The front desk will help you check in."),
    N_("Start over"),
    N_("Are these still right?"),
    N_("Phone"),
    N_("E-mail"),
    N_("Yes, these are right"),
    N_("Something changed"),
    N_("New phone"),
    N_("New e-mail"),
    N_("Send the change to the front desk"),
    N_("The front desk will update your details."),
    N_("What is the reason for your visit today?"),
    N_("Done"),
    N_("You are checked in"),
    N_("Please have a seat. We will call you soon."),
    N_("Are you still there?"),
    N_("This screen will clear in {seconds} seconds."),
    N_("I am still here"),
    N_("Help is on the way."),
    N_("Staff PIN"),
    N_("Staff"),
    N_("Kiosk mode is off. Return to check-in when done."),
    N_("Return to check-in"),
    N_("type your last name"),
    N_("date of birth should look like MM/DD/YYYY"),
    N_("that date does not exist: check month and day"),
    N_("phone number should be digits, like 555-010-0199"),
    N_("e-mail should look like name@example.com"),
    N_("type a new phone number or e-mail, or confirm the ones shown"),
    N_("PIN not accepted"),
    N_("none on file"),
)


@dataclass(frozen=True)
class LobbyView:
    screen: str
    language: str
    large_text: bool
    text: dict[str, str] = field(default_factory=dict)
    warning: str = ""  # the idle warning, with its countdown; "" when none
    message: str = ""
    phone: str = ""
    email: str = ""


LOBBY_SCREEN: dict[CheckinState, str] = {
    CheckinState.WELCOME: "lobby_welcome",
    CheckinState.FIND: "lobby_find",
    CheckinState.NOT_FOUND: "lobby_message",
    CheckinState.CONTACT: "lobby_contact",
    CheckinState.REASON: "lobby_reason",
    CheckinState.DONE: "lobby_message",
    CheckinState.STAFF: "lobby_message",
}


class LobbyPresenter(_Base):
    def __init__(
        self,
        checkin: Checkin,
        events: LobbySink,
        speaker: Speaker,
        *,
        biomed: BiomedPresenter | None = None,
    ) -> None:
        self.checkin = checkin
        self.events = events
        self.speaker = speaker
        self.message = ""
        self._catalogs = {lang: translations(lang) for lang in ("en", "es")}
        self.help_sent = False
        # Biomed staff reach their screen with the biomed PIN in the staff PIN field.
        self.biomed = biomed

    def _(self, text: str) -> str:
        return self._catalogs[self.checkin.language].gettext(text)

    @property
    def screen(self) -> str:
        if self.biomed is not None and self.biomed.unlocked:
            return "biomed"
        return LOBBY_SCREEN[self.checkin.state]

    def _run(self, action: Callable[[], object]) -> bool:
        ok = _try(self, action)
        if not ok:
            self.message = self._(
                self.message.split(" — ")[-1] if " — " in self.message else self.message
            )
        return ok

    # -- intents ------------------------------------------------------------------------------

    def touch(self) -> None:
        self.checkin.touch()

    def set_language(self, language: str) -> None:
        self._run(lambda: self.checkin.set_language(language))
        self.speak()

    def toggle_large_text(self) -> None:
        self.checkin.set_large_text(not self.checkin.large_text)

    def ask_for_help(self) -> None:
        self.events.help(self.checkin.ask_for_help())
        self.help_sent = True
        self.speaker.say(self._("Help is on the way."), self.checkin.language)

    def start(self) -> None:
        self.help_sent = False
        self._run(self.checkin.start)
        self.speak()

    def typed(self, family_name: str | None = None, birth_date: str | None = None) -> None:
        # Field text also changes when a screen clears itself on leaving; only typing on the
        # find screen is the patient's input.
        if self.checkin.state == CheckinState.FIND:
            self.checkin.type_draft(family_name=family_name, birth_date=birth_date)

    def find(self) -> None:
        self._run(self.checkin.look_up)
        self.speak()

    def scan_qr(self, code: str) -> None:
        self._run(lambda: self.checkin.scan_qr(code))
        self.speak()

    def contact_ok(self) -> None:
        self._run(self.checkin.confirm_contact)
        self.speak()

    def contact_changed(self, phone: str, email: str) -> None:
        change = ContactChange(phone=phone.strip(), email=email.strip())
        self._run(lambda: self.checkin.confirm_contact(change))
        self.speak()

    def back(self) -> None:
        self._run(self.checkin.back)

    def submit_reason(self, reason: str) -> None:
        def action() -> None:
            self.events.checkin(self.checkin.submit_reason(reason))

        self._run(action)
        self.speak()

    def restart(self) -> None:
        self.help_sent = False
        self._run(self.checkin.restart)

    def staff_exit(self, pin: str) -> None:
        if self._run(lambda: self.checkin.staff_exit(pin)):
            return
        refused = self.message
        if self.biomed is not None and self.biomed.unlock(pin.strip()):
            self.message = ""
            return
        self.message = refused

    def staff_return(self) -> None:
        self._run(self.checkin.staff_return)

    def tick(self) -> TickResult:
        if self.biomed is not None and self.biomed.unlocked:
            self.biomed.tick()
        result = self.checkin.tick()
        if result == TickResult.WIPED:
            self.message = ""
            self.help_sent = False
        elif result == TickResult.WARNING:
            self.speaker.say(self._("Are you still there?"), self.checkin.language)
        return result

    # -- views --------------------------------------------------------------------------------

    def speak(self) -> None:
        """Spoken prompt for the screen now showing: its title and its choices."""
        view = self.view()
        keys = {
            "lobby_welcome": ("title", "subtitle", "start"),
            "lobby_find": ("title", "name", "dob"),
            "lobby_message": ("title", "body"),
            "lobby_contact": ("title", "ok", "change"),
            "lobby_reason": ("title",),
        }[view.screen]
        self.speaker.say(". ".join(view.text[k] for k in keys), view.language)

    def view(self) -> LobbyView:
        _ = self._
        state = self.checkin.state
        common = {
            "help": _("Ask for help"),
            "large": _("Larger text"),
            "back": _("Back"),
            "still_here": _("I am still here"),
            "help_sent": _("Help is on the way.") if self.help_sent else "",
        }
        text: dict[str, str]
        if state == CheckinState.WELCOME:
            text = {
                "title": _("Welcome"),
                "subtitle": _("Check in for your appointment"),
                "start": _("Check in"),
                "qr": _("Or scan the QR code from your reminder"),
                "staff": _("Staff"),
                "pin": _("Staff PIN"),
            }
        elif state == CheckinState.FIND:
            text = {
                "title": _("Find your appointment"),
                "name": _("Last name"),
                "dob": _("Date of birth (MM/DD/YYYY)"),
                "find": _("Find"),
            }
        elif state == CheckinState.NOT_FOUND:
            text = {
                "title": _("Please see the front desk"),
                "body": _("The front desk will help you check in."),
                "action": _("Start over"),
            }
        elif state == CheckinState.CONTACT:
            text = {
                "title": _("Are these still right?"),
                "phone": _("Phone"),
                "email": _("E-mail"),
                "ok": _("Yes, these are right"),
                "change": _("Something changed"),
                "new_phone": _("New phone"),
                "new_email": _("New e-mail"),
                "send_change": _("Send the change to the front desk"),
            }
        elif state == CheckinState.REASON:
            text = {
                "title": _("What is the reason for your visit today?"),
                "done": _("Done"),
            }
        elif state == CheckinState.DONE:
            body = _("Please have a seat. We will call you soon.")
            if self.checkin.contact_change is not None:
                body += " " + _("The front desk will update your details.")
            text = {"title": _("You are checked in"), "body": body, "action": _("Done")}
        else:
            text = {
                "title": _("Staff"),
                "body": _("Kiosk mode is off. Return to check-in when done."),
                "action": _("Return to check-in"),
            }
        warning = ""
        if self.checkin.warning:
            seconds = int(self.checkin.seconds_until_wipe())
            warning = (
                _("Are you still there?")
                + "\n"
                + _("This screen will clear in {seconds} seconds.").format(seconds=seconds)
            )
        phone, email = self.checkin.masked_contact()
        return LobbyView(
            screen=self.screen,
            language=self.checkin.language,
            large_text=self.checkin.large_text,
            text={**common, **text},
            warning=warning,
            message=self.message,
            phone=phone or _("none on file"),
            email=email or _("none on file"),
        )


# ------------------------------------------------------------------------------------------
# Biomed
# ------------------------------------------------------------------------------------------


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

    def __init__(self, biomed: Biomed, port: BiomedPort) -> None:
        self.biomed = biomed
        self.port = port
        self.message = ""
        self.exported: str = ""
        self._tested_at: datetime | None = None  # the last reading recorded in the test view
        self.refresh()

    @property
    def screen(self) -> str:
        return "biomed"

    @property
    def unlocked(self) -> bool:
        return self.biomed.state is not BiomedState.LOCKED

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

    def unlock(self, pin: str) -> bool:
        ok = _try(self, lambda: self.biomed.unlock(pin))
        if ok:
            self.refresh()
        return ok

    def tick(self) -> bool:
        """The idle lock; True when it locked the screen."""
        locked = self.biomed.tick()
        if locked:
            self.message = "locked after inactivity"
        else:
            self.refresh()
        return locked

    def lock(self) -> None:
        _try(self, self.biomed.lock)

    def bind(self, device_id: str) -> None:
        def action() -> None:
            bound = self.biomed.bind(device_id)  # refuses unknown / already bound / locked
            self.port.bind(next(d for d in bound if d.id == device_id))

        self._store(action, f"{device_id} bound to this station")

    def unbind(self, device_id: str) -> None:
        def action() -> None:
            self.biomed.unbind(device_id)
            self.port.unbind(device_id)

        self._store(action, f"{device_id} unbound")

    def _store(self, action: Callable[[], None], done: str) -> None:
        try:
            if _try(self, action):
                self.message = done
        except (ValueError, LookupError, OSError) as exc:
            self.message = f"not changed: {exc}"
        self.refresh()  # what the store holds now, whatever happened

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
        if not _try(self, lambda: self.biomed.require_unlocked("export diagnostics")):
            return ""
        try:
            self.exported = self.port.export_diagnostics()
        except OSError as exc:
            self.message = f"diagnostics bundle not written: {exc.strerror or exc}"
            return ""
        self.message = f"diagnostics bundle written (no patient data): {self.exported}"
        return self.exported

    def device_lines(self) -> tuple[DeviceLine, ...]:
        return tuple(_device_line(r) for r in self.biomed.devices)

    def settings_lines(self) -> tuple[str, ...]:
        from station.biomed import settings_view

        view = settings_view(self.biomed.settings)
        depth = self.port.outbox_depth()
        outbox = f"Outbox: {depth.pending} waiting to send"
        if depth.oldest_pending_age_s is not None:
            outbox += f", oldest {depth.oldest_pending_age_s:.0f} s"
        lines = [
            f"Site: {view.site}",
            f"Station: {view.station_id} ({view.mode}) {view.room}".rstrip(),
            f"Broker: {view.broker}",
            f"TLS: {view.tls}",
            outbox,
        ]
        notice = self.port.config_notice()
        if notice:
            lines.append(notice)
        return tuple(lines)

    def test_lines(self) -> tuple[str, ...]:
        lines = []
        for result in self.biomed.test_results:
            lines.append(f"{_hhmm(result.received_at)} decoded: {result.reading.model_dump_json()}")
            lines.append(f"raw: {result.raw_hex or '(none)'} · verdict: {result.verdict.status}")
        return tuple(lines)


def _device_line(row: DeviceRow) -> DeviceLine:
    parts = [row.profile, row.transport, "in range" if row.present else "not seen"]
    if row.battery_percent is not None:
        parts.append(f"battery {row.battery_percent} %")
    if row.firmware:
        parts.append(f"firmware {row.firmware}")
    if row.last_error:
        parts.append(f"last error: {row.last_error}")
    return DeviceLine(row.device_id, row.device_id, " · ".join(parts), row.bound, row.present)
