"""The running gateway: a shared MQTT 5 subscription in, the store, one sender to MLLP, acks out.

Threads: paho's network thread stores each message (committed before paho sends its PUBACK,
which it does when on_message returns), and one sender thread takes the store's queue in
order: HL7 out over MLLP, the ACK read, the outcome stored, the station's `ack` published.
"""

from __future__ import annotations

import hashlib
import json
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
from pydantic import ValidationError

from station.gateway.config import GatewaySettings
from station.gateway.hl7v2 import Ack, AckError, Hl7BuildError, adt_a04, oru_r01, oru_r01_alert
from station.gateway.hl7v2 import parse_ack as parse_hl7_ack
from station.gateway.mllp import MllpClient, MllpError
from station.gateway.store import GatewayStore, Offered, Row, RowState, SqliteGatewayStore
from station.sync.contract import (
    TOPIC_ROOT,
    AckPayload,
    AckStatus,
    AlertPayload,
    Channel,
    CheckinPayload,
    VitalsPayload,
    to_json,
    topic,
)

log = logging.getLogger(__name__)
HELP_REQUEST_SCHEMA = "rooming.help_request/1"  # station.sync.contract.HelpRequestPayload
LEASE_S = 15.0  # a sender that stops renewing for this long is replaced by another replica


def subscriptions(settings: GatewaySettings) -> list[str]:
    group = settings.broker.share_group
    return [f"$share/{group}/{TOPIC_ROOT}/+/+/{channel}" for channel in settings.broker.channels]


def _parse_topic(name: str) -> tuple[str, str, str] | None:
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        return None
    return parts[2], parts[3], parts[4]


class Translation:
    """What one stored message becomes: HL7 to send, or an outcome without sending."""

    def __init__(self, er7: str | None, *, skip_reason: str = "",
                 reject_reason: str = "") -> None:
        self.er7, self.skip_reason, self.reject_reason = er7, skip_reason, reject_reason


def translate(row: Row, settings: GatewaySettings, now: datetime) -> Translation:
    """The HL7 for a stored message, or why none is sent (pure, apart from the clock given)."""
    where = _parse_topic(row.topic)
    channel = where[2] if where else ""
    hl7 = settings.hl7
    try:
        if channel == Channel.VITALS:
            return Translation(oru_r01(VitalsPayload.model_validate_json(row.body), hl7,
                                       sent_at=now))
        if channel == Channel.CHECKIN:
            payload = CheckinPayload.model_validate_json(row.body)
            if hl7.checkin_message == "none":
                return Translation(None, skip_reason="check-ins are not sent to the EHR here")
            return Translation(adt_a04(payload, hl7, sent_at=now))
        if channel == Channel.ALERT:
            return Translation(oru_r01_alert(AlertPayload.model_validate_json(row.body), hl7,
                                             sent_at=now))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where_ = ".".join(str(p) for p in first["loc"])
        return Translation(None, reject_reason=(
            f"the practice gateway could not read this {channel or 'message'} "
            f"({where_}: {first['msg']})"))
    except Hl7BuildError as exc:
        return Translation(None, reject_reason=f"could not be turned into HL7 v2: {exc}")
    return Translation(None, reject_reason=f"the practice gateway takes no '{channel}' messages")


class Gateway:
    """One replica. `start()` connects and sends; `stop()` lets go of everything cleanly."""

    def __init__(self, settings: GatewaySettings, *, store: GatewayStore | None = None,
                 clock: Callable[[], float] = time.time,
                 on_outcome: Callable[[Row, RowState, str], None] | None = None) -> None:
        self.settings = settings
        self.store = store or SqliteGatewayStore(settings.store.path)
        self._clock = clock
        self._on_outcome = on_outcome
        # The broker allows one connection per client id, so the id names the replica: one
        # restarted after a crash takes its own lease back at once.
        self._holder = settings.broker.client_id
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._sender: threading.Thread | None = None
        self._mllp = MllpClient(settings.mllp.host, settings.mllp.port,
                                connect_timeout_s=settings.mllp.connect_timeout_s,
                                ack_timeout_s=settings.mllp.ack_timeout_s,
                                persistent=settings.mllp.connection == "persistent")
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
        self._wake.set()

    def _store(self, topic_name: str, body: bytes) -> None:
        where = _parse_topic(topic_name)
        if where is None:
            log.warning("ignored a message on %s: not a station topic", topic_name)
            return
        try:
            head = json.loads(body)
            message_id = str(UUID(str(head["message_id"])))
        except (ValueError, KeyError, TypeError):
            # No message_id: nothing to ack or dedupe on. Kept under a name of its content.
            message_id = "unreadable-" + hashlib.sha256(body).hexdigest()
            head = {}
        if isinstance(head, dict) and head.get("schema") == HELP_REQUEST_SCHEMA:
            # Lobby help requests are for the front desk's screen, not the chart.
            return
        offered = self.store.offer(message_id, topic_name, body, self._clock())
        if offered is Offered.DUPLICATE:
            log.info("duplicate message %s (QoS 1 redelivery or a station resend)", message_id)

    # ---------------------------------------------------------------------------- sending

    def _publish_ack(self, row: Row) -> None:
        where = _parse_topic(row.topic)
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

    def send_one(self) -> bool:
        """Send the head of the queue once; True if it reached an outcome (or none queued)."""
        row = self.store.next_queued()
        if row is None:
            return True
        now = datetime.fromtimestamp(self._clock(), UTC)
        translation = translate(row, self.settings, now)
        if translation.er7 is None:
            if translation.reject_reason:
                self._finish(row, RowState.REJECTED, translation.reject_reason)
            else:
                self._finish(row, RowState.FILED, "")
            return True
        try:
            ack: Ack = parse_hl7_ack(self._mllp.send(translation.er7))
        except (MllpError, AckError) as exc:
            self.store.attempt_failed(row.seq, str(exc), self._clock())
            log.warning("EHR delivery failed, will retry: %s", exc)
            return False
        if ack.accepted:
            self._finish(row, RowState.FILED, "")
        else:
            said = ack.text or "no reason given"
            self._finish(row, RowState.REJECTED, f"not filed by the EHR ({ack.code}): {said}")
        return True

    def _backoff(self, failures: int) -> float:
        mllp = self.settings.mllp
        return float(min(mllp.retry_max_s, mllp.retry_min_s * (2 ** max(0, failures - 1))))

    def _run_sender(self) -> None:
        failures = 0
        lease_until = 0.0
        while not self._stop.is_set():
            now = self._clock()
            if now >= lease_until - LEASE_S / 3:
                if not self.store.acquire_lease(self._holder, now, LEASE_S):
                    self._stop.wait(1.0)  # another replica sends; this one receives only
                    continue
                lease_until = now + LEASE_S
            self._flush_acks()
            if self.store.next_queued() is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            if self.send_one():
                failures = 0
            else:
                failures += 1
                self._stop.wait(self._backoff(failures))

    # --------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        broker = self.settings.broker
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = broker.session_expiry_s
        self.client.connect_async(broker.host, broker.port, keepalive=broker.keepalive_s,
                                  clean_start=False, properties=properties)
        self.client.loop_start()
        self._sender = threading.Thread(target=self._run_sender, name="gateway-sender",
                                        daemon=True)
        self._sender.start()

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._sender is not None:
            # A send under way finishes (ACK or timeout) before the sender looks at _stop.
            self._sender.join(self.settings.mllp.ack_timeout_s + 5)
        self.client.disconnect()
        self.client.loop_stop()
        if self._sender is not None and self._sender.is_alive():
            log.warning("the sender did not stop; its message stays queued for the next start")
            return
        self._mllp.close()
        self.store.release_lease(self._holder)
        self.store.close()
