"""The inbound router: each message from the practice side (schedule, config, ack, lookup
answer) parsed on its own and handed to the app's handler; a refused config is remembered so
the station's status can say why."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from station.sync import inbound
from station.sync.contract import (
    AckPayload,
    AckStatus,
    Channel,
    ConfigPayload,
    LookupResponse,
    SchedulePayload,
)
from station.sync.outbox import Outbox

log = logging.getLogger("station.sync.mqtt")

_MESSAGE_ID = re.compile(
    rb'"message_id"\s*:\s*"([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})"'
)


@dataclass(frozen=True)
class Inbound:
    """What the app wants to hear about. Called on the MQTT worker thread: hand over to
    the UI loop (Kivy Clock) before touching a widget."""

    on_schedule: Callable[[SchedulePayload], None] | None = None
    on_config: Callable[[ConfigPayload], None] | None = None
    on_ack: Callable[[AckPayload], None] | None = None
    on_lookup: Callable[[inbound.LookupResult], None] | None = None
    # Every reason a contract-valid config cannot run on this station (unknown profile, ...);
    # a non-empty answer refuses the push as a contract error does, before `on_config`.
    check_config: Callable[[ConfigPayload], Sequence[str]] | None = None


def call(handler: Callable[[Any], None] | None, value: Any) -> None:
    """A handler's failure is logged, never raised into the worker."""
    if handler is None:
        return
    try:
        handler(value)
    except Exception:
        log.exception("MQTT inbound handler failed")


class InboundRouter:
    def __init__(
        self,
        *,
        site: str,
        station_id: str,
        outbox: Outbox,
        handlers: Inbound,
        lookups: inbound.LookupTracker,
        status_changed: Callable[[], None],
    ) -> None:
        """`status_changed` republishes the station's status (a config refused or accepted)."""
        self._site = site
        self._station_id = station_id
        self._outbox = outbox
        self._handlers = handlers
        self._lookups = lookups
        self._status_changed = status_changed
        self.config_rejection: tuple[UUID, tuple[str, ...]] | None = None

    def route(self, channel: Channel, body: bytes) -> None:
        try:
            payload = inbound.parse(channel, body, site=self._site, station_id=self._station_id)
        except inbound.InboundError as exc:
            log.error("%s", exc)
            if channel == Channel.CONFIG:
                self._reject_config(body, exc.problems)
            return
        if isinstance(payload, AckPayload):
            if payload.status != AckStatus.RECEIVED:
                # Not filed: the message must never read as "received by the practice
                # system", and is not resent. The reason is the practice system's text: not
                # logged (may name the patient); it is kept with the message for the MA.
                log.warning("practice system could not file message %s", payload.message_id)
                self._outbox.rejected(payload.message_id, payload.reason)
            elif not self._outbox.acknowledged(payload.message_id):
                log.warning(
                    "ack for message %s, which this station did not deliver", payload.message_id
                )
            call(self._handlers.on_ack, payload)
        elif isinstance(payload, SchedulePayload):
            log.info("schedule received: %d appointments", len(payload.appointments))
            call(self._handlers.on_schedule, payload)
        elif isinstance(payload, ConfigPayload):
            problems = self._check_config(payload)
            if problems:
                log.error("config %s refused: %s", payload.message_id, "; ".join(problems))
                self.config_rejection = (payload.message_id, tuple(problems))
                self._status_changed()
                return
            log.info("config %s accepted", payload.message_id)
            if self.config_rejection is not None:
                self.config_rejection = None
                self._status_changed()
            call(self._handlers.on_config, payload)
        elif isinstance(payload, LookupResponse):
            result = self._lookups.answered(payload)
            if result is not None:
                call(self._handlers.on_lookup, result)

    def expire_lookups(self, now_s: float) -> None:
        for result in self._lookups.expired(now_s):
            call(self._handlers.on_lookup, result)

    def _check_config(self, payload: ConfigPayload) -> list[str]:
        check = self._handlers.check_config
        if check is None:
            return []
        try:
            return list(check(payload))
        except Exception as exc:  # a check that breaks refuses the push, never the worker
            log.exception("config check failed")
            return [f"could not be checked: {type(exc).__name__}"]

    def _reject_config(self, body: bytes, problems: list[str]) -> None:
        # The refused body is not parsed again (it may be what broke the parser): its
        # message id is looked for as text, in its first kilobytes.
        found = _MESSAGE_ID.search(body[:4096])
        rejected = UUID(found.group(1).decode()) if found else UUID(int=0)
        self.config_rejection = (rejected, tuple(problems))
        self._status_changed()
