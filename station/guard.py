"""The wrong-patient guard: decides whether a device reading may attach to the open session.

Pure: the clock is passed in, nothing sleeps, nothing does I/O. A reading attaches to the
open rooming session only when nothing says it was measured before that session started, it
arrived after that session started, and nothing about it says "stored".

How far a device's own time (`measured_at`) is believed depends on who set its clock. The
station writes the clock of the devices whose profile says so on every connect; a reading
from a device whose clock the station set *on this connection* is compared with the session
start within `SET_CLOCK_TOLERANCE_S` (the clock's one-second resolution and the write's
delay). Any other device clock (never set, set by hand, refused the write, a serial device's
own clock) is not trusted: its time cannot clear a reading, which is then judged like an
untimed one (by arrival, storage flag and burst), and a time earlier than the session start
by any amount sends it to the tray with the question "measured 2 min before this rooming --
same patient?". The configured `clock_skew_s` is then only how far ahead of the station such
a clock may run before its readings count as `clock_ahead`.

Device clocks are local wall time without an offset: a naive `measured_at` is read in the
site's time zone (`[records] timezone`), not in whatever zone the station's clock carries.

Everything doubtful is judged `Unassigned` with its reasons; the rooming workflow, which owns
the guard, the session and the one tray, puts it in the tray for the MA to accept or discard;
it is never attached silently. Readings from devices not bound to this station
never enter at all.

Each reading carries `received_at`, the moment the link handed it over (stamped on the link
thread with the station clock). The workflow drains device events on one thread, so a reading
can still be queued when the MA confirms the next patient: one that arrived before the open
session started belongs to no one on screen and goes to the tray (`arrived_before_session`).

Connect bursts: several cuffs dump their stored readings as soon as they reconnect. A
reading that arrives within `connect_burst_window_s` of a connect is therefore *held* until
the window closes: if it was the only one, it is judged on its own; if more arrived, every
reading of the burst goes to the tray. Holding costs the MA a few seconds once per connect;
attaching first and taking back later would show a wrong value on screen in the meantime.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from station.config import GuardSection
from station.locale import N_
from station.models import AnyReading, Flag, Kind

Clock = Callable[[], datetime]

# A clock the station wrote on this connection is right to its resolution: Date Time (0x2A08)
# carries whole seconds (truncated: up to 1 s early), and the write lands up to about a second
# after it was encoded (one GATT write with response on a slow connection interval).
SET_CLOCK_TOLERANCE_S = 2.0


class TrayReason(StrEnum):
    """Why a reading went to the unassigned tray (closed vocabulary; the screen words it)."""

    NO_SESSION = "no_session"
    FROM_STORAGE = "from_storage"
    CLOCK_NOT_SET = "clock_not_set"
    BEFORE_SESSION = "before_session"
    CLOCK_AHEAD = "clock_ahead"
    CONNECT_BURST = "connect_burst"
    ARRIVED_BEFORE_SESSION = "arrived_before_session"


# What the MA reads on the tray card, in words an MA uses.
TRAY_REASON_TEXT: dict[TrayReason, str] = {
    TrayReason.NO_SESSION: N_("no patient was being roomed when it arrived"),
    TrayReason.FROM_STORAGE: N_("the device says it is a stored (earlier) reading"),
    TrayReason.CLOCK_NOT_SET: N_("the device's clock is not set, so its time is unknown"),
    TrayReason.BEFORE_SESSION: N_("it was measured before this patient's rooming started"),
    TrayReason.CLOCK_AHEAD: N_(
        "the device's clock is ahead of the station's beyond the allowed skew"
    ),
    TrayReason.CONNECT_BURST: N_(
        "several readings arrived at once when the device connected (stored readings being sent)"
    ),
    TrayReason.ARRIVED_BEFORE_SESSION: N_(
        "it arrived before this patient's rooming started "
        "(the patient on this station changed while it was on its way)"
    ),
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Session(_Frozen):
    """The open rooming session on this station: only its id and start matter here."""

    session_id: str
    started_at: datetime


class Attached(_Frozen):
    outcome: Literal["attached"] = "attached"
    device_id: str
    session_id: str
    reading: AnyReading
    received_at: datetime


class Unassigned(_Frozen):
    """May not attach: the workflow puts it in its tray with these reasons.

    `measured_before_s`: with `before_session`, how long before the session start the device
    says it was measured (the tray card asks the MA whether it is the same patient)."""

    outcome: Literal["unassigned"] = "unassigned"
    device_id: str
    reading: AnyReading
    reasons: tuple[TrayReason, ...]
    received_at: datetime
    measured_before_s: float | None = None

    def describe(self) -> str:
        return describe_reasons(self.reasons, self.measured_before_s)


def describe_reasons(
    reasons: tuple[TrayReason, ...], measured_before_s: float | None = None
) -> str:
    """The tray card's words for why a reading was held back."""
    words = []
    for reason in reasons:
        if reason is TrayReason.BEFORE_SESSION and measured_before_s is not None:
            words.append(
                f"measured {describe_interval(measured_before_s)} before this rooming"
                " — same patient?"
            )
        else:
            words.append(TRAY_REASON_TEXT[reason])
    return "; ".join(words)


def describe_interval(seconds: float) -> str:
    """40 s, 2 min, 3 h 5 min, 2 days: how an MA says how long ago."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = round(whole / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{round(whole / 86400)} days"


class Held(_Frozen):
    """Arrived inside a connect burst window; judged when the window closes (see `flush`)."""

    outcome: Literal["held"] = "held"
    device_id: str
    release_at: datetime


class Live(_Frozen):
    """Live cuff pressure: for the gauge only, never attached, never in the tray."""

    outcome: Literal["live"] = "live"
    device_id: str
    reading: AnyReading


class Ignored(_Frozen):
    """From a device not bound to this station: it never enters."""

    outcome: Literal["ignored"] = "ignored"
    device_id: str
    why: str


Outcome = Attached | Unassigned | Held | Live | Ignored


def _comparable(moment: datetime, like: datetime, zone: tzinfo | None) -> datetime:
    """`moment` made comparable with `like` (a station-clock time).

    A naive `moment` is a device's local wall time: read it in the site's zone (`zone`), or
    in `like`'s zone when no site zone was given. A naive `like` (tests' station clocks) is
    local time: an aware `moment` is turned into the site's wall time before its zone goes."""
    if moment.tzinfo is None and like.tzinfo is not None:
        return moment.replace(tzinfo=zone or like.tzinfo)
    if moment.tzinfo is not None and like.tzinfo is None:
        return (moment.astimezone(zone) if zone else moment).replace(tzinfo=None)
    return moment


class WrongPatientGuard:
    """Holds the open session, the bound devices and the held bursts; judges each reading.

    Not thread-safe by design: one thread (the workflow's) calls it."""

    def __init__(
        self,
        clock: Clock,
        bound_device_ids: Iterable[str],
        policy: GuardSection | None = None,
        zone: tzinfo | None = None,
    ) -> None:
        """`zone`: the site's time zone, in which a device's naive `measured_at` is read."""
        self._clock = clock
        self._zone = zone
        self._bound = set(bound_device_ids)
        self._policy = policy or GuardSection()
        self._skew = timedelta(seconds=self._policy.clock_skew_s)
        self._window = timedelta(seconds=self._policy.connect_burst_window_s)
        self._session: Session | None = None
        self._connected_at: dict[str, datetime] = {}
        self._clock_set: set[str] = set()  # devices whose clock the station set on this connection
        self._held: dict[str, list[tuple[AnyReading, datetime, bool]]] = {}

    # ---- what the station tells the guard -------------------------------------------------

    @property
    def session(self) -> Session | None:
        return self._session

    def set_bound(self, device_ids: Iterable[str]) -> None:
        self._bound = set(device_ids)

    def open_session(self, session_id: str) -> Session:
        self._session = Session(session_id=session_id, started_at=self._clock())
        return self._session

    def close_session(self) -> None:
        self._session = None

    def device_connected(self, device_id: str, at: datetime | None = None) -> None:
        """A (re)connect opens a burst window: what arrives in it is held, then judged.
        `at`: when the link saw the connect (default: now)."""
        self._connected_at[device_id] = self._clock() if at is None else at
        self._clock_set.discard(device_id)  # a new connection: its clock is unknown again

    def device_clock_set(self, device_id: str) -> None:
        """The station wrote this device's clock on its current connection: its times are
        trusted (within SET_CLOCK_TOLERANCE_S) until it disconnects or connects again."""
        self._clock_set.add(device_id)

    def device_disconnected(self, device_id: str) -> None:
        """The connection ended: whatever the station wrote, the next one starts unknown."""
        self._clock_set.discard(device_id)

    def clock_trusted(self, device_id: str) -> bool:
        return device_id in self._clock_set

    # ---- readings ----------------------------------------------------------------------

    def offer(
        self, device_id: str, reading: AnyReading, received_at: datetime | None = None
    ) -> list[Outcome]:
        """One reading from a device; returns what happened to it and to any released burst.
        `received_at`: when the link handed it over (default: now)."""
        now = self._clock() if received_at is None else received_at
        if device_id not in self._bound:
            return [Ignored(device_id=device_id, why="device is not bound to this station")]
        if reading.kind is Kind.CUFF_PRESSURE:
            return [Live(device_id=device_id, reading=reading)]
        outcomes = self.flush()
        # Trust as it is now: a reading is timed by the clock the device had when it sent it.
        trusted = device_id in self._clock_set
        connected_at = self._connected_at.get(device_id)
        if connected_at is not None and now < connected_at + self._window:
            self._held.setdefault(device_id, []).append((reading, now, trusted))
            outcomes.append(Held(device_id=device_id, release_at=connected_at + self._window))
            return outcomes
        outcomes.append(self._judge(device_id, reading, now, burst=False, trusted=trusted))
        return outcomes

    def held(self, device_id: str) -> int:
        """Readings of a device held in its connect-burst window (not judged yet)."""
        return len(self._held.get(device_id, ()))

    def flush(self) -> list[Outcome]:
        """Release held bursts whose window has closed. Call it on a timer and on each offer."""
        now = self._clock()
        outcomes: list[Outcome] = []
        for device_id in sorted(self._held):
            connected_at = self._connected_at[device_id]
            if now < connected_at + self._window:
                continue
            held = self._held.pop(device_id)
            burst = len(held) > 1  # one reading at connect is the usual cuff; two are a dump
            outcomes.extend(
                self._judge(device_id, r, at, burst=burst, trusted=trusted)
                for r, at, trusted in held
            )
        return outcomes

    def measured_before_s(self, reading: AnyReading) -> float | None:
        """How long before the open session's start the device says it measured (None: no
        session, no device time, or not before)."""
        session = self._session
        if session is None or reading.measured_at is None:
            return None
        measured = _comparable(reading.measured_at, session.started_at, self._zone)
        before = (session.started_at - measured).total_seconds()
        return before if before > 0 else None

    def reasons(
        self, reading: AnyReading, received_at: datetime, *, clock_trusted: bool = False
    ) -> tuple[TrayReason, ...]:
        """Why this reading may not attach to the open session (empty: it may).

        `clock_trusted`: the station set the device's clock on this connection."""
        found: list[TrayReason] = []
        session = self._session
        if session is None:
            found.append(TrayReason.NO_SESSION)
        elif _comparable(received_at, session.started_at, None) < session.started_at:
            found.append(TrayReason.ARRIVED_BEFORE_SESSION)
        if reading.has(Flag.FROM_STORAGE):
            found.append(TrayReason.FROM_STORAGE)
        if reading.has(Flag.CLOCK_NOT_SET):
            found.append(TrayReason.CLOCK_NOT_SET)
        elif reading.measured_at is not None:
            # A device without a timestamp cannot be checked against the session; the
            # storage flag and the connect-burst rule are what catch its stored readings.
            # An untrusted clock is read the same way, except that a time before the session
            # is doubt enough: the reading may be the previous patient's.
            tolerance = timedelta(seconds=SET_CLOCK_TOLERANCE_S) if clock_trusted else timedelta()
            before = self.measured_before_s(reading)
            if before is not None and before > tolerance.total_seconds():
                found.append(TrayReason.BEFORE_SESSION)
            ahead = tolerance if clock_trusted else self._skew
            measured_now = _comparable(reading.measured_at, received_at, self._zone)
            if measured_now > received_at + ahead:
                found.append(TrayReason.CLOCK_AHEAD)
        return tuple(found)

    def _judge(
        self,
        device_id: str,
        reading: AnyReading,
        received_at: datetime,
        *,
        burst: bool,
        trusted: bool = False,
    ) -> Attached | Unassigned:
        reasons = list(self.reasons(reading, received_at, clock_trusted=trusted))
        if burst:
            reasons.append(TrayReason.CONNECT_BURST)
        if reasons or self._session is None:
            return Unassigned(
                device_id=device_id,
                reading=reading,
                reasons=tuple(reasons),
                received_at=received_at,
                measured_before_s=(
                    self.measured_before_s(reading)
                    if TrayReason.BEFORE_SESSION in reasons
                    else None
                ),
            )
        return Attached(
            device_id=device_id,
            session_id=self._session.session_id,
            reading=reading,
            received_at=received_at,
        )
