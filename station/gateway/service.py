"""The running gateway: a shared MQTT 5 subscription in, the store, senders downstream, acks out.

Threads: paho's network thread stores each message (committed before paho sends its PUBACK,
which it does when on_message returns), and one sender thread per lane takes the store's
queue in order: the chart lane (vitals, check-ins) and the alert lane (critical-value and
screening alerts, help requests), so an alert never waits behind a chart message the EHR is
slow to take. Each sends what station.gateway.routing plans (HL7 over MLLP to the EHR or the
alerts listener, or a FHIR transaction), reads the answer, stores the outcome and publishes
the station's `ack`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from station.gateway.config import GatewayMllp, GatewaySettings
from station.gateway.fhir_rest import FhirClient, FhirDeliveryError
from station.gateway.hl7v2 import AckError
from station.gateway.hl7v2 import parse_ack as parse_hl7_ack
from station.gateway.mllp import MllpClient, MllpError
from station.gateway.routing import (
    HELP_REQUEST_SCHEMA,
    Destination,
    Part,
    Plan,
    lane_for,
    message_id_of,
    parse_topic,
    plan,
    schema_of,
)
from station.gateway.store import GatewayStore, Lane, Offered, Row, RowState, open_store
from station.sync.contract import TOPIC_ROOT, AckPayload, AckStatus, Channel, to_json, topic

log = logging.getLogger(__name__)
LEASE_S = 15.0  # a sender that stops renewing for this long is replaced by another replica
__all__ = ["HELP_REQUEST_SCHEMA", "Gateway", "plan", "subscriptions"]


def subscriptions(settings: GatewaySettings) -> list[str]:
    group = settings.broker.share_group
    return [f"$share/{group}/{TOPIC_ROOT}/+/+/{channel}" for channel in settings.broker.channels]


def _mllp_client(settings: GatewayMllp) -> MllpClient:
    return MllpClient(settings.host, settings.port, connect_timeout_s=settings.connect_timeout_s,
                      ack_timeout_s=settings.ack_timeout_s,
                      persistent=settings.connection == "persistent")


class _Downstream:
    """One lane's connections: each lane its own, so a slow EHR holds up only its lane."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self._mllp: dict[Destination, MllpClient] = {}
        self._fhir: FhirClient | None = None
        self._closed_connections = 0  # opened by clients since let go of (status, tests)

    def retry_limits(self, destination: Destination) -> tuple[float, float]:
        if destination is Destination.FHIR and self.settings.fhir is not None:
            return self.settings.fhir.retry_min_s, self.settings.fhir.retry_max_s
        listener = self._listener(destination)
        return listener.retry_min_s, listener.retry_max_s

    def _listener(self, destination: Destination) -> GatewayMllp:
        if destination is Destination.ALERTS and self.settings.alerts_mllp is not None:
            return self.settings.alerts_mllp
        return self.settings.mllp

    def send(self, part: Part) -> tuple[bool, str]:
        """(accepted, the refusal text); raises MllpError / AckError / FhirDeliveryError
        when it should be tried again."""
        if part.destination is Destination.FHIR:
            if self._fhir is None:
                if self.settings.fhir is None:
                    raise FhirDeliveryError("routes name fhir but there is no [fhir] section")
                self._fhir = FhirClient(self.settings.fhir)
            assert part.bundle is not None
            reply = self._fhir.post_transaction(part.bundle)
            if reply.accepted:
                return True, ""
            return False, f"not filed by the EHR (HTTP {reply.status}): {reply.text}"
        client = self._mllp.get(part.destination)
        if client is None:
            client = self._mllp[part.destination] = _mllp_client(self._listener(part.destination))
        ack = parse_hl7_ack(client.send(part.er7))
        if ack.accepted:
            return True, ""
        return False, f"not filed by the EHR ({ack.code}): {ack.text or 'no reason given'}"

    @property
    def connections_opened(self) -> int:
        return self._closed_connections + sum(c.connections_opened for c in self._mllp.values())

    def close(self) -> None:
        for client in self._mllp.values():
            client.close()
            self._closed_connections += client.connections_opened
        self._mllp.clear()


class Gateway:
    """One replica. `start()` connects and sends; `stop()` lets go of everything cleanly."""

    def __init__(self, settings: GatewaySettings, *, store: GatewayStore | None = None,
                 clock: Callable[[], float] = time.time,
                 on_outcome: Callable[[Row, RowState, str], None] | None = None) -> None:
        self.settings = settings
        self.store = store or open_store(settings.store)
        self._clock = clock
        self._on_outcome = on_outcome
        # The broker allows one connection per client id, so the id names the replica: one
        # restarted after a crash takes its own lease back at once.
        self._holder = settings.broker.client_id
        self._stop = threading.Event()
        self._wake = {lane: threading.Event() for lane in Lane}
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._senders: list[threading.Thread] = []
        self._downstream = {lane: _Downstream(settings) for lane in Lane}
        self._failed_at: dict[Lane, Destination] = {}
        # Both lanes' senders publish acks: one at a time.
        self._acks_lock = threading.Lock()
        self._inflight_acks: dict[int, paho.MQTTMessageInfo] = {}
        self.client = self._client()

    # ------------------------------------------------------------------------------ MQTT

    def _client(self) -> paho.Client:
        broker = self.settings.broker
        # Manual PUBACKs: a message is acknowledged to the broker only once it is stored.
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=broker.client_id,
                             protocol=paho.MQTTv5, manual_ack=True)
        if broker.require_tls or broker.ca_file is not None:
            client.tls_set(ca_certs=str(broker.ca_file) if broker.ca_file else None,
                           certfile=str(broker.cert_file) if broker.cert_file else None,
                           keyfile=str(broker.key_file) if broker.key_file else None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(1, 30)
        return client

    def _on_connect(self, client: paho.Client, userdata: object, flags: object,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            log.warning("broker refused the gateway: %s", reason)
            return
        self._connected.set()
        client.subscribe([(name, 1) for name in subscriptions(self.settings)])

    def _on_subscribe(self, client: paho.Client, userdata: object, mid: int,
                      reasons: list[ReasonCode], properties: Properties | None) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("broker refused the gateway's subscription: %s", ", ".join(refused))
            return
        self._subscribed.set()

    def _on_disconnect(self, client: paho.Client, userdata: object, flags: object,
                       reason: ReasonCode, properties: Properties | None) -> None:
        self._connected.clear()

    def _on_message(self, client: paho.Client, userdata: object,
                    message: paho.MQTTMessage) -> None:
        # PUBACK only once stored and committed: a store that fails leaves the message with
        # the broker, which sends it again on the next connection.
        try:
            self._store(message.topic, bytes(message.payload))
        except Exception:  # nothing may raise into paho
            log.exception("could not store a message from %s; not acknowledged", message.topic)
            return
        client.ack(message.mid, message.qos)
        self._wake[lane_for(message.topic)].set()

    def _store(self, topic_name: str, body: bytes) -> None:
        if parse_topic(topic_name) is None:
            log.warning("ignored a message on %s: not a station topic", topic_name)
            return
        # No message_id: nothing to ack or dedupe on. Kept under a name of its content, and
        # rejected when its turn comes (routing cannot read it).
        message_id = message_id_of(body) or "unreadable-" + hashlib.sha256(body).hexdigest()
        offered = self.store.offer(message_id, topic_name, body, self._clock(),
                                   lane_for(topic_name))
        if offered is Offered.DUPLICATE:
            log.info("duplicate message %s (QoS 1 redelivery or a station resend)", message_id)

    # ---------------------------------------------------------------------------- sending

    def _publish_ack(self, row: Row) -> None:
        where = parse_topic(row.topic)
        if where is None or row.message_id.startswith("unreadable-"):
            self.store.ack_published(row.seq)  # nobody to tell
            return
        site, station_id, _ = where
        status = AckStatus.RECEIVED if row.state is RowState.FILED else AckStatus.REJECTED
        ack = AckPayload(message_id=UUID(row.message_id), status=status, reason=row.reason,
                         acked_at=datetime.fromtimestamp(self._clock(), UTC))
        info = self.client.publish(topic(site, station_id, Channel.ACK), to_json(ack), qos=1)
        self._inflight_acks[row.seq] = info

    def _flush_acks(self) -> None:
        with self._acks_lock:
            self._flush_acks_locked()

    def _flush_acks_locked(self) -> None:
        for seq, info in list(self._inflight_acks.items()):
            if info.is_published():
                self.store.ack_published(seq)
                del self._inflight_acks[seq]
        if not self._connected.is_set():
            return
        for row in self.store.acks_to_publish():
            if row.seq not in self._inflight_acks:
                self._publish_ack(row)

    def _finish(self, row: Row, state: RowState, reason: str) -> None:
        self.store.finish(row.seq, state, reason, self._clock())
        if self._on_outcome is not None:
            self._on_outcome(row, state, reason)
        self._flush_acks()

    def send_one(self, lane: Lane | None = None) -> bool:
        """Send the head of the queue (of one lane, or of all) once; True if it reached an
        outcome (or nothing was queued), False if it is to be tried again later."""
        row = self.store.next_queued(lane)
        if row is None:
            return True
        now = datetime.fromtimestamp(self._clock(), UTC)
        planned: Plan = plan(row, self.settings, now)
        if planned.reject_reason:
            self._finish(row, RowState.REJECTED, planned.reject_reason)
            return True
        if not planned.parts:
            log.info("message %s (%s) filed without sending: %s", row.message_id,
                     schema_of(row.body) or "no schema", planned.skip_reason)
            self._finish(row, RowState.FILED, "")
            return True
        downstream = self._downstream[row.lane if lane is None else lane]
        for index in range(row.parts_done, len(planned.parts)):
            part = planned.parts[index]
            try:
                accepted, refusal = downstream.send(part)
            except (MllpError, AckError, FhirDeliveryError) as exc:
                self.store.attempt_failed(row.seq, str(exc), self._clock())
                self._failed_at[row.lane] = part.destination
                log.warning("delivery of %s (%s) to %s failed, will retry: %s", row.message_id,
                            part.label, part.destination.value, exc)
                return False
            if not accepted:
                if index > 0:  # the ones before it were filed: say which one was not
                    done = ", ".join(p.label for p in planned.parts[:index])
                    refusal = f"{refusal} (the {part.label}; the {done} before it was filed)"
                self._finish(row, RowState.REJECTED, refusal)
                return True
            if index + 1 < len(planned.parts):
                self.store.part_done(row.seq, index + 1)
        self._finish(row, RowState.FILED, "")
        return True

    def _backoff(self, lane: Lane, failures: int) -> float:
        low, high = self._downstream[lane].retry_limits(
            self._failed_at.get(lane, Destination.EHR))
        return float(min(high, low * (2 ** max(0, failures - 1))))

    def _run_sender(self, lane: Lane) -> None:
        failures = 0
        lease_until = 0.0
        wake = self._wake[lane]
        while not self._stop.is_set():
            try:
                now = self._clock()
                if now >= lease_until - LEASE_S / 3:
                    if not self.store.acquire_lease(self._holder, now, LEASE_S):
                        self._stop.wait(1.0)  # another replica sends; this one receives only
                        continue
                    lease_until = now + LEASE_S
                self._flush_acks()
                if self.store.next_queued(lane) is None:
                    wake.wait(0.5)
                    wake.clear()
                    continue
                if self.send_one(lane):
                    failures = 0
                    continue
            except Exception:  # a store that failed (database gone): keep going, later
                log.exception("the %s sender met an error; trying again", lane.value)
            failures += 1
            self._stop.wait(self._backoff(lane, failures))

    # --------------------------------------------------------------------------- lifecycle

    @property
    def connections_opened(self) -> int:
        """MLLP connections opened downstream since start, every lane and listener."""
        return sum(d.connections_opened for d in self._downstream.values())

    def start(self) -> None:
        broker = self.settings.broker
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = broker.session_expiry_s
        self.client.connect_async(broker.host, broker.port, keepalive=broker.keepalive_s,
                                  clean_start=False, properties=properties)
        self.client.loop_start()
        for lane in Lane:
            sender = threading.Thread(target=self._run_sender, args=(lane,),
                                      name=f"gateway-sender-{lane.value}", daemon=True)
            sender.start()
            self._senders.append(sender)

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        for wake in self._wake.values():
            wake.set()
        longest = max([self.settings.mllp.ack_timeout_s]
                      + ([self.settings.alerts_mllp.ack_timeout_s]
                         if self.settings.alerts_mllp else [])
                      + ([self.settings.fhir.timeout_s] if self.settings.fhir else []))
        for sender in self._senders:
            # A send under way finishes (answer or timeout) before the sender looks at _stop.
            sender.join(longest + 5)
        self.client.disconnect()
        self.client.loop_stop()
        if any(sender.is_alive() for sender in self._senders):
            log.warning("a sender did not stop; its message stays queued for the next start")
            return
        for downstream in self._downstream.values():
            downstream.close()
        self.store.release_lease(self._holder)
        self.store.close()
