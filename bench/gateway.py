"""Messages per second from the broker through `station gateway` into a real MLLP server.

The path: paho QoS 1 publishes of `vitals` messages to a real Mosquitto -> the gateway's
shared subscription -> SQLite store (FULL sync) -> ORU^R01 built and parsed back with hl7apy
STRICT validation -> MLLP to node-hl7-server (tests/conformance/mllp, `make venv`), which
parses and ACKs each -> the station's `ack` published. Clock: first publish to the last
message the MLLP server logged.

Baseline, same run, same server: the same number of ORU^R01 messages (built beforehand) sent
straight to the MLLP server with the gateway's MLLP client, one after the other, in the same
connection mode. The ratio says what the broker, the store, translation and validation cost.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from station.gateway.config import (  # noqa: E402
    GatewayBroker,
    GatewayHl7,
    GatewayMllp,
    GatewaySettings,
    GatewayStore,
)
from station.gateway.hl7v2 import oru_r01, parse_ack  # noqa: E402
from station.gateway.mllp import MllpClient  # noqa: E402
from station.gateway.service import Gateway  # noqa: E402
from station.sync import payloads  # noqa: E402
from station.sync.contract import Channel, VitalsPayload, to_json, topic  # noqa: E402
from tests.fixtures.broker import start_broker  # noqa: E402
from tests.fixtures.mllp import start_mllp  # noqa: E402
from tests.sync.samples import AT, submission  # noqa: E402

COUNT = 300
SITE, STATION = "clinic-north", "exam-3"


def vitals(message_id: uuid.UUID) -> VitalsPayload:
    return payloads.vitals(submission(), message_id=message_id, site=SITE, station_id=STATION,
                           sent_at=AT)


def baseline(directory: Path) -> float:
    server = start_mllp(directory / "baseline")
    try:
        messages = [oru_r01(vitals(uuid.uuid4()), GatewayHl7(), sent_at=AT)
                    for _ in range(COUNT)]
        client = MllpClient("127.0.0.1", server.port)
        start = time.perf_counter()
        for message in messages:
            assert parse_ack(client.send(message)).accepted
        elapsed = time.perf_counter() - start
        client.close()
        return COUNT / elapsed
    finally:
        server.stop()


def through_gateway(directory: Path) -> float:
    broker = start_broker(directory / "broker", persistent=True)
    server = start_mllp(directory / "ehr")
    settings = GatewaySettings(
        broker=GatewayBroker(host=broker.host, port=broker.port, require_tls=False),
        mllp=GatewayMllp(host="127.0.0.1", port=server.port),
        store=GatewayStore(path=directory / "gateway.sqlite3"))
    gateway = Gateway(settings)
    gateway.start()
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-station",
                            protocol=paho.MQTTv5)
    try:
        assert gateway.wait_subscribed(10)
        bodies = [to_json(vitals(uuid.uuid4())) for _ in range(COUNT)]
        publisher.max_inflight_messages_set(100)
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        start = time.perf_counter()
        for body in bodies:
            publisher.publish(topic(SITE, STATION, Channel.VITALS), body, qos=1)
        while len(server.received()) < COUNT:
            time.sleep(0.01)
        elapsed = time.perf_counter() - start
        assert len({r["control_id"] for r in server.received()}) == COUNT
        return COUNT / elapsed
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        gateway.stop()
        server.stop()
        broker.kill()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        direct = baseline(directory)
        gateway = through_gateway(directory)
    print(f"{COUNT} vitals messages, MLLP connection per message (the default)")
    print(f"  MLLP server fed directly (pre-built ORU^R01): {direct:8.1f} msg/s")
    print(f"  broker -> gateway -> MLLP, strict validation: {gateway:8.1f} msg/s")
    print(f"  ratio gateway / direct: {gateway / direct:.2f}")


if __name__ == "__main__":
    main()
