"""The MQTT adapter: drains the outbox to the broker with QoS 1 and receives the practice side.

paho-mqtt 2.x, callback API v2, MQTT 5 with a 3.1.1 fallback. The caller never waits on the
network: `submit` commits to the outbox and returns. One worker thread owns all sending
state; paho's callbacks only hand events to it through a queue (paho calls `on_publish`
while holding its own lock, so doing work there invites deadlocks). The parts: the
connection (station/sync/connection.py: paho, TLS, will), the outbox pump (pump.py: the
window in flight, PUBACKs recorded by a committer thread so the sending never waits for an
fsync) and the inbound router (router.py). Logs carry message ids and counts, never payloads.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import paho.mqtt.client as paho
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from station.config import BoundDevice, BrokerSection
from station.errors import ConfigError
from station.sync import inbound
from station.sync.announce import Announcer
from station.sync.connection import (
    QOS,
    UNSUPPORTED_PROTOCOL,
    ErrorLogger,
    describe_connect_error,
    make_client,
    tls_context,
)
from station.sync.contract import (
    Channel,
    LookupKind,
    Presence,
    topic,
)
from station.sync.outbox import Outbox
from station.sync.pump import NOT_AUTHORIZED, OutboxPump
from station.sync.router import Inbound, InboundRouter

__all__ = ["Inbound", "MqttLink", "describe_connect_error", "tls_context"]

log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MqttLink:
    """One broker connection per station; client id = station id."""

    def __init__(
        self,
        broker: BrokerSection,
        *,
        site: str,
        station_id: str,
        outbox: Outbox,
        handlers: Inbound | None = None,
        devices: Sequence[BoundDevice] = (),
        inflight_window: int = 100,
        reconnect_min_s: int = 1,
        reconnect_max_s: int = 30,
        lookup_timeout_s: float = 5.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if broker.require_tls and broker.ca_file is None:
            raise ConfigError(
                "[broker]",
                [
                    "require_tls is true but no ca_file is set: refusing plain TCP to the "
                    "broker (set ca_file, or require_tls = false on a lab bench only)"
                ],
            )
        self._broker = broker
        self._site = site
        self._station_id = station_id
        self._outbox = outbox
        self._devices = tuple(devices)
        # Each bound device's presence as its link last reported it (worker thread only): a
        # reconnect re-publishes that, never "online" for a device nobody has heard from.
        self._device_presence: dict[str, tuple[Presence, str]] = {
            d.id: (Presence.OFFLINE, d.profile) for d in self._devices
        }
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._clock = clock
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._protocol = paho.MQTTv311 if broker.protocol == "mqttv311" else paho.MQTTv5
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._client: paho.Client | None = None
        self._last_transport_error = ""
        self._connack_refused = False  # the broker answered CONNACK with a refusal
        self._paho_errors = ErrorLogger(self._paho_error)
        self._lookups = inbound.LookupTracker(timeout_s=lookup_timeout_s)
        self._pump = OutboxPump(
            outbox,
            inflight_window,
            wake=lambda: self._events.put(("wake", None)),
            acks_ready=lambda: self._events.put(("puback", None)),
        )
        self._router = InboundRouter(
            site=site,
            station_id=station_id,
            outbox=outbox,
            handlers=handlers or Inbound(),
            lookups=self._lookups,
            status_changed=self._publish_status,
        )
        self._suback_refusal: ReasonCode | None = None
        self._announcer = Announcer(
            site=site,
            station_id=station_id,
            outbox=outbox,
            clock=clock,
            problem=lambda: self.problem,
            config_rejection=lambda: self._router.config_rejection,
        )

    # ------------------------------------------------------------------ public, any thread

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def inflight_limit(self) -> int:
        """Queued rows awaiting PUBACK at most on this connection (the window, lowered to
        the broker's Receive Maximum less the slot kept for status messages)."""
        return self._pump.send_window

    @property
    def awaiting_puback(self) -> int:
        """Messages handed to the broker whose PUBACK has not come back."""
        return self._pump.awaiting_puback

    @property
    def delivered_count(self) -> int:
        """PUBACKs recorded, for status and the benchmark."""
        return self._pump.delivered_count

    @property
    def problem(self) -> str:
        """Why the broker takes nothing from this station although it is connected, for
        staff (biomed screen, diagnostics, the status topic); "" when all is well."""
        refusals = [r for r in (self._suback_refusal, self._pump.refusal) if r is not None]
        if not refusals:
            return ""
        what = "subscriptions" if self._suback_refusal is not None else "messages"
        if any(r.value == NOT_AUTHORIZED for r in refusals):
            return (
                f"not authorised — station id and certificate disagree: the broker refuses "
                f"this station's {what} for station id '{self._station_id}' (the client "
                "certificate's name must be the station id)"
            )
        return f"the broker refuses this station's {what}: {refusals[0]}"

    @property
    def resent_count(self) -> int:
        """Messages published again for want of the practice system's ack."""
        return self._pump.resent_count

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def start(self) -> None:
        self._client = self._make_client()
        self._stopping.clear()
        self._worker = threading.Thread(target=self._run, name="mqtt-outbox", daemon=True)
        self._pump.start()
        self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Say goodbye (retained offline status, no last will) and stop both threads."""
        self._stopping.set()
        self._events.put(("stop", None))
        if self._worker is not None:
            self._worker.join(timeout_s)
        self._pump.stop(timeout_s)  # after the worker: it may have handed over PUBACKs
        client = self._client
        if client is not None:
            if self._connected.is_set():
                info = client.publish(
                    self._announcer.status_topic,
                    self._announcer.status_bytes(Presence.OFFLINE),
                    QOS,
                    retain=True,
                )
                try:
                    info.wait_for_publish(timeout_s)
                except (RuntimeError, ValueError):
                    log.warning("offline status not confirmed before shutdown")
            client.disconnect()
            client.loop_stop()
            # paho closes its wake-up socket pair only when the client object is collected;
            # the client sits in a reference cycle, so that can be much later (an unclosed
            # socket warning). Close them now: the link is finished with this client.
            client._reset_sockets()
        self._connected.clear()

    def submit(self, channel: Channel, payload_json: bytes, message_id: UUID) -> None:
        """Queue one station message durably; returns once committed (the MA's "saved")."""
        self._outbox.put(message_id, topic(self._site, self._station_id, channel), payload_json)
        self._events.put(("wake", None))

    def request_lookup(self, barcode: str, kind: LookupKind) -> UUID:
        """Ask the practice system who a barcode is; the answer (found, not found, timed out)
        comes to `Inbound.on_lookup`. Not queued: a lookup is only useful right now."""
        correlation_id = uuid.uuid4()
        self._events.put(("lookup", (correlation_id, barcode, kind)))
        return correlation_id

    def device_presence(self, device_id: str, presence: Presence, profile: str = "") -> None:
        self._events.put(("device", (device_id, presence, profile)))

    # ------------------------------------------------------------------ paho callbacks

    def _make_client(self) -> paho.Client:
        return make_client(
            self._broker,
            client_id=self._station_id,
            protocol=self._protocol,
            will=(self._announcer.status_topic, self._announcer.status_bytes(Presence.OFFLINE)),
            inflight_window=self._pump.window,
            reconnect=self._reconnect,
            callbacks={
                "on_connect": self._on_connect,
                "on_connect_fail": self._on_connect_fail,
                "on_disconnect": self._on_disconnect,
                "on_publish": self._on_publish,
                "on_message": self._on_message,
                "on_subscribe": self._on_subscribe,
                "on_pre_connect": lambda client, userdata: self._announcer.prepare_will(client),
            },
            errors=self._paho_errors,
        )

    def _where(self) -> str:
        return f"MQTT {self._broker.host}:{self._broker.port}"

    def _paho_error(self, record: logging.LogRecord) -> None:
        # e.g. "failed to receive on socket: [SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]";
        # kept for the disconnect line, where it explains why the broker hung up.
        self._last_transport_error = record.getMessage()

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError:` block, so the exception is at hand.
        exc = sys.exc_info()[1]
        log.error("%s: cannot connect: %s", self._where(), describe_connect_error(exc))

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._refused_connect(reason_code)
            return
        self._last_transport_error = ""
        self._suback_refusal = None
        for channel in (Channel.SCHEDULE, Channel.CONFIG, Channel.ACK, Channel.LOOKUP_RESPONSE):
            client.subscribe(topic(self._site, self._station_id, channel), QOS)
        self._announcer.publish_status(client, True)
        self._connected.set()
        log.info(
            "%s: connected (%s)",
            self._where(),
            "MQTT 5" if self._protocol == paho.MQTTv5 else "MQTT 3.1.1",
        )
        granted = getattr(properties, "ReceiveMaximum", None) if properties else None
        self._events.put(("connected", granted))

    def _refused_connect(self, reason_code: ReasonCode) -> None:
        # Said here with its reason; the disconnect that follows is not another error.
        self._connack_refused = True
        unsupported = reason_code.value == UNSUPPORTED_PROTOCOL or (
            self._protocol == paho.MQTTv311 and reason_code.value == 1
        )
        if unsupported and self._broker.protocol == "auto" and self._protocol == paho.MQTTv5:
            log.warning("%s: broker does not speak MQTT 5; falling back to 3.1.1", self._where())
            self._events.put(("fallback", None))
            return
        hint = ""
        if unsupported and self._broker.protocol == "mqttv5":
            hint = " (protocol = mqttv5 is set: use auto or mqttv311 for a 3.1.1 broker)"
        log.error("%s: broker refused the connection: %s%s", self._where(), reason_code, hint)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        connack_refused, self._connack_refused = self._connack_refused, False
        if self._stopping.is_set():
            return
        if was_connected:
            log.warning(
                "%s: connection lost (%s); reconnecting with backoff", self._where(), reason_code
            )
        elif not connack_refused:
            why = self._last_transport_error or "the broker closed the connection"
            if self._broker.ca_file is None:
                why += " (this station uses plain TCP: is the port a TLS listener?)"
            log.error("%s: connection refused before CONNACK: %s", self._where(), why)
        self._events.put(("disconnected", None))

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._pump.on_publish(mid, reason_code)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [rc for rc in reason_codes if rc.is_failure]
        if refused:
            self._suback_refusal = refused[0]
            log.error("%s: broker refused a subscription (%s): %s", self._where(), refused[0],
                      self.problem)
            self._events.put(("status", None))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        channel = inbound.channel_of(message.topic, self._site, self._station_id)
        if channel is None:
            return
        self._events.put(("inbound", (channel, bytes(message.payload))))

    # ------------------------------------------------------------------ worker thread

    def _next_batch(self) -> list[tuple[str, Any]]:
        """The next event and every one already waiting, so a window of PUBACKs is one
        commit; a tick when nothing came for half a second."""
        try:
            if self._pump.acks_waiting():
                # Acks arrived while this thread was busy and the batch is complete: paho's
                # thread will not signal it, so take it now.
                first = self._events.get_nowait()
            else:
                first = self._events.get(timeout=0.5)
        except queue.Empty:
            first = ("tick", None)
        batch = [first]
        while len(batch) < 4 * self._pump.window:
            try:
                batch.append(self._events.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        last_status = time.monotonic()
        depth_published = -1
        while not self._stopping.is_set():
            batch = self._next_batch()
            try:
                self._pump.record_acks()
            except Exception:
                log.exception("MQTT worker: PUBACKs not taken yet; retried on the next event")
            for kind, data in batch:
                if kind == "puback":
                    continue
                try:
                    # Each event on its own: one that fails never takes the others with it.
                    self._handle(kind, data)
                except Exception:
                    log.exception("MQTT worker: error handling one %s event; the others go on",
                                  kind)
            try:
                self._router.expire_lookups(time.monotonic())
                if self.connected and self._client is not None:
                    self._pump.fill(self._client, lambda: self.connected)
                    # Keep the retained status honest: when the queue empties, else every
                    # 30 s (counting rows on every event would cost more than the sending).
                    depth = self._outbox.stats().depth if self._pump.idle else -1
                    stale = time.monotonic() - last_status > 30
                    if stale or (depth >= 0 and depth != depth_published):
                        self._publish_status()
                        depth_published, last_status = depth, time.monotonic()
            except Exception:
                # The worker must survive anything (a full disk is logged by the outbox
                # error and retried on the next event); it never takes the station down.
                log.exception("MQTT outbox worker: error handling %s", batch[0][0])
                time.sleep(0.5)

    def _handle(self, kind: str, data: Any) -> None:
        if kind == "connected":
            self._pump.new_connection(data if isinstance(data, int) else None)
            for device_id, (presence, profile) in sorted(self._device_presence.items()):
                self._publish_device(device_id, presence, profile)
        elif kind == "inbound":
            self._router.route(*data)
        elif kind == "lookup":
            self._lookup(*data)
        elif kind == "device":
            device_id, presence, profile = data
            self._device_presence[device_id] = (presence, profile)
            self._publish_device(device_id, presence, profile)
        elif kind == "status":
            self._publish_status()
        elif kind == "fallback":
            old = self._client
            self._protocol = paho.MQTTv311
            self._pump.forget_client()
            if old is not None:
                old.disconnect()
                old.loop_stop()
            self._client = self._make_client()

    def _lookup(self, correlation_id: UUID, barcode: str, kind: LookupKind) -> None:
        self._lookups.started(correlation_id, time.monotonic())
        if self._client is None or not self.connected:
            return  # the tracker times it out and the MA is told to pick from the list
        self._announcer.publish_lookup(
            self._client, self._protocol == paho.MQTTv5, correlation_id, barcode, kind
        )

    def _publish_status(self) -> None:
        self._announcer.publish_status(self._client, self.connected)

    def _publish_device(self, device_id: str, presence: Presence, profile: str) -> None:
        self._announcer.publish_device(self._client, self.connected, device_id, presence, profile)
