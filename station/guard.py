"""The wrong-patient guard: decides whether a device reading may attach to the open session.

Pure: the clock is passed in, nothing sleeps, nothing does I/O. A reading attaches to the
open rooming session only when it was measured after that session started (within the
configured clock skew), arrived after that session started, and nothing about it says
"stored". Everything doubtful is judged `Unassigned` with its reasons; the rooming workflow,
which owns the guard, the session and the one tray, puts it in the tray for the MA to accept
or discard; it is never attached silently. Readings from devices not bound to this station
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
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from station.config import GuardSection
from station.models import AnyReading, Flag, Kind

Clock = Callable[[], datetime]


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
    TrayReason.NO_SESSION: "no patient was being roomed when it arrived",
    TrayReason.FROM_STORAGE: "the device says it is a stored (earlier) reading",
    TrayReason.CLOCK_NOT_SET: "the device's clock is not set, so its time is unknown",
    TrayReason.BEFORE_SESSION: "it was measured before this patient's rooming started",
    TrayReason.CLOCK_AHEAD: "the device's clock is ahead of the station's beyond the allowed skew",
    TrayReason.CONNECT_BURST: "several readings arrived at once when the device connected "
    "(stored readings being sent)",
    TrayReason.ARRIVED_BEFORE_SESSION: "it arrived before this patient's rooming started "
    "(the patient on this station changed while it was on its way)",
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
    """May not attach: the workflow puts it in its tray with these reasons."""

    outcome: Literal["unassigned"] = "unassigned"
    device_id: str
    reading: AnyReading
    reasons: tuple[TrayReason, ...]
    received_at: datetime

    def describe(self) -> str:
        return describe_reasons(self.reasons)


def describe_reasons(reasons: tuple[TrayReason, ...]) -> str:
    """The tray card's words for why a reading was held back."""
    return "; ".join(TRAY_REASON_TEXT[r] for r in reasons)


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


def _comparable(moment: datetime, like: datetime) -> datetime:
    """Device clocks are local wall time without a zone; read them in the station's zone."""
    if moment.tzinfo is None and like.tzinfo is not None:
        return moment.replace(tzinfo=like.tzinfo)
    if moment.tzinfo is not None and like.tzinfo is None:
        return moment.replace(tzinfo=None)
    return moment


class WrongPatientGuard:
    """Holds the open session, the bound devices and the held bursts; judges each reading.

    Not thread-safe by design: one thread (the workflow's) calls it."""

    def __init__(
        self,
        clock: Clock,
        bound_device_ids: Iterable[str],
        policy: GuardSection | None = None,
    ) -> None:
        self._clock = clock
        self._bound = set(bound_device_ids)
        self._policy = policy or GuardSection()
        self._skew = timedelta(seconds=self._policy.clock_skew_s)
        self._window = timedelta(seconds=self._policy.connect_burst_window_s)
        self._session: Session | None = None
        self._connected_at: dict[str, datetime] = {}
        self._held: dict[str, list[tuple[AnyReading, datetime]]] = {}

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
        connected_at = self._connected_at.get(device_id)
        if connected_at is not None and now < connected_at + self._window:
            self._held.setdefault(device_id, []).append((reading, now))
            outcomes.append(Held(device_id=device_id, release_at=connected_at + self._window))
            return outcomes
        outcomes.append(self._judge(device_id, reading, now, burst=False))
        return outcomes

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
            outcomes.extend(self._judge(device_id, r, at, burst=burst) for r, at in held)
        return outcomes

    def reasons(self, reading: AnyReading, received_at: datetime) -> tuple[TrayReason, ...]:
        """Why this reading may not attach to the open session (empty: it may)."""
        found: list[TrayReason] = []
        session = self._session
        if session is None:
            found.append(TrayReason.NO_SESSION)
        elif _comparable(received_at, session.started_at) < session.started_at:
            found.append(TrayReason.ARRIVED_BEFORE_SESSION)
        if reading.has(Flag.FROM_STORAGE):
            found.append(TrayReason.FROM_STORAGE)
        if reading.has(Flag.CLOCK_NOT_SET):
            found.append(TrayReason.CLOCK_NOT_SET)
        elif reading.measured_at is not None:
            # A device without a timestamp cannot be checked against the session; the
            # storage flag and the connect-burst rule are what catch its stored readings.
            if session is not None:
                measured = _comparable(reading.measured_at, session.started_at)
                if measured < session.started_at - self._skew:
                    found.append(TrayReason.BEFORE_SESSION)
            measured_now = _comparable(reading.measured_at, received_at)
            if measured_now > received_at + self._skew:
                found.append(TrayReason.CLOCK_AHEAD)
        return tuple(found)

    def _judge(
        self, device_id: str, reading: AnyReading, received_at: datetime, *, burst: bool
    ) -> Attached | Unassigned:
        reasons = list(self.reasons(reading, received_at))
        if burst:
            reasons.append(TrayReason.CONNECT_BURST)
        if reasons or self._session is None:
            return Unassigned(
                device_id=device_id,
                reading=reading,
                reasons=tuple(reasons),
                received_at=received_at,
            )
        return Attached(
            device_id=device_id,
            session_id=self._session.session_id,
            reading=reading,
            received_at=received_at,
        )
