"""Drain 10,000 queued vitals submissions from the outbox to a real Mosquitto.

Prints messages per second for the station's path (encrypted SQLite outbox -> MqttLink,
QoS 1, each PUBACK committed to the outbox with FULL sync) beside a baseline of bare paho
QoS 1 publishing of the same payloads to the same broker with the same in-flight limit, in
the same run, and the ratio (target >= 0.5). Both clocks run from connect to the last
PUBACK (the station's: to the last PUBACK recorded in SQLite). The baseline runs before and
after the drain and the faster of the two is used (the box may be busy). The secure
overwrite of delivered rows, which the station does once PUBACKs stop, is timed apart.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from station.config import BrokerSection  # noqa: E402
from station.sync import payloads  # noqa: E402
from station.sync.contract import Channel, to_json, topic  # noqa: E402
from station.sync.mqtt import MqttLink  # noqa: E402
from station.sync.outbox import Outbox  # noqa: E402
from tests.fixtures.broker import start_broker  # noqa: E402
from tests.sync.samples import AT, MESSAGE_ID, submission  # noqa: E402

COUNT = 10_000
# The in-flight limit for both: the Receive Maximum our brokers grant (max_inflight_messages
# 100 in deploy/mosquitto/mosquitto.conf and in the test fixture); paho's default is 20.
WINDOW = 100
SITE, STATION = "clinic-north", "exam-3"


def make_payloads() -> list[tuple[uuid.UUID, bytes]]:
    # One real vitals payload (FHIR Bundle included), re-keyed per message: same size and
    # shape as 10,000 distinct roomings without spending the run building Bundles.
    template = to_json(payloads.vitals(submission(), message_id=MESSAGE_ID, site=SITE,
                                       station_id=STATION, sent_at=AT))
    out = []
    for _ in range(COUNT):
        mid = uuid.uuid4()
        out.append((mid, template.replace(str(MESSAGE_ID).encode(), str(mid).encode())))
    return out


def baseline(host: str, port: int, items: list[tuple[uuid.UUID, bytes]]) -> float:
    done = threading.Event()
    acked = 0

    def on_publish(client: paho.Client, userdata: object, mid: int, rc: object,
                   props: object) -> None:
        nonlocal acked
        acked += 1
        if acked == len(items):
            done.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-baseline",
                         protocol=paho.MQTTv5)
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    t = topic(SITE, "exam-9", Channel.VITALS)  # same length as the station's topic
    start = time.perf_counter()
    client.connect(host, port)
    client.loop_start()
    for _, body in items:
        client.publish(t, body, 1)
    finished = done.wait(300)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    if not finished:
        raise SystemExit(f"baseline: only {acked} of {len(items)} PUBACKs in 300 s")
    return len(items) / elapsed


def station(host: str, port: int, items: list[tuple[uuid.UUID, bytes]], work: Path) -> tuple[
        float, float, float, int]:
    outbox = Outbox(work / "outbox.sqlite3", work / "outbox.key")
    t = topic(SITE, STATION, Channel.VITALS)
    start = time.perf_counter()
    for mid, body in items:
        outbox.put(mid, t, body)
    put_rate = len(items) / (time.perf_counter() - start)
    link = MqttLink(BrokerSection(host=host, port=port, require_tls=False), site=SITE,
                    station_id=STATION, outbox=outbox, inflight_window=WINDOW)
    start = time.perf_counter()
    link.start()
    # Done when the link has committed every PUBACK to the outbox. Watch its counter, not
    # `outbox.stats()` in a tight loop: the bench would then compete with the link for the
    # database (the station itself counts only when idle).
    while link.delivered_count < len(items):
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    stats = outbox.stats()
    if stats.depth:
        raise SystemExit(f"outbox still holds {stats.depth} rows after every PUBACK was counted")
    # The link overwrites delivered rows once PUBACKs stop; time it until none is left.
    purge_start = time.perf_counter()
    while outbox.stats().purge_backlog:
        time.sleep(0.05)
    purge_s = time.perf_counter() - purge_start
    limit = link.inflight_limit
    link.stop()
    outbox.close()
    return len(items) / elapsed, put_rate, purge_s, limit


def main() -> int:
    items = make_payloads()
    with tempfile.TemporaryDirectory() as tmp:
        broker = start_broker(Path(tmp) / "broker")
        try:
            before = baseline(broker.host, broker.port, items)
            drained, put_rate, purge_s, limit = station(broker.host, broker.port, items, Path(tmp))
            after = baseline(broker.host, broker.port, items)
        finally:
            broker.kill()
    base = max(before, after)
    ratio = drained / base
    print(f"payload size:              {len(items[0][1])} bytes, {COUNT} messages, QoS 1, "
          "one Mosquitto")
    print(f"in-flight limit:           baseline paho max_inflight_messages {WINDOW}; station "
          f"window {WINDOW}, {limit} rows on this connection (one slot kept for status)")
    print(f"outbox put (fsync each):   {put_rate:8.0f} msgs/s")
    print(f"baseline bare paho QoS 1:  {base:8.0f} msgs/s (runs: {before:.0f} before, "
          f"{after:.0f} after)")
    print(f"outbox drain via MqttLink: {drained:8.0f} msgs/s")
    print(f"then secure purge of the {COUNT} delivered rows: {purge_s:.1f} s "
          "(off the sending path)")
    print(f"ratio: {ratio:.2f} (target >= 0.5)")
    return 0 if ratio >= 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
