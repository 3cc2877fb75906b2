"""#15: "demo patients' dates of birth differ between `station ui` and `station demo`". The
same fake person has the same identifiers in every demo: the exam list and the lobby of
`station ui`, and the patients `station demo` rooms (whatever its seed)."""

from __future__ import annotations

import random
from datetime import date

from station.app.demo_ui import demo_appointments, demo_schedule
from station.demo import demo_patients


def test_every_demo_shows_the_same_people() -> None:
    ui = {
        p.given_name: (p.family_name, p.birth_date, p.mrn, p.appointment_id)
        for p in demo_schedule(date(2026, 3, 2))
    }
    for seed in (1, 7):
        demo = {
            p.given: (p.family, p.birth_date, p.mrn, p.appointment_id)
            for p in demo_patients(3, random.Random(seed))
        }
        assert demo == ui
    lobby = {
        a.given_name: (a.family_name, a.birth_date, a.appointment_id) for a in demo_appointments()
    }
    assert lobby == {k: (v[0], v[1], v[3]) for k, v in ui.items() if k in lobby}
    # The docs' demo instructions name Charlie's date of birth (docs/ui.md: "03141961").
    assert ui["Charlie"][1] == date(1961, 3, 14)


def test_more_demo_patients_than_the_table_are_made_up_and_distinct() -> None:
    patients = demo_patients(10, random.Random(3))
    assert len({p.mrn for p in patients}) == len({p.appointment_id for p in patients}) == 10
    assert all(p.family == "ZZTEST" for p in patients)
