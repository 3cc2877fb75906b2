"""What the station says about itself on the broker: its retained status (birth, regular
updates, goodbye and the last will, in one numbered order), each bound device's presence, and
barcode lookups (MQTT 5 request/response). Runs on the link's worker thread, except
`prepare_will`, which paho calls on its own thread just before each CONNECT."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from station.sync import payloads
from station.sync.connection import QOS
from station.sync.contract import (
    Channel,
    LookupKind,
    Presence,
    device_status_topic,
    to_json,
    topic,
)
from station.sync.outbox import Outbox

log = logging.getLogger("station.sync.mqtt")


class Announcer:
    def __init__(
        self,
        *,
        site: str,
        station_id: str,
        outbox: Outbox,
        clock: Callable[[], datetime],
        problem: Callable[[], str],
        config_rejection: Callable[[], tuple[UUID, tuple[str, ...]] | None],
    ) -> None:
        self._site = site
        self._station_id = station_id
        self._outbox = outbox
        self._clock = clock
        self._problem = problem
        self._config_rejection = config_rejection
        # This connection's birth sequence; its will and goodbye carry the next number.
        self._birth_sequence = 0

    @property
    def status_topic(self) -> str:
        return topic(self._site, self._station_id, Channel.STATUS)

    def prepare_will(self, client: paho.Client) -> None:
        """Before each CONNECT (paho's on_pre_connect): number this connection's status
        messages (persisted, so larger is newer across restarts) and register its will."""
        self._birth_sequence = 2 * self._outbox.next_status_sequence()
        client.will_set(self.status_topic, self.status_bytes(Presence.OFFLINE), QOS, retain=True)

    def status_bytes(self, presence: Presence) -> bytes:
        now = self._clock()
        online = presence == Presence.ONLINE
        status = payloads.status(
            presence,
            message_id=uuid.uuid4(),
            site=self._site,
            station_id=self._station_id,
            sent_at=now,
            sequence=self._birth_sequence + (0 if online else 1),
            stats=self._outbox.stats() if online else None,
            problem=self._problem() if online else "",
        )
        rejection = self._config_rejection()
        if rejection is not None:
            rejected_id, problems = rejection
            status = status.model_copy(
                update={"config_rejected_message_id": rejected_id, "config_problems": problems}
            )
        return to_json(status)

    def publish_status(self, client: paho.Client | None, connected: bool) -> None:
        if client is not None and connected:
            client.publish(self.status_topic, self.status_bytes(Presence.ONLINE), QOS,
                           retain=True)

    def publish_device(self, client: paho.Client | None, connected: bool, device_id: str,
                       presence: Presence, profile: str) -> None:
        if client is None or not connected:
            return
        body = payloads.device_status(
            device_id,
            presence,
            profile=profile,
            message_id=uuid.uuid4(),
            site=self._site,
            station_id=self._station_id,
            sent_at=self._clock(),
        )
        client.publish(
            device_status_topic(self._site, self._station_id, device_id),
            to_json(body),
            QOS,
            retain=True,
        )

    def publish_lookup(self, client: paho.Client, mqtt5: bool, correlation_id: UUID,
                       barcode: str, kind: LookupKind) -> None:
        reply_to = topic(self._site, self._station_id, Channel.LOOKUP_RESPONSE)
        request = payloads.lookup_request(
            barcode,
            kind,
            reply_to=reply_to,
            correlation_id=correlation_id,
            message_id=uuid.uuid4(),
            site=self._site,
            station_id=self._station_id,
            sent_at=self._clock(),
        )
        properties = None
        if mqtt5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.ResponseTopic = reply_to
            properties.CorrelationData = correlation_id.bytes
        client.publish(
            topic(self._site, self._station_id, Channel.LOOKUP),
            to_json(request),
            QOS,
            properties=properties,
        )
