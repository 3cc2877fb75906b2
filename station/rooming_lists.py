"""The MA's lists at rooming: the medication list update, the allergy review, and the
point-of-care results — a layer of the rooming workflow (station.rooming builds on it).

Every intent needs a confirmed patient; a bad entry is refused with what was expected and
changes nothing. What must be reviewed before Send (every listed medication and allergy,
every critical point-of-care result acknowledged) is said by `list_refusals`.
"""

from __future__ import annotations

from station.locale import N_
from station.poc import PocResultError, judge
from station.rooming_data import (
    MEDICATION_TEXT_MAX_CHARS,
    AlertRequest,
    Allergy,
    AllergyReview,
    AllergySeverity,
    AllergyStatus,
    Medication,
    MedicationReview,
    MedicationStatus,
    PocEntry,
    Refusal,
)
from station.rooming_readings import RoomingReadings
from station.validation import Severity
from station.workflow import RefusedError


def _text(label: str, text: str, *, required: bool = False) -> str:
    cleaned = " ".join(text.split())
    if required and not cleaned:
        raise RefusedError(Refusal.INVALID_ENTRY, N_("type the {label}").format(label=label))
    if len(cleaned) > MEDICATION_TEXT_MAX_CHARS:
        raise RefusedError(
            Refusal.TEXT_TOO_LONG,
            N_("{label} is {count} characters: at most {most}").format(
                label=label, count=len(cleaned), most=MEDICATION_TEXT_MAX_CHARS
            ),
        )
    return cleaned


class RoomingLists(RoomingReadings):
    """Medications, allergies and point-of-care results of the open rooming."""

    # -- medications ------------------------------------------------------------------------

    @property
    def medications(self) -> tuple[MedicationReview, ...]:
        return tuple(self._session.medications) if self._session else ()

    @property
    def no_medications(self) -> bool:
        return self._session.no_medications if self._session else False

    def _medication_index(self, index: int) -> None:
        assert self._session is not None
        if not 0 <= index < len(self._session.medications):
            raise RefusedError(
                Refusal.UNKNOWN_ITEM, N_("no medication {index} on the list").format(index=index)
            )

    def set_medication_status(self, index: int, status: MedicationStatus) -> None:
        """Taking / not taking / unreviewed (CHANGED goes through `change_medication`, which
        says what changed; a status alone keeps any dose typed before)."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot review medications"))
        self._medication_index(index)
        if status != MedicationStatus.NOT_TAKING and session.no_medications:
            raise RefusedError(
                Refusal.CONTRADICTION,
                N_("'takes no medications' is marked: clear it before marking one as taken"),
            )
        self._touch()
        session.medications[index] = session.medications[index].model_copy(
            update={"status": status}
        )

    def change_medication(self, index: int, *, new_dose: str = "", note: str = "") -> None:
        """The patient takes it differently now: the new dose and/or a note, at least one."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot review medications"))
        self._medication_index(index)
        dose, said = _text(N_("new dose"), new_dose), _text(N_("note"), note)
        if not (dose or said):
            raise RefusedError(
                Refusal.INVALID_ENTRY, N_("say what changed: the new dose, a note, or both")
            )
        if session.no_medications:
            raise RefusedError(
                Refusal.CONTRADICTION, N_("'takes no medications' is marked: clear it first")
            )
        self._touch()
        session.medications[index] = session.medications[index].model_copy(
            update={"status": MedicationStatus.CHANGED, "new_dose": dose, "note": said}
        )

    def add_medication(self, name: str, dose: str = "", note: str = "") -> MedicationReview:
        """A medication the patient takes that is not on the list (patient-reported)."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot add a medication"))
        medication = Medication(name=_text(N_("medication name"), name, required=True),
                                dose=_text(N_("dose"), dose))
        said = _text(N_("note"), note)
        if session.no_medications:
            raise RefusedError(
                Refusal.CONTRADICTION, N_("'takes no medications' is marked: clear it first")
            )
        self._touch()
        review = MedicationReview(medication=medication, status=MedicationStatus.TAKING,
                                  note=said, added=True)
        session.medications.append(review)
        return review

    def remove_added_medication(self, index: int) -> None:
        """Undo a medication added today (a typo); the practice's own list is never removed,
        only marked not taking."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot remove a medication"))
        self._medication_index(index)
        if not session.medications[index].added:
            raise RefusedError(
                Refusal.INVALID_ENTRY,
                N_("only a medication added today can be removed; mark this one not taking"),
            )
        self._touch()
        del session.medications[index]

    def set_no_medications(self, on: bool) -> None:
        """"Takes no medications": every listed medication becomes not taking. Refused while
        a medication is marked taken or was added today."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot review medications"))
        if on:
            taken = [m.medication.name for m in session.medications
                     if m.added or m.status in (MedicationStatus.TAKING,
                                                MedicationStatus.CHANGED)]
            if taken:
                raise RefusedError(
                    Refusal.CONTRADICTION,
                    N_("these are marked as taken: mark them not taking first"), tuple(taken)
                )
        self._touch()
        session.no_medications = on
        if on:
            session.medications = [
                m.model_copy(update={"status": MedicationStatus.NOT_TAKING})
                for m in session.medications
            ]

    # -- allergies --------------------------------------------------------------------------

    @property
    def allergies(self) -> tuple[AllergyReview, ...]:
        return tuple(self._session.allergies) if self._session else ()

    @property
    def no_known_allergies(self) -> bool:
        return self._session.no_known_allergies if self._session else False

    def set_allergy_status(self, index: int, status: AllergyStatus) -> None:
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot review allergies"))
        if not 0 <= index < len(session.allergies):
            raise RefusedError(
                Refusal.UNKNOWN_ITEM, N_("no allergy {index} on the list").format(index=index)
            )
        if status == AllergyStatus.CONFIRMED and session.no_known_allergies:
            raise RefusedError(
                Refusal.CONTRADICTION, N_("'no known allergies' is marked: clear it first")
            )
        self._touch()
        session.allergies[index] = session.allergies[index].model_copy(
            update={"status": status}
        )

    def confirm_allergy(self, index: int) -> None:
        self.set_allergy_status(index, AllergyStatus.CONFIRMED)

    def add_allergy(
        self, substance: str, reaction: str = "", severity: AllergySeverity | None = None
    ) -> AllergyReview:
        """An allergy the patient reports that is not on the list (confirmed by the patient)."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot add an allergy"))
        allergy = Allergy(substance=_text(N_("substance"), substance, required=True),
                          reaction=_text(N_("reaction"), reaction), severity=severity)
        if session.no_known_allergies:
            raise RefusedError(
                Refusal.CONTRADICTION, N_("'no known allergies' is marked: clear it first")
            )
        self._touch()
        review = AllergyReview(allergy=allergy, status=AllergyStatus.CONFIRMED, added=True)
        session.allergies.append(review)
        return review

    def remove_added_allergy(self, index: int) -> None:
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot remove an allergy"))
        if not 0 <= index < len(session.allergies):
            raise RefusedError(
                Refusal.UNKNOWN_ITEM, N_("no allergy {index} on the list").format(index=index)
            )
        if not session.allergies[index].added:
            raise RefusedError(
                Refusal.INVALID_ENTRY,
                N_("only an allergy added today can be removed; mark this one 'not allergic'"),
            )
        self._touch()
        del session.allergies[index]

    def set_no_known_allergies(self, on: bool) -> None:
        """"No known allergies": refused while any allergy on the list is not refuted — the
        MA asks about each one first (a listed allergy is never dropped silently)."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot review allergies"))
        if on:
            standing = [a.allergy.substance for a in session.allergies
                        if a.status != AllergyStatus.REFUTED]
            if standing:
                raise RefusedError(
                    Refusal.CONTRADICTION,
                    N_("these allergies are on the list: mark each 'not allergic' first"),
                    tuple(standing),
                )
        self._touch()
        session.no_known_allergies = on

    # -- point-of-care results ----------------------------------------------------------------

    @property
    def poc_results(self) -> tuple[PocEntry, ...]:
        return tuple(self._session.poc) if self._session else ()

    def record_poc(self, test: str, result: str | float, kit_lot: str = "") -> PocEntry:
        """A point-of-care result typed by the MA (station.poc checks it against its table)."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot record a result"))
        try:
            judged = judge(test, result, kit_lot)
        except (PocResultError, LookupError) as exc:
            raise RefusedError(Refusal.INVALID_ENTRY, str(exc)) from None
        now = self._touch()
        entry = PocEntry(entry_id=next(self._ids), result=judged, recorded_at=now)
        session.poc.append(entry)
        return entry

    def remove_poc(self, entry_id: int) -> None:
        """A result typed against the wrong test: removed before Send (never after)."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot remove a result"))
        if not any(e.entry_id == entry_id for e in session.poc):
            raise RefusedError(Refusal.UNKNOWN_ITEM, N_("no result {entry}").format(entry=entry_id))
        self._touch()
        session.poc = [e for e in session.poc if e.entry_id != entry_id]

    def acknowledge_poc(self, entry_id: int) -> AlertRequest:
        """The MA told the clinician about a critical result (e.g. glucose < 54 mg/dL). Like a
        critical vital sign, it also raises an alert to the practice (design.md: alarming
        values raise an alert message), published once by the composition root."""
        session = self._confirmed_session(Refusal.NO_PATIENT, N_("cannot acknowledge"))
        entry = next((e for e in session.poc if e.entry_id == entry_id), None)
        if entry is None:
            raise RefusedError(Refusal.UNKNOWN_ITEM, N_("no result {entry}").format(entry=entry_id))
        critical = [f for f in entry.result.flags if f.severity == Severity.CRITICAL]
        if not critical:
            raise RefusedError(Refusal.NOT_CRITICAL, N_("this result is not critical"))
        now = self._touch()
        session.poc = [
            e.model_copy(update={"acknowledged": True, "acknowledged_at": now})
            if e.entry_id == entry_id else e
            for e in session.poc
        ]
        return self._raise_alert(critical[0], entry_id, now, f"point-of-care {entry.result.test}")

    # -- what Send needs ------------------------------------------------------------------------

    def list_refusals(self) -> tuple[tuple[Refusal, str], ...]:
        """Unreviewed listed medications / allergies and unacknowledged critical results."""
        if self._session is None:
            return ()
        out: list[tuple[Refusal, str]] = []
        meds = [m.medication.name for m in self._session.medications
                if m.status == MedicationStatus.UNREVIEWED]
        if meds:
            out.append((Refusal.MEDICATIONS_NOT_REVIEWED,
                        N_("review each medication") + ": " + ", ".join(meds)))
        allergies = [a.allergy.substance for a in self._session.allergies
                     if a.status == AllergyStatus.UNREVIEWED]
        if allergies:
            out.append((Refusal.ALLERGIES_NOT_REVIEWED,
                        N_("review each allergy") + ": " + ", ".join(allergies)))
        if any(e.result.critical and not e.acknowledged for e in self._session.poc):
            out.append((Refusal.CRITICAL_NOT_ACKNOWLEDGED,
                        N_("acknowledge every critical point-of-care result first")))
        return tuple(out)
