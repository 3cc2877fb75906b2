"""The MQTT adapter: drains the outbox to the broker with QoS 1 and receives the practice side.

paho-mqtt 2.x, callback API v2, MQTT 5 with a 3.1.1 fallback. The caller never waits on the
network: `submit` commits to the outbox and returns. One worker thread owns all sending
state; paho's callbacks only hand events to it through a queue (paho calls `on_publish`
while holding its own lock, so doing work there invites deadlocks). A row leaves the outbox
only on the broker's PUBACK, recorded by a committer thread so the sending never waits for
an fsync. Logs carry message ids and counts, never payloads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import ssl
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from station.config import BoundDevice, BrokerSection
from station.errors import ConfigError
from station.sync import inbound, payloads
from station.sync.contract import (
    AckPayload,
    AckStatus,
    Channel,
    ConfigPayload,
    LookupKind,
    LookupResponse,
    Presence,
    SchedulePayload,
    device_status_topic,
    to_json,
    topic,
)
from station.sync.outbox import Outbox

log = logging.getLogger(__name__)

COMMIT_BACKLOG_WINDOWS = 4  # PUBACKed-but-not-yet-recorded rows allowed, in windows
COMMIT_GATHER_S = 0.01  # at most this long spent gathering a window of PUBACKs per commit
# Overwriting a delivered 15 kB row costs more than sending it, so it waits until no PUBACK
# has come for this long, and goes in batches small enough not to delay an MA's "saved".
PURGE_AFTER_IDLE_S = 0.2
PURGE_BATCH = 64
# PUBACKs handed to the worker per wake-up (fewer when that is all that is in flight): the
# window refills a batch at a time instead of one slot per PUBACK.
ACK_BATCH = 16
QOS = 1  # a clinical record may arrive twice (dedup by message_id), never zero times
UNSUPPORTED_PROTOCOL = 132  # MQTT 5 CONNACK reason; a 3.1.1 broker answers return code 1


@dataclass(frozen=True)
class Inbound:
    """What the app wants to hear about. Called on the MQTT worker thread: hand over to
    the UI loop (Kivy Clock) before touching a widget."""

    on_schedule: Callable[[SchedulePayload], None] | None = None
    on_config: Callable[[ConfigPayload], None] | None = None
    on_ack: Callable[[AckPayload], None] | None = None
    on_lookup: Callable[[inbound.LookupResult], None] | None = None


def _utc_now() -> datetime:
    return datetime.now(UTC)


def describe_connect_error(exc: BaseException | None) -> str:
    """A connection failure in words a biomed or IT person can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate was not accepted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running on this port?)"
    if isinstance(exc, OSError):
        return f"network error ({exc.strerror or exc})"
    return "unknown error"


class _ClosingSSLSocket(ssl.SSLSocket):
    """paho leaves the socket open when the TLS handshake fails; over days of retries that
    leaks one file descriptor per attempt. Close it before the error propagates."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


class _StationTlsContext(ssl.SSLContext):
    sslsocket_class = _ClosingSSLSocket


def tls_context(broker: BrokerSection) -> ssl.SSLContext:
    """Verify the broker against the practice CA (hostname included); mutual TLS if a client
    certificate is configured."""
    context = _StationTlsContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(broker.ca_file))
    if broker.cert_file is not None and broker.key_file is not None:
        context.load_cert_chain(str(broker.cert_file), str(broker.key_file))
    return context


class _ErrorLogger(logging.Logger):
    """paho's logger for one link: ERROR records go to `sink`, nothing else is formatted
    (debug lines stop at the level check) and nothing propagates to the station's logs."""

    def __init__(self, sink: Callable[[logging.LogRecord], None]) -> None:
        super().__init__("station.sync.mqtt.paho", logging.ERROR)
        self.propagate = False
        self._sink = sink

    def handle(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # never raise into paho's loop
            self._sink(record)


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
                ["require_tls is true but no ca_file is set: refusing plain TCP to the "
                 "broker (set ca_file, or require_tls = false on a lab bench only)"],
            )
        self._broker = broker
        self._site = site
        self._station_id = station_id
        self._outbox = outbox
        self._handlers = handlers or Inbound()
        self._devices = tuple(devices)
        # QoS 1 messages awaiting PUBACK, at most; 100 is what deploy/mosquitto grants
        # (max_inflight_messages, sent as MQTT 5 Receive Maximum). A broker that grants
        # fewer lowers it for that connection (`_send_window`): paho does not.
        self._window = inflight_window
        self._send_window = inflight_window
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._clock = clock
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        # PUBACKs from paho's thread: deque appends and pops are atomic, so no lock; the
        # flag says a "puback" event is already on its way to the worker.
        self._acks: deque[tuple[int, ReasonCode]] = deque()
        self._acks_signalled = False
        self._protocol = (
            paho.MQTTv311 if broker.protocol == "mqttv311" else paho.MQTTv5
        )
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._client: paho.Client | None = None
        self._last_transport_error = ""
        self._connack_refused = False  # the broker answered CONNACK with a refusal
        self._paho_errors = _ErrorLogger(self._paho_error)
        self._lookups = inbound.LookupTracker(timeout_s=lookup_timeout_s)
        self._config_rejection: tuple[UUID, tuple[str, ...]] | None = None
        # Worker-thread state only:
        # Message ids as the outbox's stored text (`Outbox.window`): no UUID objects built,
        # hashed or formatted per message on the sending path.
        self._inflight: dict[int, str] = {}  # paho mid -> message id awaiting PUBACK
        self._inflight_ids: set[str] = set()
        self._refused: set[str] = set()  # broker said no (ACL); retried on the next connect
        # PUBACKed, delivery not yet committed: handed to the committer thread, which
        # records them in one transaction per batch while the worker keeps sending.
        # Guarded by `_commit_cond`; not resent meanwhile.
        self._acked: set[str] = set()
        self._to_commit: list[str] = []
        self._commit_cond = threading.Condition()
        self._committer: threading.Thread | None = None
        self._committer_stop = False
        # Rows read from the outbox (in send order) but not yet handed to paho: one read
        # per window of messages instead of one per PUBACK. A cache only; the rows stay in
        # the database until their PUBACK.
        # (seq, message id, topic, payload, retain)
        self._ahead: deque[tuple[int, str, str, bytes, bool]] = deque()
        self._after_seq = 0  # the last seq read into `_ahead`
        self.delivered_count = 0  # PUBACKs handled, for status and the benchmark

    # ------------------------------------------------------------------ public, any thread

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def inflight_limit(self) -> int:
        """Queued rows awaiting PUBACK at most on this connection (the window, lowered to
        the broker's Receive Maximum less the slot kept for status messages)."""
        return self._send_window

    @property
    def awaiting_puback(self) -> int:
        """Messages handed to the broker whose PUBACK has not come back (len() is atomic)."""
        return len(self._inflight)

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def start(self) -> None:
        self._client = self._make_client()
        self._stopping.clear()
        self._worker = threading.Thread(target=self._run, name="mqtt-outbox", daemon=True)
        self._committer_stop = False
        self._committer = threading.Thread(target=self._commit_loop, name="mqtt-outbox-commit",
                                           daemon=True)
        self._committer.start()
        self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Say goodbye (retained offline status, no last will) and stop both threads."""
        self._stopping.set()
        self._events.put(("stop", None))
        if self._worker is not None:
            self._worker.join(timeout_s)
        # After the worker: it may have handed over a last batch of PUBACKs.
        with self._commit_cond:
            self._committer_stop = True
            self._commit_cond.notify()
        if self._committer is not None:
            self._committer.join(timeout_s)
        client = self._client
        if client is not None:
            if self._connected.is_set():
                info = client.publish(
                    self._status_topic, self._status_bytes(Presence.OFFLINE), QOS, retain=True
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

    @property
    def _status_topic(self) -> str:
        return topic(self._site, self._station_id, Channel.STATUS)

    def _make_client(self) -> paho.Client:
        broker = self._broker
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._station_id,
            protocol=self._protocol,
            clean_session=None if self._protocol == paho.MQTTv5 else True,
        )
        if broker.ca_file is not None:
            client.tls_set_context(tls_context(broker))
        if broker.username is not None:
            password = None
            if broker.password_file is not None:
                password = broker.password_file.read_text(encoding="utf-8").strip()
            client.username_pw_set(broker.username, password)
        client.will_set(
            self._status_topic, self._status_bytes(Presence.OFFLINE), QOS, retain=True
        )
        client.max_inflight_messages_set(self._window)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(*self._reconnect)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        # paho's errors via a logger that stops at ERROR, not `on_log`: with `on_log` set,
        # paho formats a debug line for every PUBLISH and PUBACK (a string per message that
        # bare paho does not build).
        client.enable_logger(self._paho_errors)
        client.connect_async(broker.host, broker.port, keepalive=broker.keepalive_s)
        client.loop_start()
        return client

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
            # Said here with its reason; the disconnect that follows is not another error.
            self._connack_refused = True
            unsupported = reason_code.value == UNSUPPORTED_PROTOCOL or (
                self._protocol == paho.MQTTv311 and reason_code.value == 1
            )
            if unsupported and self._broker.protocol == "auto" and self._protocol == paho.MQTTv5:
                log.warning("%s: broker does not speak MQTT 5; falling back to 3.1.1",
                            self._where())
                self._events.put(("fallback", None))
                return
            hint = ""
            if unsupported and self._broker.protocol == "mqttv5":
                hint = " (protocol = mqttv5 is set: use auto or mqttv311 for a 3.1.1 broker)"
            log.error("%s: broker refused the connection: %s%s", self._where(), reason_code,
                      hint)
            return
        self._last_transport_error = ""
        for channel in (Channel.SCHEDULE, Channel.CONFIG, Channel.ACK, Channel.LOOKUP_RESPONSE):
            client.subscribe(topic(self._site, self._station_id, channel), QOS)
        client.publish(self._status_topic, self._status_bytes(Presence.ONLINE), QOS, retain=True)
        self._connected.set()
        log.info("%s: connected (%s)", self._where(),
                 "MQTT 5" if self._protocol == paho.MQTTv5 else "MQTT 3.1.1")
        granted = getattr(properties, "ReceiveMaximum", None) if properties else None
        self._events.put(("connected", granted))

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
            log.warning("%s: connection lost (%s); reconnecting with backoff", self._where(),
                        reason_code)
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
        # One append per PUBACK and one wake-up per batch: the worker takes every PUBACK
        # waiting when it wakes (a Queue.put per PUBACK cost more than the sending).
        self._acks.append((mid, reason_code))
        if not self._acks_signalled and self._acks_due():
            self._acks_signalled = True
            self._events.put(("puback", None))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        channel = inbound.channel_of(message.topic, self._site, self._station_id)
        if channel is None:
            return
        self._events.put(("inbound", (channel, bytes(message.payload))))

    # ------------------------------------------------------------------ worker thread

    def _status_bytes(self, presence: Presence) -> bytes:
        depth: int | None = None
        age: float | None = None
        now = self._clock()
        if presence == Presence.ONLINE:
            stats = self._outbox.stats()
            depth, age = stats.depth, stats.oldest_age_s(now)
        rejected_id, problems = self._config_rejection or (None, ())
        status = payloads.status(
            presence,
            message_id=uuid.uuid4(),
            site=self._site,
            station_id=self._station_id,
            sent_at=now,
            outbox_depth=depth,
            oldest_undelivered_age_s=age,
        )
        if rejected_id is not None:
            status = status.model_copy(
                update={"config_rejected_message_id": rejected_id, "config_problems": problems}
            )
        return to_json(status)

    def _run(self) -> None:
        last_status = time.monotonic()
        depth_published = -1
        while not self._stopping.is_set():
            try:
                if self._acks and self._acks_due():
                    # Acks arrived while this thread was busy and the batch is complete:
                    # paho's thread will not signal it, so take it now.
                    kind, data = self._events.get_nowait()
                else:
                    kind, data = self._events.get(timeout=0.5)
            except queue.Empty:
                kind, data = "tick", None
            try:
                # Take every event already waiting, so a window of PUBACKs is one commit.
                batch = [(kind, data)]
                while len(batch) < 4 * self._window:
                    try:
                        batch.append(self._events.get_nowait())
                    except queue.Empty:
                        break
                self._pubacks(self._take_acks())
                for kind, data in batch:
                    if kind != "puback":
                        self._handle(kind, data)
                for result in self._lookups.expired(time.monotonic()):
                    self._call(self._handlers.on_lookup, result)
                if self.connected:
                    self._fill_window()
                    # Keep the retained status honest: when the queue empties, else every
                    # 30 s (counting rows on every event would cost more than the sending).
                    idle = not self._inflight and not self._uncommitted()
                    depth = self._outbox.stats().depth if idle else -1
                    stale = time.monotonic() - last_status > 30
                    if stale or (depth >= 0 and depth != depth_published):
                        self._publish_status()
                        depth_published, last_status = depth, time.monotonic()
            except Exception:
                # The worker must survive anything (a full disk is logged by the outbox
                # error and retried on the next event); it never takes the station down.
                log.exception("MQTT outbox worker: error handling %s", kind)
                time.sleep(0.5)

    def _call(self, handler: Callable[[Any], None] | None, value: Any) -> None:
        if handler is None:
            return
        try:
            handler(value)
        except Exception:
            log.exception("MQTT inbound handler failed")

    def _handle(self, kind: str, data: Any) -> None:
        if kind == "connected":
            # Keep a slot for the status/lookup/device messages paho sends beside the rows.
            granted = data if isinstance(data, int) else self._window + 1
            self._send_window = max(1, min(self._window, granted - 1))
            # A fresh connection: resend everything still queued that paho does not hold.
            self._ahead.clear()
            self._after_seq = 0
            self._refused.clear()
            for device in self._devices:
                self._publish_device(device.id, Presence.ONLINE, device.profile)
        elif kind == "inbound":
            self._inbound(*data)
        elif kind == "lookup":
            self._lookup(*data)
        elif kind == "device":
            self._publish_device(*data)
        elif kind == "fallback":
            old = self._client
            self._protocol = paho.MQTTv311
            self._inflight.clear()
            self._inflight_ids.clear()
            self._ahead.clear()
            self._after_seq = 0
            if old is not None:
                old.disconnect()
                old.loop_stop()
            self._client = self._make_client()

    def _fill_window(self) -> None:
        client = self._client
        if client is None:
            return
        # Backpressure: when recording PUBACKs falls behind by more than a few windows, wait
        # for the committer (it wakes this worker) instead of piling up rows the broker has.
        if self._uncommitted() >= COMMIT_BACKLOG_WINDOWS * self._window:
            return
        while self.connected and len(self._inflight) < self._send_window:
            if not self._ahead:
                rows = self._outbox.window(self._window, self._after_seq)
                if not rows:
                    return
                self._after_seq = rows[-1][0]
                # Skip what is in flight, refused or acked-not-yet-recorded (re-read after a
                # reconnect), once per read under one lock, not per row: a row outside those
                # sets now cannot enter them before this thread publishes it (only its own
                # PUBACK would put it there).
                inflight, refused = self._inflight_ids, self._refused
                with self._commit_cond:
                    acked = self._acked
                    self._ahead.extend(
                        row for row in rows if row[1] not in inflight
                        and row[1] not in refused and row[1] not in acked
                    )
                continue
            row = self._ahead.popleft()
            _, message_id, row_topic, body, retain = row
            info = client.publish(row_topic, body, QOS, retain=retain)
            # NO_CONN still queues it in paho, which sends it on reconnect.
            if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
                log.warning("publish of %s not accepted by paho (rc %s); retried later",
                            message_id, info.rc)
                self._ahead.appendleft(row)  # first in line again: order is kept
                return
            self._inflight[info.mid] = message_id
            self._inflight_ids.add(message_id)

    def _acks_due(self) -> bool:
        """A batch of PUBACKs is waiting, or every row in flight is acked (no more will
        come to fill the batch). Read on both threads; len() of a deque/dict is atomic."""
        return len(self._acks) >= min(ACK_BATCH, len(self._inflight))

    def _take_acks(self) -> list[tuple[int, ReasonCode]]:
        # Clear the flag before draining: a PUBACK appended after this is either drained
        # now or signalled anew (at worst one spare wake-up), never left behind.
        self._acks_signalled = False
        acks = []
        while self._acks:
            acks.append(self._acks.popleft())
        return acks

    def _pubacks(self, acks: list[tuple[int, ReasonCode]]) -> None:
        if not acks:
            return
        delivered: list[str] = []
        for mid, reason_code in acks:
            message_id = self._inflight.pop(mid, None)
            if message_id is None:
                continue  # a status or lookup message; nothing queued to remove
            self._inflight_ids.discard(message_id)
            if reason_code.is_failure:
                # Kept in the outbox: a refused message is not a delivered one (ACL, quota).
                self._refused.add(message_id)
                log.error("broker refused message %s (%s); kept in the outbox", message_id,
                          reason_code)
                continue
            delivered.append(message_id)
        if delivered:
            with self._commit_cond:
                self._acked.update(delivered)
                self._to_commit.extend(delivered)
                self._commit_cond.notify()

    def _uncommitted(self) -> int:
        with self._commit_cond:
            return len(self._acked)

    def _commit_loop(self) -> None:
        """The committer thread: record PUBACKs, everything waiting in one transaction (the
        longer an fsync takes, the more PUBACKs the next one covers). On an outbox error the
        ids are kept and retried; at stop, one last try, then they are left to be resent on
        the next start (at least once, never lost). When no PUBACK has come for a while, it
        overwrites delivered rows (`Outbox.purge`), a small batch at a time."""
        purge_due = True  # rows delivered before a restart are purged too
        purging = False  # purge batches back to back until a PUBACK comes
        while True:
            with self._commit_cond:
                if not self._to_commit and not self._committer_stop:
                    wait_s = None if not purge_due else 0.0 if purging else PURGE_AFTER_IDLE_S
                    self._commit_cond.wait(wait_s)
                if self._committer_stop and not self._to_commit:
                    return
                # While PUBACKs stream in, gather up to a window of them: a commit's cost
                # is mostly the index pages it rewrites, so 160 ids in one transaction cost
                # half the CPU per id of 40. A short wait: the rows stay queued (and would
                # be resent) until this commit, so only the bookkeeping waits.
                deadline = time.monotonic() + COMMIT_GATHER_S
                while (self._to_commit and len(self._to_commit) < self._window
                       and not self._committer_stop):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._commit_cond.wait(left)
                batch, self._to_commit = self._to_commit, []
            if batch:
                purging = False
                try:
                    self._outbox.delivered(*batch)
                except Exception:
                    log.exception("MQTT outbox: %d deliveries not recorded yet; retrying",
                                  len(batch))
                    with self._commit_cond:
                        if self._committer_stop:
                            return
                        self._to_commit[:0] = batch
                        self._commit_cond.wait(0.5)
                    continue
                with self._commit_cond:
                    self._acked.difference_update(batch)
                self.delivered_count += len(batch)
                purge_due = True
                self._events.put(("wake", None))  # room for more if the worker held back
                continue
            try:
                purge_due = purging = self._outbox.purge(PURGE_BATCH) == PURGE_BATCH
            except Exception:
                log.exception("MQTT outbox: delivered rows not purged yet; retrying")
                purging = False
                with self._commit_cond:
                    self._commit_cond.wait(0.5)

    def _inbound(self, channel: Channel, body: bytes) -> None:
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
                # system". The reason is the practice system's text: not logged (may name
                # the patient); the handler shows it to staff.
                log.warning("practice system could not file message %s", payload.message_id)
            elif not self._outbox.acknowledged(payload.message_id):
                log.warning("ack for message %s, which this station did not deliver",
                            payload.message_id)
            self._call(self._handlers.on_ack, payload)
        elif isinstance(payload, SchedulePayload):
            log.info("schedule received: %d appointments", len(payload.appointments))
            self._call(self._handlers.on_schedule, payload)
        elif isinstance(payload, ConfigPayload):
            log.info("config %s accepted", payload.message_id)
            if self._config_rejection is not None:
                self._config_rejection = None
                self._publish_status()
            self._call(self._handlers.on_config, payload)
        elif isinstance(payload, LookupResponse):
            result = self._lookups.answered(payload)
            if result is not None:
                self._call(self._handlers.on_lookup, result)

    def _reject_config(self, body: bytes, problems: list[str]) -> None:
        try:
            rejected = UUID(str(json.loads(body).get("message_id")))
        except (ValueError, TypeError, AttributeError):
            rejected = UUID(int=0)
        self._config_rejection = (rejected, tuple(problems))
        self._publish_status()

    def _lookup(self, correlation_id: UUID, barcode: str, kind: LookupKind) -> None:
        client = self._client
        reply_to = topic(self._site, self._station_id, Channel.LOOKUP_RESPONSE)
        self._lookups.started(correlation_id, time.monotonic())
        if client is None or not self.connected:
            return  # the tracker times it out and the MA is told to pick from the list
        request = payloads.lookup_request(
            barcode, kind, reply_to=reply_to, correlation_id=correlation_id,
            message_id=uuid.uuid4(), site=self._site, station_id=self._station_id,
            sent_at=self._clock(),
        )
        properties = None
        if self._protocol == paho.MQTTv5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.ResponseTopic = reply_to
            properties.CorrelationData = correlation_id.bytes
        client.publish(topic(self._site, self._station_id, Channel.LOOKUP), to_json(request),
                       QOS, properties=properties)

    def _publish_status(self) -> None:
        if self._client is not None and self.connected:
            self._client.publish(self._status_topic, self._status_bytes(Presence.ONLINE), QOS,
                                 retain=True)

    def _publish_device(self, device_id: str, presence: Presence, profile: str) -> None:
        if self._client is None or not self.connected:
            return
        body = payloads.device_status(
            device_id, presence, profile=profile, message_id=uuid.uuid4(), site=self._site,
            station_id=self._station_id, sent_at=self._clock(),
        )
        self._client.publish(device_status_topic(self._site, self._station_id, device_id),
                             to_json(body), QOS, retain=True)
