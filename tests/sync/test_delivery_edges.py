"""Delivery at the edges (#13) against a real Mosquitto — most of it with the shipped
deploy/mosquitto/mosquitto.conf and ACL: what the broker acknowledged survives its crash,
a station keeps a message until the practice acks it, one bad row or one bad inbound message
never stops the rest, a certificate cannot knock another station off, a station whose id
and certificate disagree says so, and status messages carry their order."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from station.config import BrokerSection
from station.sync.contract import AckPayload, Channel, to_json, topic
from station.sync.mqtt import Inbound, MqttLink
from station.sync.outbox import AckPolicy, DeliveryState, Outbox
from tests.fixtures.broker import REPO, Broker
from tests.sync.consumer import Consumer, outbox_paths
from tests.sync.samples import AT

pytestmark = pytest.mark.broker
SITE = "clinic-north"


def wait_until(predicate: Callable[[], object], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def tls(broker: Broker, identity: str) -> BrokerSection:
    assert broker.pki is not None
    cert = broker.pki.client(identity)
    return BrokerSection(host=broker.host, port=broker.port, require_tls=True,
                         ca_file=broker.pki.ca, cert_file=cert.cert, key_file=cert.key)


def plain(broker: Broker) -> BrokerSection:
    return BrokerSection(host=broker.host, port=broker.port, require_tls=False)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(*outbox_paths(tmp_path))
    yield box
    box.close()


def body(mid: uuid.UUID) -> bytes:
    return json.dumps({"message_id": str(mid)}).encode()


def ack(practice: paho.Client, station: str, mid: uuid.UUID) -> None:
    payload = AckPayload(message_id=mid, acked_at=AT)
    practice.publish(topic(SITE, station, Channel.ACK), to_json(payload), 1).wait_for_publish(5)


def practice_client(broker: Broker, identity: str = "practice-system") -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=identity, protocol=paho.MQTTv5)
    if broker.pki is not None:
        cert = broker.pki.client(identity)
        client.tls_set(ca_certs=str(broker.pki.ca), certfile=str(cert.cert),
                       keyfile=str(cert.key))
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set()
    client.connect_async(broker.host, broker.port)
    client.loop_start()
    assert connected.wait(10)
    return client


# ------------------------------------------------------------------ the shipped broker config


def test_what_the_broker_acknowledged_survives_its_crash_with_the_shipped_config(
    deploy_broker: Broker, outbox: Outbox
) -> None:
    # Regression (#13): persistence without autosave wrote to disk every 30 minutes; with the
    # practice consumer offline and the broker killed, 210 of 915 PUBACKed messages vanished.
    away = Consumer(deploy_broker, "rooming/v1/+/+/vitals", persistent=True,
                    client_id="practice-system")
    away.close()  # the practice's gateway is down; its session keeps what arrives
    link = MqttLink(tls(deploy_broker, "exam-3"), site=SITE, station_id="exam-3",
                    outbox=outbox)
    sent = [uuid.uuid4() for _ in range(40)]
    link.start()
    try:
        for mid in sent:
            link.submit(Channel.VITALS, body(mid), mid)
        assert wait_until(lambda: outbox.stats().delivered_awaiting_ack == len(sent))
    finally:
        link.stop()
    deploy_broker.kill()  # SIGKILL: no orderly save on the way out
    deploy_broker.start()
    back = Consumer(deploy_broker, "rooming/v1/+/+/vitals", persistent=True,
                    client_id="practice-system")
    try:
        assert back.wait_for({str(m) for m in sent}, 15) == set()
    finally:
        back.close()


def test_a_certificate_cannot_take_another_stations_client_id(
    deploy_broker: Broker, outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression (#13): a client with exam-a's certificate and client id "exam-b" disconnected
    # the real exam-b, 5 times out of 5. With use_username_as_clientid its client id is its CN.
    link = MqttLink(tls(deploy_broker, "exam-b"), site=SITE, station_id="exam-b",
                    outbox=outbox)
    link.start()
    try:
        assert link.wait_connected(10)
        caplog.set_level(logging.WARNING, logger="station.sync.mqtt")
        assert deploy_broker.pki is not None
        cert = deploy_broker.pki.client("exam-a")
        for _ in range(3):
            impostor = paho.Client(CallbackAPIVersion.VERSION2, client_id="exam-b",
                                   protocol=paho.MQTTv5)
            impostor.tls_set(ca_certs=str(deploy_broker.pki.ca), certfile=str(cert.cert),
                             keyfile=str(cert.key))
            impostor.connect(deploy_broker.host, deploy_broker.port)
            impostor.loop_start()
            time.sleep(0.5)
            impostor.disconnect()
            impostor.loop_stop()
        assert "connection lost" not in caplog.text  # exam-b was never knocked off
        mid = uuid.uuid4()
        link.submit(Channel.VITALS, body(mid), mid)
        assert wait_until(lambda: outbox.state(mid) == DeliveryState.DELIVERED)
        assert link.connected
    finally:
        link.stop()


def test_a_station_whose_id_and_certificate_disagree_says_so_and_keeps_its_messages(
    deploy_broker: Broker, outbox: Outbox
) -> None:
    # Regression (#13): station_id "exam-b" with exam-a's certificate logged "connected (MQTT
    # 5)" while the broker refused every publish and subscription.
    link = MqttLink(tls(deploy_broker, "exam-a"), site=SITE, station_id="exam-b",
                    outbox=outbox)
    mid = uuid.uuid4()
    link.start()
    try:
        link.submit(Channel.VITALS, body(mid), mid)
        assert wait_until(lambda: link.problem != "")
        assert link.problem.startswith("not authorised — station id and certificate disagree")
        assert "'exam-b'" in link.problem
        assert outbox.state(mid) == DeliveryState.QUEUED  # kept for when it is fixed
    finally:
        link.stop()


# ------------------------------------------------------------------ end-to-end delivery


def test_a_message_is_published_again_until_the_practice_acks_it(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    box = Outbox(*outbox_paths(tmp_path), ack_policy=AckPolicy(resend_after_s=0.5,
                                                               max_pause_s=0.5))
    practice = Consumer(mosquitto_broker, "rooming/v1/+/+/vitals")
    acker = practice_client(mosquitto_broker, "practice-acker")
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id="exam-3", outbox=box)
    link.start()
    try:
        mid = uuid.uuid4()
        link.submit(Channel.VITALS, body(mid), mid)
        assert wait_until(lambda: practice.seen[str(mid)] >= 3, 15)  # first send + 2 resends
        assert practice.bodies[str(mid)] == {"message_id": str(mid)}
        assert link.resent_count >= 2
        ack(acker, "exam-3", mid)
        assert wait_until(lambda: box.state(mid) == DeliveryState.RECEIVED)
        settled = practice.seen[str(mid)]
        time.sleep(2.5)  # five pauses: nothing more once the practice has it
        assert practice.seen[str(mid)] == settled
        assert wait_until(lambda: box.stats().purge_backlog == 0)
    finally:
        link.stop()
        acker.loop_stop()
        practice.close()
        box.close()


def test_one_damaged_row_does_not_stop_the_others_on_the_wire(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    db_path, key_path = outbox_paths(tmp_path)
    box = Outbox(db_path, key_path)
    old = [uuid.uuid4() for _ in range(30)]
    for mid in old:
        box.put(mid, topic(SITE, "exam-3", Channel.VITALS), body(mid))
    box.close()
    raw = sqlite3.connect(db_path)
    raw.execute("UPDATE outbox SET ciphertext = X'00' || substr(ciphertext, 2) WHERE "
                "message_id = ?", (str(old[7]),))
    raw.commit()
    raw.close()
    box = Outbox(db_path, key_path)
    practice = Consumer(mosquitto_broker, "rooming/v1/+/+/vitals")
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id="exam-3", outbox=box)
    link.start()
    try:
        new = [uuid.uuid4() for _ in range(5)]
        for mid in new:
            link.submit(Channel.VITALS, body(mid), mid)
        expected = {str(m) for m in old + new if m != old[7]}
        assert practice.wait_for(expected, 15) == set()
        assert str(old[7]) not in practice.distinct()
        assert box.state(old[7]) == DeliveryState.QUARANTINED
        assert box.stats().quarantined == 1
    finally:
        link.stop()
        practice.close()
        box.close()


def test_one_deeply_nested_config_does_not_drop_the_acks_around_it(
    mosquitto_broker: Broker, outbox: Outbox
) -> None:
    # Regression (#13): a deeply nested `config` made json.loads raise RecursionError and the
    # worker dropped the other events of the batch — 6 of 20 practice acks lost.
    acks: list[AckPayload] = []
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id="exam-3", outbox=outbox,
                    handlers=Inbound(on_ack=acks.append))
    practice = practice_client(mosquitto_broker)
    statuses: list[dict[str, object]] = []
    watcher = practice_client(mosquitto_broker, "status-watcher")
    watcher.on_message = lambda c, u, m: statuses.append(json.loads(m.payload))
    watcher.subscribe(topic(SITE, "exam-3", Channel.STATUS), 1)
    link.start()
    try:
        ids = [uuid.uuid4() for _ in range(20)]
        for mid in ids:
            link.submit(Channel.VITALS, body(mid), mid)
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.DELIVERED for m in ids))
        config_id = uuid.uuid4()
        deep = (b'{"message_id": "' + str(config_id).encode() + b'", "x": '
                + b"[" * 100_000 + b"]" * 100_000 + b"}")
        infos = [practice.publish(topic(SITE, "exam-3", Channel.CONFIG), deep, 1)]
        for mid in ids:
            payload = to_json(AckPayload(message_id=mid, acked_at=AT))
            infos.append(practice.publish(topic(SITE, "exam-3", Channel.ACK), payload, 1))
        for info in infos:
            info.wait_for_publish(5)
        assert wait_until(lambda: len(acks) == 20)
        assert all(outbox.state(m) == DeliveryState.RECEIVED for m in ids)
        assert wait_until(lambda: any(s.get("config_rejected_message_id") == str(config_id)
                                      for s in statuses))
        rejected = next(s for s in statuses if s.get("config_rejected_message_id"))
        assert rejected["config_problems"] == [
            "JSON nests 100001 levels deep; at most 32 are accepted"]
    finally:
        link.stop()
        for client in (practice, watcher):
            client.disconnect()
            client.loop_stop()


# ------------------------------------------------------------------ status order

STATION_SCRIPT = """
import sys, time
from pathlib import Path
from station.config import BrokerSection
from station.sync.mqtt import MqttLink
from station.sync.outbox import Outbox
directory, port = Path(sys.argv[1]), int(sys.argv[2])
box = Outbox(directory / "outbox.sqlite3", directory / "outbox.key")
link = MqttLink(BrokerSection(host="127.0.0.1", port=port, require_tls=False),
                site="clinic-north", station_id="exam-3", outbox=box)
link.start()
assert link.wait_connected(10)
print("up", flush=True)
time.sleep(60)
"""


def test_the_last_will_orders_after_the_online_it_replaces(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    # Regression (#13): the will's sent_at was earlier than the "online" it replaces, so a
    # consumer ordering by sent_at kept a dead station online. Order is by `sequence`.
    statuses: list[dict[str, object]] = []
    watcher = practice_client(mosquitto_broker, "status-watcher")
    watcher.on_message = lambda c, u, m: statuses.append(json.loads(m.payload))
    watcher.subscribe(topic(SITE, "exam-3", Channel.STATUS), 1)
    station = subprocess.Popen([sys.executable, "-c", STATION_SCRIPT, str(tmp_path),
                                str(mosquitto_broker.port)], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        assert station.stdout is not None and station.stdout.readline().strip() == "up"
        assert wait_until(lambda: any(s["presence"] == "online" for s in statuses))
        os.kill(station.pid, signal.SIGKILL)  # the broker publishes the will
        assert wait_until(lambda: statuses[-1]["presence"] == "offline")
    finally:
        station.kill()
        station.wait(10)
        assert station.stdout is not None
        station.stdout.close()
    box = Outbox(*outbox_paths(tmp_path))
    link = MqttLink(plain(mosquitto_broker), site=SITE, station_id="exam-3", outbox=box)
    link.start()
    try:
        assert wait_until(lambda: statuses[-1]["presence"] == "online")
    finally:
        link.stop()  # a clean goodbye: offline again
        box.close()
        watcher.disconnect()
        watcher.loop_stop()
    assert wait_until(lambda: statuses[-1]["presence"] == "offline")
    order = [(s["presence"], s["sequence"]) for s in statuses]
    births = [seq for presence, seq in order if presence == "online"]
    will = next(seq for presence, seq in order if presence == "offline")
    assert isinstance(will, int) and births[0] == will - 1
    assert births[-1] > will  # the next connection's birth comes after the will
    last = max(statuses, key=lambda s: int(s["sequence"]))  # type: ignore[call-overload]
    assert last["presence"] == "offline"  # the goodbye is the newest word
