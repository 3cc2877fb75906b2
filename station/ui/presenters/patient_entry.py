"""The exam station's manual patient entry: the MA types name, date of birth (as digits, shown
back with the month's name) and the MRN if known, when the schedule is empty or the station is
offline. The words it shows are here, in one place; the rooming does the checking."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from station.checkin import parse_birth_date
from station.locale import N_, Translate, no_translation
from station.ui.presenters.lobby import MONTHS
from station.workflow import RefusedError

FIELDS = ("family", "given", "dob", "mrn")

TEXT = {
    "offer": N_("Patient not on the list? Enter by hand"),
    "title": N_("Enter the patient by hand"),
    "family": N_("Last name"),
    "given": N_("First name"),
    "dob": N_("Date of birth"),
    "dob_hint": N_("MM DD YYYY"),
    "mrn": N_("MRN (if known)"),
    "mrn_hint": N_("optional"),
    "cancel": N_("Cancel"),
    "next": N_("Check with the patient  >"),
    "why_empty": N_("The schedule is empty."),
    "why_offline": N_("This station cannot reach the practice system."),
    "confirm_note": N_("Entered by hand — not from the schedule."),
    "confirm_mrn": N_("MRN {mrn}"),
    "confirm_no_mrn": N_("MRN not known"),
    "how": N_(
        "The practice matches a patient entered by hand to the chart by name and date of birth."
    ),
}


@dataclass(frozen=True)
class PatientEntry:
    """What has been typed so far, and what was wrong with it ("" when nothing)."""

    family: str = ""
    given: str = ""
    dob: str = ""
    mrn: str = ""
    problem: str = ""


def typed(entry: PatientEntry, field: str, text: str) -> PatientEntry:
    if field not in FIELDS:
        raise ValueError(f"no field {field!r} on the patient entry (one of {', '.join(FIELDS)})")
    if getattr(entry, field) == text:
        return entry
    return replace(entry, **{field: text}, problem="")


def birth_date(entry: PatientEntry) -> date | None:
    """The date of birth typed so far, or None until it is a real date."""
    try:
        return parse_birth_date(entry.dob)
    except RefusedError:
        return None


def birth_date_in_words(entry: PatientEntry, _: Translate = no_translation) -> str:
    """ "March 14, 1961" for 03141961: 03/04 is ambiguous, "March 4" is not."""
    born = birth_date(entry)
    if born is None:
        return ""
    month = _(MONTHS[born.month - 1])
    return _("{month} {day}, {year}").format(month=month, day=born.day, year=born.year)


def dob_problem(entry: PatientEntry) -> str:
    """Why the date of birth cannot be read ("" when it can)."""
    try:
        parse_birth_date(entry.dob)
    except RefusedError as exc:
        return N_("Date of birth") + ": " + exc.message
    return ""


def why_by_hand(schedule_empty: bool, online: bool, _: Translate = no_translation) -> str:
    """The line under the title: why the list cannot be used, and what happens next."""
    why = [TEXT["why_empty"]] if schedule_empty else []
    if not online:
        why.append(TEXT["why_offline"])
    return " ".join(_(text) for text in (*why, TEXT["how"]))


def confirm_note(mrn: str | None, _: Translate = no_translation) -> str:
    """What the confirmation adds for a patient entered by hand (the MRN if typed)."""
    chart = _(TEXT["confirm_mrn"]).format(mrn=mrn) if mrn else _(TEXT["confirm_no_mrn"])
    return f"{_(TEXT['confirm_note'])} {chart}."
