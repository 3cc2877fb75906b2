"""TLS and ACL against a real Mosquitto with mutual TLS and the deployment ACL."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from station.config import BrokerSection
from station.sync.contract import Channel, topic
from station.sync.mqtt import MqttLink
from station.sync.outbox import DeliveryState, Outbox
from tests.fixtures.broker import Broker, CertFiles, make_pki
from tests.sync.consumer import Consumer, outbox_paths

pytestmark = pytest.mark.broker
SITE = "clinic-north"


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(*outbox_paths(tmp_path))
    yield box
    box.close()


def tls_settings(broker: Broker, cert: CertFiles | None, ca: Path | None = None) -> BrokerSection:
    assert broker.pki is not None
    return BrokerSection(
        host=broker.host, port=broker.port, require_tls=True, ca_file=ca or broker.pki.ca,
        cert_file=cert.cert if cert else None, key_file=cert.key if cert else None,
    )


def attempt(settings: BrokerSection, outbox: Outbox, caplog: pytest.LogCaptureFixture,
            station_id: str = "exam-3", wait_s: float = 1.5) -> tuple[bool, list[str]]:
    link = MqttLink(settings, site=SITE, station_id=station_id, outbox=outbox,
                    reconnect_min_s=1, reconnect_max_s=2)
    with caplog.at_level(logging.INFO, logger="station.sync.mqtt"):
        link.start()
        connected = link.wait_connected(wait_s)
        link.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "station.sync.mqtt"]
    return connected, lines


def test_a_valid_client_certificate_connects(tls_broker: Broker, outbox: Outbox,
                                             caplog: pytest.LogCaptureFixture) -> None:
    assert tls_broker.pki is not None
    connected, lines = attempt(tls_settings(tls_broker, tls_broker.pki.client("exam-3")),
                               outbox, caplog, wait_s=10)
    assert connected
    assert f"MQTT 127.0.0.1:{tls_broker.port}: connected (MQTT 5)" in lines


def test_a_certificate_from_another_ca_is_refused_with_a_clear_line(
    tls_broker: Broker, outbox: Outbox, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    rogue = make_pki(tmp_path / "rogue", "rogue-ca").client("exam-3")
    connected, lines = attempt(tls_settings(tls_broker, rogue), outbox, caplog)
    assert not connected
    refused = [line for line in lines if "connection refused before CONNACK" in line]
    assert refused, lines
    assert "unknown ca" in refused[0].lower()


def test_an_expired_client_certificate_is_refused_with_a_clear_line(
    tls_broker: Broker, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    assert tls_broker.pki is not None
    expired = tls_broker.pki.client("exam-3", expired=True)
    connected, lines = attempt(tls_settings(tls_broker, expired), outbox, caplog)
    assert not connected
    refused = [line for line in lines if "connection refused before CONNACK" in line]
    assert refused, lines
    assert "certificate expired" in refused[0].lower()


def test_a_broker_certificate_the_station_does_not_trust_is_refused(
    tls_broker: Broker, outbox: Outbox, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    assert tls_broker.pki is not None
    other_ca = make_pki(tmp_path / "other", "other-ca").ca
    connected, lines = attempt(tls_settings(tls_broker, tls_broker.pki.client("exam-3"),
                                            ca=other_ca), outbox, caplog)
    assert not connected
    assert any("cannot connect: TLS: the broker's certificate was not accepted "
               "(self-signed certificate in certificate chain)" in line for line in lines), lines


def test_plain_tcp_against_the_tls_listener_is_refused_with_a_clear_line(
    tls_broker: Broker, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    settings = BrokerSection(host=tls_broker.host, port=tls_broker.port, require_tls=False)
    connected, lines = attempt(settings, outbox, caplog)
    assert not connected
    assert any(
        line.startswith(f"MQTT 127.0.0.1:{tls_broker.port}: connection refused before CONNACK")
        and line.endswith("(this station uses plain TCP: is the port a TLS listener?)")
        for line in lines
    ), lines


def raw_client(broker: Broker, identity: str) -> paho.Client:
    assert broker.pki is not None
    cert = broker.pki.client(identity)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=identity, protocol=paho.MQTTv5)
    client.tls_set(ca_certs=str(broker.pki.ca), certfile=str(cert.cert), keyfile=str(cert.key))
    return client


def test_a_station_cannot_publish_to_another_stations_topics(
    acl_broker: Broker, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    assert acl_broker.pki is not None
    practice = Consumer(acl_broker, identity="practice-system")
    own, foreign = uuid.uuid4(), uuid.uuid4()
    outbox.put(foreign, topic(SITE, "exam-4", Channel.VITALS),
               json.dumps({"message_id": str(foreign)}).encode())
    outbox.put(own, topic(SITE, "exam-3", Channel.VITALS),
               json.dumps({"message_id": str(own)}).encode())
    link = MqttLink(tls_settings(acl_broker, acl_broker.pki.client("exam-3")), site=SITE,
                    station_id="exam-3", outbox=outbox)
    try:
        with caplog.at_level(logging.ERROR, logger="station.sync.mqtt"):
            link.start()
            assert practice.wait_for({str(own)}, 10) == set()
            deadline = time.monotonic() + 5
            while "broker refused message" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(0.3)
        assert practice.distinct() == {str(own)}
        # Refused is not delivered: it stays queued for biomed to see, it is not dropped.
        assert outbox.state(foreign) == DeliveryState.QUEUED
        assert outbox.state(own) == DeliveryState.DELIVERED
        assert f"broker refused message {foreign} (Not authorized); kept in the outbox" in (
            caplog.text)
    finally:
        link.stop()
        practice.close()


def test_a_station_cannot_read_another_stations_schedule(acl_broker: Broker) -> None:
    received: dict[str, list[str]] = {"exam-3": [], "exam-4": []}
    granted: dict[str, list[int]] = {}
    clients = []
    ready = threading.Barrier(3, timeout=10)
    schedule_topic = topic(SITE, "exam-3", Channel.SCHEDULE)
    for identity in ("exam-3", "exam-4"):
        client = raw_client(acl_broker, identity)

        def on_subscribe(c: paho.Client, u: object, mid: int, codes: list[object], p: object,
                         identity: str = identity) -> None:
            granted[identity] = [code.value for code in codes]  # type: ignore[attr-defined]
            ready.wait()

        client.on_connect = lambda c, u, f, rc, p: c.subscribe(schedule_topic, 1)
        client.on_subscribe = on_subscribe
        client.on_message = (lambda c, u, m, identity=identity:
                             received[identity].append(m.payload.decode()))
        client.connect_async(acl_broker.host, acl_broker.port)
        client.loop_start()
        clients.append(client)
    practice = raw_client(acl_broker, "practice-system")
    try:
        ready.wait()
        # Mosquitto 2.0 grants the subscription but filters delivery by the read ACL.
        assert granted["exam-3"] == [1]
        practice.connect(acl_broker.host, acl_broker.port)
        practice.loop_start()
        practice.publish(schedule_topic, b'{"probe": 1}', 1, retain=True).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while not received["exam-3"] and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        assert received == {"exam-3": ['{"probe": 1}'], "exam-4": []}
    finally:
        for client in (*clients, practice):
            client.disconnect()
            client.loop_stop()


def test_only_the_audit_consumer_reads_a_stations_audit_trail(
    acl_broker: Broker, outbox: Outbox
) -> None:
    """Issue #17: the `audit` topic has its own ACL — stations publish, only the practice's
    audit consumer reads. The deployment ACL denies it to the practice system's integration
    account, which reads everything else (`deny` comes before any grant: mosquitto.conf(5),
    acl_file section)."""
    assert acl_broker.pki is not None
    auditor = Consumer(acl_broker, "rooming/v1/+/+/audit", identity="practice-audit",
                       client_id="audit-consumer")
    practice = Consumer(acl_broker, identity="practice-system")
    record, vitals = uuid.uuid4(), uuid.uuid4()
    outbox.put(record, topic(SITE, "exam-3", Channel.AUDIT),
               json.dumps({"message_id": str(record)}).encode())
    outbox.put(vitals, topic(SITE, "exam-3", Channel.VITALS),
               json.dumps({"message_id": str(vitals)}).encode())
    link = MqttLink(tls_settings(acl_broker, acl_broker.pki.client("exam-3")), site=SITE,
                    station_id="exam-3", outbox=outbox)
    try:
        link.start()
        assert auditor.wait_for({str(record)}, 10) == set()
        assert practice.wait_for({str(vitals)}, 10) == set()
        time.sleep(0.3)
        assert auditor.distinct() == {str(record)}
        assert practice.distinct() == {str(vitals)}  # never the audit record
        assert outbox.state(record) == DeliveryState.DELIVERED
    finally:
        link.stop()
        auditor.close()
        practice.close()
