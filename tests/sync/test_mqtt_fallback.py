"""MQTT 5 with a 3.1.1 fallback, against a 3.1.1-only broker: a proxy in front of Mosquitto.

Mosquitto always speaks MQTT 5, so the old broker is a small loopback proxy that answers an
MQTT 5 CONNECT the way a 3.1.1 broker does (CONNACK return code 0x01, "unacceptable protocol
version", then close) and forwards a 3.1.1 CONNECT, and everything after it, to the real
Mosquitto fixture.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from station.config import BrokerSection
from station.sync import payloads
from station.sync.contract import Channel, to_json, topic
from station.sync.mqtt import MqttLink
from station.sync.outbox import DeliveryState, Outbox
from tests.fixtures.broker import Broker
from tests.sync.consumer import Consumer, outbox_paths
from tests.sync.samples import AT, submission

pytestmark = pytest.mark.broker
SITE, STATION = "clinic-north", "exam-3"
# What a 3.1.1 broker answers to a protocol level it does not support (MQTT 3.1.1, 3.2.2.3).
REFUSED_PROTOCOL_VERSION = b"\x20\x02\x00\x01"
PROXY_LIFETIME_S = 20.0  # the proxy stops by itself even if a test forgets it


def _read_exact(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("client closed before a whole CONNECT")
        data += chunk
    return data


def read_connect(sock: socket.socket) -> tuple[bytes, int]:
    """One whole CONNECT packet and its protocol level byte (4 = 3.1.1, 5 = MQTT 5)."""
    header = _read_exact(sock, 1)
    if header[0] >> 4 != 1:
        raise ConnectionError(f"first packet is type {header[0] >> 4}, expected CONNECT (1)")
    length_bytes, remaining, shift = b"", 0, 0
    while True:  # the remaining length: a variable byte integer, at most 4 bytes
        byte = _read_exact(sock, 1)
        length_bytes += byte
        remaining |= (byte[0] & 0x7F) << shift
        shift += 7
        if not byte[0] & 0x80:
            break
        if len(length_bytes) == 4:
            raise ConnectionError("malformed remaining length")
    body = _read_exact(sock, remaining)
    name_length = int.from_bytes(body[:2], "big")
    if body[2:2 + name_length] != b"MQTT":
        raise ConnectionError(f"protocol name {body[2:2 + name_length]!r}, expected b'MQTT'")
    return header + length_bytes + body, body[2 + name_length]


class Mqtt311OnlyBroker:
    """A loopback proxy that behaves like a broker that only speaks MQTT 3.1.1."""

    def __init__(self, upstream: Broker) -> None:
        self.upstream = upstream
        self.levels: list[int] = []  # the protocol level of every CONNECT, in order
        self._stop = threading.Event()
        self._deadline = time.monotonic() + PROXY_LIFETIME_S
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.host, self.port = "127.0.0.1", self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept_loop)

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        with self._listener:
            while self._running():
                try:
                    client, _ = self._listener.accept()
                except TimeoutError:
                    continue
                self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(5)
            try:
                connect, level = read_connect(client)
            except (ConnectionError, OSError):
                return
            self.levels.append(level)
            if level != 4:
                client.sendall(REFUSED_PROTOCOL_VERSION)
                return
            with socket.create_connection((self.upstream.host, self.upstream.port), 5) as up:
                up.sendall(connect)
                self._pump(client, up)

    def _pump(self, client: socket.socket, up: socket.socket) -> None:
        peers = {client: up, up: client}
        while self._running():
            ready, _, _ = select.select(list(peers), [], [], 0.1)
            for sock in ready:
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return  # either side hung up: close both, like a broker would
                peers[sock].sendall(data)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def old_broker(mosquitto_broker: Broker) -> Iterator[Mqtt311OnlyBroker]:
    proxy = Mqtt311OnlyBroker(mosquitto_broker)
    yield proxy
    proxy.close()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(*outbox_paths(tmp_path))
    yield box
    box.close()


def through(proxy: Mqtt311OnlyBroker, protocol: str) -> BrokerSection:
    return BrokerSection(host=proxy.host, port=proxy.port, require_tls=False,
                         protocol=protocol)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 8) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def vitals_bytes(message_id: uuid.UUID) -> bytes:
    return to_json(payloads.vitals(submission(), message_id=message_id, site=SITE,
                                   station_id=STATION, sent_at=AT))


def deliver_one(link: MqttLink, outbox: Outbox, consumer: Consumer) -> None:
    """A submission queued before the link starts reaches the subscriber and is delivered."""
    mid = uuid.uuid4()
    link.submit(Channel.VITALS, vitals_bytes(mid), mid)
    assert outbox.state(mid) == DeliveryState.QUEUED
    link.start()
    assert consumer.wait_for({str(mid)}, 8) == set()
    assert consumer.topics[str(mid)] == topic(SITE, STATION, Channel.VITALS)
    assert consumer.bodies[str(mid)]["message_id"] == str(mid)
    assert wait_until(lambda: outbox.state(mid) == DeliveryState.DELIVERED)


def test_auto_falls_back_to_311_and_delivers_with_qos_1(
    old_broker: Mqtt311OnlyBroker, mosquitto_broker: Broker, outbox: Outbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = Consumer(mosquitto_broker)
    link = MqttLink(through(old_broker, "auto"), site=SITE, station_id=STATION, outbox=outbox)
    try:
        with caplog.at_level(logging.INFO, logger="station.sync.mqtt"):
            deliver_one(link, outbox, consumer)
        assert link.connected
        # MQTT 5 first, refused; then 3.1.1, forwarded to Mosquitto; nothing else.
        assert old_broker.levels == [5, 4]
        where = f"MQTT {old_broker.host}:{old_broker.port}"
        messages = [(r.levelname, r.getMessage()) for r in caplog.records
                    if r.name == "station.sync.mqtt"]
        assert messages == [
            ("WARNING", f"{where}: broker does not speak MQTT 5; falling back to 3.1.1"),
            ("INFO", f"{where}: connected (MQTT 3.1.1)"),
        ]
    finally:
        link.stop()
        consumer.close()


def test_mqttv5_does_not_fall_back_and_says_why(
    old_broker: Mqtt311OnlyBroker, outbox: Outbox, caplog: pytest.LogCaptureFixture,
) -> None:
    link = MqttLink(through(old_broker, "mqttv5"), site=SITE, station_id=STATION,
                    outbox=outbox, reconnect_min_s=0, reconnect_max_s=1)
    mid = uuid.uuid4()
    link.submit(Channel.VITALS, vitals_bytes(mid), mid)
    try:
        with caplog.at_level(logging.INFO, logger="station.sync.mqtt"):
            link.start()
            assert wait_until(lambda: len(old_broker.levels) >= 2)  # it retried, as 5 again
            assert not link.connected
        assert set(old_broker.levels) == {5}
        where = f"MQTT {old_broker.host}:{old_broker.port}"
        messages = {(r.levelname, r.getMessage()) for r in caplog.records
                    if r.name == "station.sync.mqtt"}
        # One line per refused attempt, with the reason and the setting to change; not a
        # "refused before CONNACK ... TLS listener?" guess for the hang-up after the refusal.
        assert messages == {
            ("ERROR", f"{where}: broker refused the connection: Unsupported protocol version "
                      "(protocol = mqttv5 is set: use auto or mqttv311 for a 3.1.1 broker)"),
        }
        assert outbox.state(mid) == DeliveryState.QUEUED  # kept for when the broker is fixed
    finally:
        link.stop()


def test_mqttv311_connects_directly(
    old_broker: Mqtt311OnlyBroker, mosquitto_broker: Broker, outbox: Outbox,
) -> None:
    consumer = Consumer(mosquitto_broker)
    link = MqttLink(through(old_broker, "mqttv311"), site=SITE, station_id=STATION,
                    outbox=outbox)
    try:
        deliver_one(link, outbox, consumer)
        assert old_broker.levels == [4]
    finally:
        link.stop()
        consumer.close()
