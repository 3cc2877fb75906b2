"""The demo's fake people, one table for every demo (`station demo`, `station ui`, the lobby's
list), so a tester who learns "ZZTEST, Charlie, 03/14/1961" finds the same person everywhere.
Obviously fake: the ZZTEST surname is what EHR test patients use. Pure data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

FAKE_GIVEN_NAMES = ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel")


@dataclass(frozen=True)
class DemoPatient:
    family: str
    given: str
    birth_date: date
    mrn: str
    appointment_id: str

    def age_years(self, today: date) -> float:
        return (today - self.birth_date).days / 365.25


DEMO_PEOPLE = (
    DemoPatient("ZZTEST", "Alpha", date(1970, 5, 17), "TEST100001", "APT-DEMO-0001"),
    DemoPatient("ZZTEST", "Bravo", date(1985, 11, 2), "TEST100002", "APT-DEMO-0002"),
    DemoPatient("ZZTEST", "Charlie", date(1961, 3, 14), "TEST100003", "APT-DEMO-0003"),
)
