"""Issue #20 item 1, replayed: PIN guessing at the exam keypad (an MA's PIN found after 615
tries), at the lobby's staff PIN (7,392 tries), wrong MA/staff PINs locking biomed out, and
restarting every 5 tries to reset biomed's lockout (found after 493 restarts). Each must fail.

The policy under test is the one docs/deploy-pi.md states (issue #20: "lockout after 5 tries
with growing delays, survives restarts", separate counters per role): five wrong tries free,
then 30 s (MA, staff) or 300 s (biomed), doubled at every further wrong try, up to 1 h.
Credentials are real Argon2id hashes; the counts live in the real `lockout.json`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from station.app.credentials import hash_secret, verify
from station.app.lockout_store import LOCKOUT_FILE, FileLockoutStore
from station.audit import AuditAction, AuditTrail
from station.biomed import Biomed, BiomedState
from station.checkin import Checkin, CheckinState
from station.config import parse_settings
from station.lockout import PinLockout, Role
from station.rooming import Rooming
from station.rooming_data import RoomingState
from station.ui.ports import MemorySpeaker
from station.ui.presenters import BiomedPresenter, ExamPresenter, LobbyPresenter
from station.workflow import RefusedError
from tests.workflows.helpers import FakeClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SETTINGS = parse_settings({"station": {"site": "test-clinic", "station_id": "exam-1"}}, "test")
MA_PIN, STAFF_PIN, BIOMED_PIN = "0614", "7391", "2464"  # the exploits' finds, by try number
MA_HASH, STAFF_HASH, BIOMED_HASH = (hash_secret(p) for p in (MA_PIN, STAFF_PIN, BIOMED_PIN))


class NullPort:
    """The biomed screen's port with nothing behind it (no devices, no outbox)."""

    def device_rows(self) -> tuple[()]:
        return ()

    def bound(self) -> tuple[()]:
        return ()

    def last_reading(self, device_id: str) -> None:
        return None


def lockout(clock: FakeClock, state: Path) -> PinLockout:
    """What StationServices builds at every start: the counts from the state directory."""
    return PinLockout(clock, FileLockoutStore(state / LOCKOUT_FILE), audit=AuditTrail())


def exam(clock: FakeClock, state: Path) -> ExamPresenter:
    shared = lockout(clock, state)
    biomed = Biomed(clock=clock, pin=lambda p: verify(BIOMED_HASH, p), settings=SETTINGS,
                    lockout=shared)
    rooming = Rooming(clock=clock, credentials=lambda p: "ma-1" if verify(MA_HASH, p) else None,
                      lockout=shared)
    return ExamPresenter(rooming, None, None,  # type: ignore[arg-type]
                         biomed=BiomedPresenter(biomed, NullPort()))  # type: ignore[arg-type]


def lobby(clock: FakeClock, state: Path) -> LobbyPresenter:
    shared = lockout(clock, state)
    biomed = Biomed(clock=clock, pin=lambda p: verify(BIOMED_HASH, p), settings=SETTINGS,
                    lockout=shared)
    checkin = Checkin(clock=clock, staff_pin=lambda p: verify(STAFF_HASH, p), lockout=shared)
    return LobbyPresenter(checkin, None, MemorySpeaker(),  # type: ignore[arg-type]
                          biomed=BiomedPresenter(biomed, NullPort()))  # type: ignore[arg-type]


def guesses(n: int) -> list[str]:
    return [f"{i:04d}" for i in range(n)]


def test_replaying_the_615_try_ma_pin_guess_never_signs_in(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    presenter = exam(clock, tmp_path)
    for guess in guesses(615):  # the script's order: the MA's PIN is its 615th try
        clock.advance(1)  # a script at one try a second (the badge reader path is faster)
        presenter.sign_in(guess)
        presenter.tick()
        assert presenter.rooming.state is RoomingState.SIGNED_OUT
    assert presenter.screen == "signin"
    assert presenter.rooming.schedule == ()  # nothing of today's list ever reachable
    counted = presenter.rooming.lockout.state(Role.MA).failures
    assert counted < 12  # of 615 tries in 615 s, only these were checked at all
    assert presenter.message.startswith("too many wrong tries: try again in ")


def test_even_waiting_out_every_lockout_615_tries_take_weeks(tmp_path: Path) -> None:
    """The patient who waits each lockout out exactly: 5 free tries, then 30, 60, ... s,
    capped at an hour — 615 tries take more than 600 hours (and a 6-digit PIN, the policy's
    minimum, has 10^6 of them)."""
    clock = FakeClock(T0)
    presenter = exam(clock, tmp_path)
    shared = presenter.rooming.lockout
    for _ in range(614):
        clock.advance(shared.wait_s(Role.MA))
        shared.try_pin(Role.MA, lambda: None)  # counted exactly like a keypad try
    assert (clock.now - T0).total_seconds() > 600 * 3600


def test_replaying_the_7392_try_staff_pin_guess_never_leaves_kiosk_mode(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    presenter = lobby(clock, tmp_path)
    for guess in guesses(7392):
        clock.advance(1)
        presenter.staff_exit(guess)
        assert presenter.checkin.state is CheckinState.WELCOME
    assert presenter.screen == "lobby_welcome"
    assert presenter.checkin.lockout.state(Role.STAFF).failures < 16
    # Said quietly beside the staff PIN field, never as a banner to the waiting room.
    view = presenter.view()
    assert view.message == "" and view.text["staff_error"].startswith("Try again in ")


def test_wrong_ma_and_staff_pins_never_count_against_biomed(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    presenter = exam(clock, tmp_path / "exam")
    for guess in guesses(5):
        presenter.sign_in(guess)
    assert presenter.rooming.lockout.wait_s(Role.MA) == 30
    assert presenter.rooming.lockout.state(Role.BIOMED).failures == 0
    presenter.sign_in(BIOMED_PIN)  # biomed staff arriving while the MA keypad waits
    assert presenter.screen == "biomed"

    kiosk = lobby(clock, tmp_path / "lobby")
    for guess in guesses(5):
        kiosk.staff_exit(guess)
    assert kiosk.checkin.lockout.wait_s(Role.STAFF) == 30
    assert kiosk.checkin.lockout.state(Role.BIOMED).failures == 0
    kiosk.staff_exit(BIOMED_PIN)
    assert kiosk.screen == "biomed"


def test_while_the_ma_keypad_waits_its_tries_count_against_biomed(tmp_path: Path) -> None:
    """Guessing goes on at the keypad: while the MA count waits, a try can only be biomed's."""
    clock = FakeClock(T0)
    presenter = exam(clock, tmp_path)
    for guess in guesses(10):
        presenter.sign_in(guess)
    assert presenter.rooming.lockout.state(Role.BIOMED).failures == 5
    assert presenter.rooming.lockout.wait_s(Role.BIOMED) == 300
    presenter.sign_in(BIOMED_PIN)  # right, but biomed waits too
    assert presenter.screen == "signin"


def test_restarting_every_five_tries_never_resets_the_biomed_lockout(tmp_path: Path) -> None:
    """The exploit restarted the station every 5 tries (493 restarts). A restart is a new
    process: everything but the state directory is new, as StationServices builds it."""
    clock = FakeClock(T0)
    unlocked = False
    tries = guesses(2465)
    for restart in range(493):
        biomed = Biomed(clock=clock, pin=lambda p: verify(BIOMED_HASH, p), settings=SETTINGS,
                        lockout=lockout(clock, tmp_path))
        for guess in tries[restart * 5:(restart + 1) * 5]:
            clock.advance(1)
            try:
                biomed.unlock(guess)
            except RefusedError:  # wrong or locked: the attacker tries on
                continue
            unlocked = biomed.state is not BiomedState.LOCKED
        clock.advance(10)  # the restart itself
    assert not unlocked
    state = lockout(clock, tmp_path).state(Role.BIOMED)
    assert state.locked_until is not None and state.failures < 12


def test_the_sign_in_screen_counts_the_lockout_down(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    presenter = exam(clock, tmp_path)
    for guess in guesses(5):
        presenter.sign_in(guess)
    assert presenter.message == "too many wrong tries: try again in 30 s"
    clock.advance(10)
    presenter.tick()
    assert presenter.message == "too many wrong tries: try again in 20 s"
    clock.advance(20)
    presenter.tick()
    assert presenter.message == ""
    assert presenter.sign_in(MA_PIN)  # the right PIN after the wait
    assert presenter.rooming.lockout.state(Role.MA).failures == 0


def test_failures_and_lockouts_are_audited_without_what_was_typed(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    presenter = exam(clock, tmp_path)
    for guess in ("1111", "2222", "3333", "4444", "5555"):
        presenter.sign_in(guess)
    events = presenter.rooming.audit.take()
    assert [(e.actor, e.action, e.detail) for e in events] == [
        *[("unknown", AuditAction.SIGN_IN_FAILED, f"role=ma keypad=exam try={n}")
          for n in range(1, 6)],
        ("unknown", AuditAction.LOCKED_OUT, "role=ma keypad=exam wait_s=30"),
    ]
    assert all(digit * 4 not in e.model_dump_json() for e in events for digit in "12345")


def test_an_unreadable_lockout_file_fails_closed(tmp_path: Path) -> None:
    (tmp_path / LOCKOUT_FILE).write_text("{not json")
    clock = FakeClock(T0)
    presenter = exam(clock, tmp_path)
    presenter.sign_in("0000")  # one wrong try is now the fifth
    assert presenter.rooming.lockout.wait_s(Role.MA) == 30
