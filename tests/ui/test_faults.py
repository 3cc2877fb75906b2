"""#20: an unexpected error on a patient screen is said on screen and logged without patient
data; the kiosk keeps running (the lobby died on `KeyError: 'APT-1'` mid check-in).

Failures are injected at the lowest seam, the outbox adapter the presenters call (a real
one is SQLite; "database or disk is full" is SQLite's own text for SQLITE_FULL,
https://www.sqlite.org/rescode.html#full), and at the App's main loop in a real `App.run()`
offscreen, in its own process (Kivy runs one App per process).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from station.app.demo_ui import build_presenter
from station.checkin import CheckinRecord
from station.rooming_data import RoomingState
from station.ui.ports import MemoryOutbox
from tests.fixtures.kivy import Driver
from tests.workflows.helpers import FakeClock, spo2

pytestmark = pytest.mark.ui

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
# The demo patients' identifiers (station.app.demo_ui): none may reach the log.
CHARLIE = ("ZZTEST", "Charlie", "TEST100003", "APT-DEMO-0003", "1961")
ALPHA = ("ZZTEST", "Alpha", "TEST100001", "APT-DEMO-0001", "1970")
FAULT_TEXT = (
    "Something went wrong: that step did not complete. Check the screen and try again; "
    "if it happens again, call biomed."
)


class FullDisk(MemoryOutbox):
    """The outbox when its disk fills up: storing raises SQLite's error, until `fixed`."""

    full = True

    def checkin(self, record: CheckinRecord) -> None:
        if self.full:
            # The shape of #20's crash: a KeyError naming the appointment.
            raise KeyError(record.appointment_id)
        super().checkin(record)

    def submit(self, submission: object) -> object:  # type: ignore[override]
        if self.full:
            raise sqlite3.OperationalError("database or disk is full")
        return super().submit(submission)  # type: ignore[arg-type]


def answer_intake(driver: Driver, presenter: Any) -> None:
    """Through the intake questions (#18) by tapping each question's first answer."""
    while presenter.screen == "lobby_question":
        question = presenter.checkin.intake.current()
        driver.tap(question.options[0][1])


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("station"))


def test_a_lobby_failure_wipes_the_check_in_and_sends_the_patient_to_the_front_desk(
    make_ui: Callable[..., Driver], caplog: pytest.LogCaptureFixture
) -> None:
    outbox = FullDisk()
    presenter = build_presenter("lobby", clock=FakeClock(NOW), outbox=outbox)
    driver = make_ui("lobby", presenter)
    driver.scan("qr-demo-0003")
    driver.tap("Yes, these are right")
    driver.type_into(driver.ui.screen.ids.reason, "cough")
    driver.tap("Done")
    answer_intake(driver, presenter)  # #18: the questions, each answered with its first option
    with caplog.at_level(logging.ERROR):
        driver.tap("No, it is the same")  # the last screen: the check-in goes to the outbox
    # The overlay says it, over a wiped welcome screen; nothing of the patient's is left.
    assert presenter.screen == "lobby_welcome"
    assert "Please see the front desk" in driver.texts()
    # Drawn last, over the screens (it was once added under them and never seen).
    assert driver.ui.root.children[0] is driver.ui._message
    assert presenter.checkin.holds_patient_data is False
    assert not any(part in " ".join(driver.texts()) for part in CHARLIE)
    # Logged: what and where, never the message (it named the appointment).
    text = logged(caplog)
    assert "unexpected KeyError during the 'insurance' intent on the lobby_insurance screen" in (
        text
    )
    assert "checkin.py" not in text or "in insurance" in text  # frames, not values
    assert not any(part in text for part in CHARLIE)
    driver.shot("lobby_fault")
    # Still alive: the next patient checks in once the disk has room.
    outbox.full = False
    driver.scan("qr-demo-0003")
    driver.tap("Yes, these are right")
    driver.type_into(driver.ui.screen.ids.reason, "cough")
    driver.tap("Done")
    answer_intake(driver, presenter)
    driver.tap("No, it is the same")
    assert [r.appointment_id for r in outbox.checkins] == ["APT-DEMO-0003"]


def test_an_exam_failure_is_said_on_screen_and_the_rooming_is_kept(
    make_ui: Callable[..., Driver], caplog: pytest.LogCaptureFixture
) -> None:
    outbox = FullDisk()
    presenter = build_presenter("exam", clock=FakeClock(NOW), outbox=outbox)
    driver = make_ui("exam", presenter)
    driver.scan("BADGE-DEMO")
    driver.tap("09:00   ZZTEST, Alpha   ·   born 05/17/1970")
    driver.tap("Yes — both match")
    driver.ui.deliver(
        lambda: presenter.device_reading(
            spo2(97).model_copy(update={"measured_at": None}), "oximeter"
        )
    )
    driver.until(lambda: len(presenter.rooming.entries) == 1)
    driver.tap("Review  >")
    for index, _ in enumerate(presenter.rooming.medications):
        presenter.set_medication(index, presenter.rooming.medications[index].status.TAKING)
    driver.ui.redraw()
    driver.pump(2)
    with caplog.at_level(logging.ERROR):
        driver.tap("Send")
    assert FAULT_TEXT in driver.texts()
    assert (presenter.rooming.state, len(presenter.rooming.entries)) == (RoomingState.REVIEW, 1)
    text = logged(caplog)
    assert "unexpected OperationalError during the 'send' intent on the review screen" in text
    assert "database or disk is full" not in text  # no message at all, whatever it holds
    assert not any(part in text for part in ALPHA)
    driver.shot("exam_fault")

    # A hand-over from a device thread that fails is a fault too, not a dead loop.
    def broken() -> None:
        raise ValueError("ZZTEST Alpha")

    with caplog.at_level(logging.ERROR):
        driver.ui.deliver(broken)
        driver.pump(3)
    assert "unexpected ValueError during a hand-over from a device or the network" in logged(caplog)
    assert presenter.rooming.state is RoomingState.REVIEW
    # Still alive: once the disk has room, Send works.
    outbox.full = False
    driver.tap(driver.ui._message)  # the overlay: a tap dismisses it
    driver.tap("Send")
    assert len(outbox.submissions) == 1


APP_SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    from kivy.clock import Clock
    from station.app.demo_ui import build_presenter
    from station.ui.app import StationApp, StationUI

    handler = logging.FileHandler(sys.argv[1])
    logging.getLogger("station").addHandler(handler)
    built = []

    def factory():
        ui = StationUI("lobby", build_presenter("lobby"))
        built.append(ui)
        return ui

    app = StationApp(factory)

    def start(_dt):
        built[0].intent("scan_qr", "qr-demo-0003")  # a patient mid check-in

    def crash(_dt):
        # Not the controller's callback: only Kivy's ExceptionManager sees this one.
        raise KeyError("APT-DEMO-0003")

    def report(_dt):
        p = built[0].presenter
        print(json.dumps({"screen": p.screen, "message": p.message,
                          "holds": p.checkin.holds_patient_data}), flush=True)
        app.stop()

    Clock.schedule_once(start, 0.1)
    Clock.schedule_once(crash, 0.3)
    Clock.schedule_once(report, 0.6)
    app.run()
    print("alive after the loop", flush=True)
    """
)


def test_the_app_main_loop_survives_an_error_outside_the_controller(tmp_path: Path) -> None:
    log_file = tmp_path / "station.log"
    env = {
        **os.environ,
        "SDL_VIDEODRIVER": "offscreen",
        "KIVY_NO_ARGS": "1",
        "KIVY_NO_CONSOLELOG": "1",
        "KIVY_HOME": str(tmp_path / "kivy"),
    }
    result = subprocess.run(
        [sys.executable, "-c", APP_SCRIPT, str(log_file)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report, alive = result.stdout.splitlines()[-2:]
    assert json.loads(report) == {
        "screen": "lobby_welcome",
        "message": "Please see the front desk",
        "holds": False,
    }
    assert alive == "alive after the loop"
    text = log_file.read_text()
    assert "unexpected KeyError during the main loop" in text
    assert not any(part in text for part in CHARLIE)


def test_a_biomed_failure_is_said_to_biomed_with_where_to_look(
    make_ui: Callable[..., Driver], caplog: pytest.LogCaptureFixture
) -> None:
    from station.app.demo_ui import DEMO_BIOMED_PIN

    presenter = build_presenter("biomed", clock=FakeClock(NOW))
    driver = make_ui("biomed", presenter)
    driver.ui.intent("unlock", DEMO_BIOMED_PIN)

    def broken() -> None:
        raise sqlite3.DatabaseError("database disk image is malformed")  # the outbox's file

    presenter.port.outbox_depth = broken  # read when the settings view is drawn
    with caplog.at_level(logging.ERROR):
        driver.ui.intent("open_settings")
        driver.pump(10)  # the timer redraws every frame here: the failure repeats
    assert presenter.message == (
        "Something went wrong: that step did not complete. The journal has where "
        "(journalctl -u station); try again."
    )
    assert "unexpected DatabaseError during drawing on the biomed screen" in logged(caplog)
    assert "Something went wrong: that step did not complete. The journal has where " in " ".join(
        driver.texts()
    )  # on screen, though the screen under it failed to draw
    records = [r for r in caplog.records if r.name == "station.ui"]
    assert len(records) == 6  # five faults, then one line: a failing screen floods nothing
    assert records[-1].getMessage() == (
        "unexpected errors keep coming: not logged again while they do"
    )
    assert presenter.unlocked  # still open: biomed can look and try again
