"""What the practice system sends the station: parse and check it, and pair lookups with answers.

Pure: bytes in, a contract model (or a clear refusal) out; the lookup tracker takes the time
as a number (monotonic seconds) instead of reading a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from pydantic import ValidationError

from station.config import describe_validation_error
from station.errors import StationError
from station.sync.contract import (
    INBOUND,
    TOPIC_ROOT,
    AckPayload,
    Appointment,
    Channel,
    ConfigPayload,
    LookupResponse,
    SchedulePayload,
)

InboundPayload = SchedulePayload | ConfigPayload | AckPayload | LookupResponse


class InboundError(StationError):
    """A message from the practice system the station refuses; says which topic and why."""

    def __init__(self, channel: str, problems: list[str]) -> None:
        self.channel = channel
        self.problems = problems
        super().__init__(f"{channel}: refused: " + "; ".join(problems))


def channel_of(topic: str, site: str, station_id: str) -> Channel | None:
    """The inbound channel a topic is, or None if it is not one of this station's."""
    prefix = f"{TOPIC_ROOT}/{site}/{station_id}/"
    if not topic.startswith(prefix):
        return None
    rest = topic[len(prefix):]
    for channel in INBOUND:
        if rest == channel.value:
            return channel
    return None


def parse(channel: Channel, body: bytes, *, site: str, station_id: str) -> InboundPayload:
    """Check one inbound message against the contract; InboundError names every problem.

    The problems name fields and types, never values: a schedule carries patient data, and
    these messages reach the log.
    """
    model = INBOUND.get(channel)
    if model is None:
        raise InboundError(channel.value, ["not an inbound topic"])
    try:
        payload = model.model_validate_json(body)
    except ValidationError as exc:
        problems = [p.split("; got ")[0] for p in describe_validation_error(exc)]
        raise InboundError(channel.value, problems) from exc
    assert isinstance(payload, SchedulePayload | ConfigPayload | AckPayload | LookupResponse)
    if isinstance(payload, SchedulePayload | ConfigPayload) and (
        payload.site != site or payload.station_id != station_id
    ):
        raise InboundError(
            channel.value,
            [f"addressed to {payload.site}/{payload.station_id}, expected {site}/{station_id}"],
        )
    return payload


class LookupOutcome(StrEnum):
    FOUND = "found"
    NOT_FOUND = "not_found"  # the practice system answered: no such patient/appointment
    TIMED_OUT = "timed_out"  # no answer in time (practice system down?)


@dataclass(frozen=True)
class LookupResult:
    correlation_id: UUID
    outcome: LookupOutcome
    appointment: Appointment | None = None

    def describe(self) -> str:
        return {
            LookupOutcome.FOUND: "found",
            LookupOutcome.NOT_FOUND: "not found: the practice system has no patient or "
            "appointment for this barcode",
            LookupOutcome.TIMED_OUT: "no answer from the practice system; try again or pick "
            "the patient from the list",
        }[self.outcome]


@dataclass
class LookupTracker:
    """Outstanding barcode lookups by correlation id, each with a deadline."""

    timeout_s: float = 5.0
    _deadlines: dict[UUID, float] = field(default_factory=dict)

    def started(self, correlation_id: UUID, now_s: float) -> None:
        self._deadlines[correlation_id] = now_s + self.timeout_s

    def answered(self, response: LookupResponse) -> LookupResult | None:
        """The result for an answer we asked for; None for a late or unknown answer."""
        if self._deadlines.pop(response.correlation_id, None) is None:
            return None
        if response.found and response.appointment is not None:
            return LookupResult(response.correlation_id, LookupOutcome.FOUND,
                                response.appointment)
        return LookupResult(response.correlation_id, LookupOutcome.NOT_FOUND)

    def expired(self, now_s: float) -> list[LookupResult]:
        gone = [cid for cid, deadline in self._deadlines.items() if now_s >= deadline]
        for cid in gone:
            del self._deadlines[cid]
        return [LookupResult(cid, LookupOutcome.TIMED_OUT) for cid in gone]

    @property
    def outstanding(self) -> int:
        return len(self._deadlines)
