"""The MQTT link against a real Mosquitto: delivery, outages, presence, acks, lookups."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties

from station.config import BrokerSection
from station.errors import ConfigError
from station.sync import payloads
from station.sync.contract import (
    AckPayload,
    AckStatus,
    Appointment,
    Channel,
    LookupKind,
    LookupResponse,
    to_json,
    topic,
)
from station.sync.inbound import LookupOutcome, LookupResult
from station.sync.mqtt import Inbound, MqttLink
from station.sync.outbox import DeliveryState, Outbox
from tests.fixtures.broker import Broker, start_broker
from tests.sync.consumer import Consumer, outbox_paths
from tests.sync.samples import AT, PATIENT, submission

pytestmark = pytest.mark.broker
SITE, STATION = "clinic-north", "exam-3"


def plain(broker: Broker) -> BrokerSection:
    return BrokerSection(host=broker.host, port=broker.port, require_tls=False)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(*outbox_paths(tmp_path))
    yield box
    box.close()


def vitals_bytes(message_id: uuid.UUID) -> bytes:
    return to_json(payloads.vitals(submission(), message_id=message_id, site=SITE,
                                   station_id=STATION, sent_at=AT))


def test_require_tls_refuses_a_broker_without_tls_settings(outbox: Outbox) -> None:
    with pytest.raises(ConfigError, match="refusing plain TCP"):
        MqttLink(BrokerSection(host="127.0.0.1", port=1883), site=SITE, station_id=STATION,
                 outbox=outbox)


def test_submissions_arrive_once_each_and_leave_the_outbox_only_after_puback(
    mosquitto_broker: Broker, outbox: Outbox
) -> None:
    consumer = Consumer(mosquitto_broker)
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id=STATION, outbox=outbox,
                    reconnect_min_s=0, reconnect_max_s=1)
    ids = [uuid.uuid4() for _ in range(20)]
    for mid in ids:  # queued while the link is not even started: nothing is lost
        link.submit(Channel.VITALS, vitals_bytes(mid), mid)
    assert outbox.stats().depth == 20
    link.start()
    try:
        assert consumer.wait_for({str(m) for m in ids}, 15) == set()
        deadline = time.monotonic() + 5
        while outbox.stats().depth and time.monotonic() < deadline:
            time.sleep(0.02)
        assert outbox.stats().depth == 0
        assert [outbox.state(m) for m in ids] == [DeliveryState.DELIVERED] * 20
        assert consumer.order == [str(m) for m in ids]  # order kept per station
        assert set(consumer.topics.values()) == {topic(SITE, STATION, Channel.VITALS)}
        body = consumer.bodies[str(ids[0])]
        assert body["schema"] == "rooming.vitals/1"
        assert body["patient"] == {"mrn": "TEST100001", "family_name": "ZZTEST",
                                   "given_name": "Alpha", "birth_date": "1970-01-02"}
    finally:
        link.stop()
        consumer.close()


def test_a_small_window_keeps_order_across_many_reads_and_purges_what_was_delivered(
    mosquitto_broker: Broker, outbox: Outbox
) -> None:
    consumer = Consumer(mosquitto_broker)
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id=STATION, outbox=outbox,
                    inflight_window=3)
    ids = [uuid.uuid4() for _ in range(40)]
    body = vitals_bytes(ids[0])
    for mid in ids:  # 14 reads of 3 rows, PUBACKs recorded in batches by the committer
        link.submit(Channel.VITALS, body.replace(str(ids[0]).encode(), str(mid).encode()), mid)
    link.start()
    try:
        assert consumer.wait_for({str(m) for m in ids}, 15) == set()
        assert consumer.order == [str(m) for m in ids]
        assert wait_until(lambda: link.delivered_count == 40)
        assert [outbox.state(m) for m in ids] == [DeliveryState.DELIVERED] * 40
        # Once PUBACKs stop, the delivered rows are overwritten and removed.
        assert wait_until(lambda: outbox.stats().purge_backlog == 0)
        assert outbox.stats().depth == 0
        assert outbox.pending() == []
    finally:
        link.stop()
        consumer.close()


def test_the_window_shrinks_to_the_receive_maximum_the_broker_grants(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "broker", extra="max_inflight_messages 5")
    box = Outbox(*outbox_paths(tmp_path))
    consumer = Consumer(broker)
    link = MqttLink(plain(broker), site=SITE, station_id=STATION, outbox=box)
    ids = [uuid.uuid4() for _ in range(12)]
    for mid in ids:
        link.submit(Channel.VITALS, json.dumps({"message_id": str(mid)}).encode(), mid)
    link.start()
    try:
        assert consumer.wait_for({str(m) for m in ids}, 15) == set()
        assert consumer.order == [str(m) for m in ids]
        assert link.inflight_limit == 4  # 5 granted, one kept for status/lookup messages
    finally:
        link.stop()
        consumer.close()
        box.close()
        broker.kill()


def test_stop_closes_every_socket_the_link_opened(
    mosquitto_broker: Broker, outbox: Outbox
) -> None:
    # Regression: paho's wake-up socket pair stayed open after stop() until the client was
    # garbage-collected, which failed unrelated tests with an unclosed-socket warning.
    def open_sockets() -> set[str]:
        fds = {}
        for fd in os.listdir("/proc/self/fd"):
            try:
                fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
            except FileNotFoundError:  # the directory listing's own descriptor
                continue
        return {f"{fd} {target}" for fd, target in fds.items() if target.startswith("socket:")}

    before = open_sockets()
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id=STATION, outbox=outbox)
    link.start()
    assert link.wait_connected(10)
    assert len(open_sockets() - before) >= 3  # the broker connection and paho's socket pair
    link.stop()
    assert open_sockets() - before == set()


def test_zero_loss_while_the_broker_is_stopped_and_restarted_several_times(
    persistent_broker: Broker, outbox: Outbox
) -> None:
    broker = persistent_broker
    consumer = Consumer(broker, persistent=True)
    link = MqttLink(plain(broker), site=SITE, station_id=STATION, outbox=outbox,
                    reconnect_min_s=0, reconnect_max_s=1)
    link.start()
    assert link.wait_connected(10)
    sent: list[uuid.UUID] = []
    stop = threading.Event()

    def producer() -> None:  # the MA keeps rooming patients through the outages
        while not stop.is_set():
            mid = uuid.uuid4()
            link.submit(Channel.VITALS, json.dumps({"message_id": str(mid)}).encode(), mid)
            sent.append(mid)
            time.sleep(0.004)

    thread = threading.Thread(target=producer)
    thread.start()
    try:
        for _ in range(4):
            time.sleep(0.4)
            broker.stop()
            time.sleep(0.4)
            broker.start()
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
    try:
        assert len(sent) > 300
        # The subscriber (a persistent session, like the practice system's) sees every one.
        assert consumer.wait_for({str(m) for m in sent}, 30) == set()
        deadline = time.monotonic() + 10
        while outbox.stats().depth and time.monotonic() < deadline:
            time.sleep(0.05)
        assert outbox.stats().depth == 0
        assert {outbox.state(m) for m in sent} == {DeliveryState.DELIVERED}
    finally:
        link.stop()
        consumer.close()


class Practice:
    """The practice system's integration client: answers lookups, sends acks, schedules."""

    def __init__(self, broker: Broker) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="practice-system",
                                  protocol=paho.MQTTv5)
        self.requests: list[tuple[dict[str, object], Properties | None]] = []
        self.statuses: list[dict[str, object]] = []
        ready = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [("rooming/v1/+/+/lookup", 1), ("rooming/v1/+/+/status", 1)])
        self.client.on_subscribe = lambda c, u, mid, rcs, p: ready.set()
        self.client.on_message = self._on_message
        self.client.connect_async(broker.host, broker.port)
        self.client.loop_start()
        assert ready.wait(10)
        self.known: dict[str, Appointment] = {}

    def _on_message(self, client: paho.Client, userdata: object,
                    message: paho.MQTTMessage) -> None:
        body = json.loads(message.payload)
        if message.topic.endswith("/status"):
            self.statuses.append(body)
            return
        self.requests.append((body, message.properties))
        props = message.properties
        appointment = self.known.get(body["barcode"])
        response = LookupResponse(correlation_id=uuid.UUID(bytes=props.CorrelationData),
                                  found=appointment is not None, appointment=appointment)
        client.publish(props.ResponseTopic, to_json(response), 1)

    def publish(self, channel: Channel, body: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic(SITE, STATION, channel), body, 1, retain=retain)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(predicate: object, timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_received_by_the_practice_system_only_after_its_ack(
    mosquitto_broker: Broker, outbox: Outbox
) -> None:
    acks: list[AckPayload] = []
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id=STATION, outbox=outbox,
                    handlers=Inbound(on_ack=acks.append))
    practice = Practice(mosquitto_broker)
    link.start()
    try:
        mid = uuid.uuid4()
        link.submit(Channel.VITALS, vitals_bytes(mid), mid)
        assert wait_until(lambda: outbox.state(mid) == DeliveryState.DELIVERED)
        # The broker has it, but the practice system has not filed it yet.
        assert outbox.stats().delivered_awaiting_ack == 1
        ack = AckPayload(message_id=mid, status=AckStatus.RECEIVED, acked_at=AT)
        practice.publish(Channel.ACK, to_json(ack))
        assert wait_until(lambda: outbox.state(mid) == DeliveryState.RECEIVED)
        assert acks == [ack]
        assert outbox.stats().delivered_awaiting_ack == 0
    finally:
        link.stop()
        practice.close()


def test_a_rejected_ack_is_never_shown_as_received(
    mosquitto_broker: Broker, outbox: Outbox
) -> None:
    # Regression: the outbox recorded every ack, whatever its status, so a message the practice
    # system could not file read back as "received by the practice system".
    acks: list[AckPayload] = []
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id=STATION, outbox=outbox,
                    handlers=Inbound(on_ack=acks.append))
    practice = Practice(mosquitto_broker)
    link.start()
    try:
        mid = uuid.uuid4()
        link.submit(Channel.VITALS, vitals_bytes(mid), mid)
        assert wait_until(lambda: outbox.state(mid) == DeliveryState.DELIVERED)
        rejected = AckPayload(message_id=mid, status=AckStatus.REJECTED, acked_at=AT,
                              reason="no open encounter")
        practice.publish(Channel.ACK, to_json(rejected))
        assert wait_until(lambda: acks == [rejected])
        assert outbox.state(mid) == DeliveryState.DELIVERED
        assert outbox.stats().delivered_awaiting_ack == 1
    finally:
        link.stop()
        practice.close()


def test_barcode_lookup_found_not_found_and_timeout(
    mosquitto_broker: Broker, outbox: Outbox
) -> None:
    results: list[LookupResult] = []
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id=STATION, outbox=outbox,
                    handlers=Inbound(on_lookup=results.append), lookup_timeout_s=1.0)
    practice = Practice(mosquitto_broker)
    appointment = Appointment(appointment_id="APT-0001", patient=PATIENT, starts_at=AT,
                              reason="follow-up")
    practice.known["TEST100001"] = appointment
    link.start()
    assert link.wait_connected(10)
    try:
        found = link.request_lookup("TEST100001", LookupKind.WRISTBAND)
        assert wait_until(lambda: len(results) == 1)
        assert results[0] == LookupResult(found, LookupOutcome.FOUND, appointment)
        request, props = practice.requests[0]
        assert props is not None
        assert props.ResponseTopic == topic(SITE, STATION, Channel.LOOKUP_RESPONSE)
        assert uuid.UUID(bytes=props.CorrelationData) == found
        assert request["correlation_id"] == str(found)  # repeated for MQTT 3.1.1 readers

        missing = link.request_lookup("TEST999999", LookupKind.WRISTBAND)
        assert wait_until(lambda: len(results) == 2)
        assert results[1] == LookupResult(missing, LookupOutcome.NOT_FOUND)
        assert "not found" in results[1].describe()

        practice.close()  # nobody answers any more
        silent = link.request_lookup("TEST100001", LookupKind.WRISTBAND)
        assert wait_until(lambda: len(results) == 3, 5)
        assert results[2] == LookupResult(silent, LookupOutcome.TIMED_OUT)
    finally:
        link.stop()


def test_birth_status_is_retained_with_the_queue_depth_and_a_bad_config_is_refused(
    mosquitto_broker: Broker, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        mid = uuid.uuid4()
        outbox.put(mid, topic(SITE, "elsewhere", Channel.VITALS), b"{}")
    practice = Practice(mosquitto_broker)
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id=STATION, outbox=outbox)
    link.start()
    try:
        assert wait_until(lambda: any(s["presence"] == "online" for s in practice.statuses))
        birth = next(s for s in practice.statuses if s["presence"] == "online")
        assert birth["outbox_depth"] in (0, 1, 2, 3)
        assert birth["schema"] == "rooming.status/1"
        bad = {"schema": "rooming.config/1", "message_id": str(uuid.uuid4()), "site": SITE,
               "station_id": STATION, "sent_at": AT.isoformat(),
               "settings": {"display": {"weight_unit": "stone"}}}
        with caplog.at_level(logging.ERROR, logger="station.sync.mqtt"):
            practice.publish(Channel.CONFIG, json.dumps(bad).encode(), retain=True)
            assert wait_until(lambda: any(s.get("config_problems") for s in practice.statuses))
        refusal = next(s for s in practice.statuses if s.get("config_problems"))
        assert refusal["config_rejected_message_id"] == bad["message_id"]
        assert refusal["config_problems"] == [
            "settings.display.weight_unit: Input should be 'kg' or 'lb'"]
        assert "config: refused: settings.display.weight_unit" in caplog.text
    finally:
        link.stop()
        practice.close()
    # A clean stop leaves the retained status saying offline.
    late = Practice(mosquitto_broker)
    try:
        assert wait_until(lambda: bool(late.statuses))
        assert late.statuses[-1]["presence"] == "offline"
    finally:
        late.close()


def test_a_message_is_not_recorded_delivered_before_its_puback(
    mosquitto_broker: Broker, outbox: Outbox
) -> None:
    """MQTT 5.0 §4.3.2 (QoS 1): the sender owns the message until it receives the PUBACK.
    The broker is paused (SIGSTOP) after the connect: the PUBLISH goes out, no PUBACK comes
    back, and the outbox must still hold the message as queued; once the broker runs again its
    PUBACK arrives and only then is the message delivered."""
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id=STATION, outbox=outbox,
                    reconnect_min_s=0, reconnect_max_s=1)
    link.start()
    assert mosquitto_broker.proc is not None
    try:
        assert link.wait_connected(10)
        mosquitto_broker.proc.send_signal(signal.SIGSTOP)
        try:
            mid = uuid.uuid4()
            link.submit(Channel.VITALS, vitals_bytes(mid), mid)
            deadline = time.monotonic() + 5
            while link.awaiting_puback == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert link.awaiting_puback == 1  # published, its PUBACK outstanding
            time.sleep(0.3)  # time for a wrong early "delivered" to be committed
            assert outbox.state(mid) is DeliveryState.QUEUED
            assert outbox.stats().depth == 1
        finally:
            mosquitto_broker.proc.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 5
        while outbox.state(mid) is not DeliveryState.DELIVERED and time.monotonic() < deadline:
            time.sleep(0.02)
        assert outbox.state(mid) is DeliveryState.DELIVERED
    finally:
        link.stop()
