"""#20: look-alike names must not pass the two-identifier check. Replays the exploit's names:
a zero-width space, a word joiner + ZWNJ, a Cyrillic capital IE — each renders like the plain
name. Code points and categories are the Unicode Character Database's (UnicodeData.txt:
U+200B ZERO WIDTH SPACE Cf, U+200C ZERO WIDTH NON-JOINER Cf, U+2060 WORD JOINER Cf, U+0415
CYRILLIC CAPITAL LETTER IE Lu); NFKC folding per UAX #15 (U+FF3A FULLWIDTH LATIN CAPITAL
LETTER Z -> U+005A)."""

from __future__ import annotations

from datetime import date

from station.app.sync_port import appointment_to_patient
from station.checkin import normalise_name
from station.names import clean_name
from station.rooming import SAME_NAME_NOTE, Rooming
from station.rooming_data import ScheduledPatient
from station.sync.contract import Appointment, PatientIdentifiers

HIDDEN = "hidden characters were removed from this name"


def test_invisible_characters_are_removed_and_said() -> None:
    assert clean_name("ZZ\u200bTEST").text == "ZZTEST"
    assert clean_name("ZZ\u200bTEST").notes == (HIDDEN,)
    assert clean_name("ZZTE\u2060\u200cST").text == "ZZTEST"
    assert clean_name("ZZTEST\u00ad").text == "ZZTEST"  # soft hyphen, Cf
    assert clean_name("ZZTEST").notes == ()


def test_compatibility_forms_fold_and_spaces_collapse() -> None:
    assert clean_name("\uff3a\uff3aTEST").text == "ZZTEST"  # full-width Z
    assert clean_name("  Mary   Ann ").text == "Mary Ann"
    assert clean_name("Núñez").text == "Núñez"  # real letters stay as they are


def test_a_cyrillic_letter_in_a_latin_name_is_flagged_not_changed() -> None:
    spoofed = clean_name("ZZT\u0415ST")
    assert spoofed.text == "ZZT\u0415ST"
    assert spoofed.notes == ("this name mixes alphabets (Cyrillic and Latin): check it letter "
                             "by letter",)
    assert clean_name("Иванов").notes == ()  # one script is a name, not a spoof


def patient(appointment: str, family: str, mrn: str) -> Appointment:
    return Appointment(
        appointment_id=appointment,
        patient=PatientIdentifiers(mrn=mrn, family_name=family, given_name="Echo",
                                   birth_date=date(1979, 1, 30)),
        starts_at="2026-03-02T15:00:00Z",  # type: ignore[arg-type]
    )


def test_the_schedule_shows_the_clean_name_and_marks_look_alikes() -> None:
    real = appointment_to_patient(patient("APT-1", "ZZTEST", "TEST100001"))
    spoof = appointment_to_patient(patient("APT-2", "ZZ\u200bTEST", "TEST100002"))
    assert (spoof.family_name, spoof.identity_notes) == ("ZZTEST", (HIDDEN,))
    rooming = Rooming(clock=lambda: real.birth_date, credentials={})  # type: ignore[arg-type, return-value]
    rooming.set_schedule((real, spoof))
    notes = {p.appointment_id: p.identity_notes for p in rooming.schedule}
    assert notes == {"APT-1": (SAME_NAME_NOTE,), "APT-2": (HIDDEN, SAME_NAME_NOTE)}


def test_the_lobby_match_ignores_hidden_characters() -> None:
    assert normalise_name("ZZ\u200bTE\u2060ST") == normalise_name("zztest")


def test_a_plain_list_is_left_alone() -> None:
    plain = ScheduledPatient(appointment_id="APT-3", mrn="TEST100003", family_name="ZZTEST",
                             given_name="Foxtrot", birth_date=date(1980, 1, 1))
    assert plain.identity_notes == ()
