"""The shared PostgreSQL store: gateway replicas on several hosts dedupe through one database.

Against a real PostgreSQL 15 (tests/fixtures/postgres.py starts it), a real Mosquitto and a
real MLLP server (node-hl7-server). Outside truths:
- MQTT 5.0 (OASIS, 2019) 4.3.2: QoS 1 is "at least once"; a message may arrive again (DUP)
  and the receiver must treat the copy as the same application message — so the same
  message_id reaching two replicas must reach the EHR once;
- MQTT 5.0 4.8.2: a shared subscription delivers each message to one session of the group;
- HL7 v2.5.1 ch. 2, 2.14.9.10: MSH-10 identifies the message; the EHR side counts control ids;
- PostgreSQL 15 documentation, INSERT "ON CONFLICT DO NOTHING": a row that would violate the
  unique constraint is not inserted, and RETURNING gives no row for it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from station.gateway.config import (
    GatewayBroker,
    GatewayMllp,
    GatewaySettings,
    GatewayStore,
    load_gateway_settings,
)
from station.gateway.service import Gateway
from station.gateway.store import Lane, Offered, PostgresGatewayStore, RowState, open_store
from station.sync import payloads
from station.sync.contract import Channel, to_json, topic
from tests.fixtures.broker import Broker
from tests.fixtures.mllp import MllpServer
from tests.fixtures.postgres import Postgres
from tests.gateway.test_gateway_e2e import strict
from tests.sync.samples import AT, submission

pytestmark = [pytest.mark.postgres]
SITE, STATION = "clinic-north", "exam-3"


def wait_until(check: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_two_stores_on_one_database_take_each_message_id_once(
    postgres_server: Postgres,
) -> None:
    dsn = postgres_server.create_database("dedupe")
    stores = [PostgresGatewayStore(dsn), PostgresGatewayStore(dsn)]
    ids = [str(uuid.uuid4()) for _ in range(200)]
    results: list[list[tuple[str, Offered]]] = [[], []]

    def offer_all(n: int) -> None:
        order = ids if n == 0 else list(reversed(ids))  # they meet in the middle
        for mid in order:
            results[n].append((mid, stores[n].offer(mid, "rooming/v1/s/st/vitals", b"{}",
                                                    time.time())))

    threads = [threading.Thread(target=offer_all, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    new = Counter(mid for run in results for mid, got in run if got is Offered.NEW)
    assert set(new) == set(ids)
    assert set(new.values()) == {1}  # each message_id new exactly once, across both
    assert stores[0].stats().queued == 200
    for store in stores:
        store.close()


def test_the_send_lease_is_one_replicas_until_it_lapses(postgres_server: Postgres) -> None:
    dsn = postgres_server.create_database("lease")
    first, second = PostgresGatewayStore(dsn), PostgresGatewayStore(dsn)
    assert first.acquire_lease("gw-1", now=1000.0, ttl_s=15)
    assert not second.acquire_lease("gw-2", now=1010.0, ttl_s=15)
    assert first.acquire_lease("gw-1", now=1010.0, ttl_s=15)  # renewed to 1025
    assert not second.acquire_lease("gw-2", now=1020.0, ttl_s=15)
    assert second.acquire_lease("gw-2", now=1025.0, ttl_s=15)  # lapsed: taken over
    assert second.stats().sender == "gw-2"
    first.release_lease("gw-1")  # not its lease any more: nothing changes
    assert second.stats().sender == "gw-2"
    for store in (first, second):
        store.close()


def test_parts_and_outcomes_survive_in_the_shared_store(postgres_server: Postgres) -> None:
    dsn = postgres_server.create_database("parts")
    store = PostgresGatewayStore(dsn)
    mid = str(uuid.uuid4())
    assert store.offer(mid, "rooming/v1/s/st/alert", b"{}", 5.0, Lane.ALERT) is Offered.NEW
    assert store.next_queued(Lane.CHART) is None
    row = store.next_queued(Lane.ALERT)
    assert row is not None and (row.lane, row.parts_done) == (Lane.ALERT, 0)
    store.part_done(row.seq, 1)
    store.attempt_failed(row.seq, "no ACK within 2 s", 6.0)
    store.close()
    store = PostgresGatewayStore(dsn)  # a restart: what was recorded is still there
    again = store.next_queued()
    assert again is not None and (again.parts_done, again.attempts) == (1, 1)
    assert store.stats().last_error == "no ACK within 2 s"
    store.finish(again.seq, RowState.FILED, "", 7.0)
    assert [r.message_id for r in store.acks_to_publish()] == [mid]
    store.ack_published(again.seq)
    assert store.acks_to_publish() == []
    # Offered again after it was filed: a duplicate whose ack is published once more.
    assert store.offer(mid, "rooming/v1/s/st/alert", b"{}", 8.0) is Offered.DUPLICATE
    assert [r.message_id for r in store.acks_to_publish()] == [mid]
    store.close()


def test_the_gateway_file_names_the_postgresql_store(tmp_path: Path,
                                                     postgres_server: Postgres) -> None:
    dsn = postgres_server.create_database("fromfile")
    path = tmp_path / "gateway.toml"
    path.write_text(f'[broker]\nrequire_tls = false\n[store]\nkind = "postgresql"\n'
                    f'dsn = "{dsn}"\n')
    store = open_store(load_gateway_settings(path).store)
    assert isinstance(store, PostgresGatewayStore)
    store.close()


class CountingStore:
    """The real PostgreSQL store, counting what this replica was handed by the broker."""

    def __init__(self, inner: PostgresGatewayStore) -> None:
        self.inner = inner
        self.offered = 0

    def offer(self, message_id: str, topic_name: str, body: bytes, now: float,
              lane: Lane = Lane.CHART) -> Offered:
        self.offered += 1
        return self.inner.offer(message_id, topic_name, body, now, lane)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def replica(broker: Broker, mllp: MllpServer, dsn: str, n: int) -> tuple[Gateway, CountingStore]:
    settings = GatewaySettings(
        broker=GatewayBroker(host=broker.host, port=broker.port, require_tls=False,
                             client_id=f"practice-gateway-{n}", session_expiry_s=3600),
        mllp=GatewayMllp(host="127.0.0.1", port=mllp.port, ack_timeout_s=2, retry_min_s=0.1,
                         retry_max_s=0.5),
        store=GatewayStore(kind="postgresql", dsn=dsn),
    )
    store = CountingStore(PostgresGatewayStore(dsn))
    return Gateway(settings, store=store), store  # type: ignore[arg-type]


@pytest.mark.broker
@pytest.mark.slow
def test_two_replicas_sharing_postgresql_file_every_message_exactly_once(
    postgres_server: Postgres, mosquitto_broker: Broker, mllp_server: MllpServer
) -> None:
    dsn = postgres_server.create_database("replicas")
    replicas = [replica(mosquitto_broker, mllp_server, dsn, n) for n in (1, 2)]
    station = paho.Client(CallbackAPIVersion.VERSION2, client_id=STATION, protocol=paho.MQTTv5)
    acks: list[bytes] = []
    station.on_message = lambda _c, _u, message: acks.append(bytes(message.payload))
    station.connect(mosquitto_broker.host, mosquitto_broker.port)
    station.loop_start()
    station.subscribe(topic(SITE, STATION, Channel.ACK), qos=1)
    try:
        for gateway, _ in replicas:
            gateway.start()
        assert all(gateway.wait_subscribed(10) for gateway, _ in replicas)
        ids = [uuid.uuid4() for _ in range(30)]
        bodies = [to_json(payloads.vitals(submission(), message_id=mid, site=SITE,
                                          station_id=STATION, sent_at=AT)) for mid in ids]
        # Every message twice, as a station resends when it missed the ack: the broker may
        # hand the two copies to different replicas.
        for _ in range(2):
            for body in bodies:
                station.publish(topic(SITE, STATION, Channel.VITALS), body, qos=1
                                ).wait_for_publish(10)
        expected = {mid.hex[:20] for mid in ids}
        assert wait_until(lambda: len(mllp_server.received()) >= 30, 60)
        assert wait_until(lambda: replicas[0][1].inner.stats().queued == 0, 30)
        time.sleep(1.0)  # anything sent twice would arrive by now
        got = mllp_server.received()
        counts = Counter(g["control_id"] for g in got)
        assert set(counts) == expected
        assert set(counts.values()) == {1}
        strict(got[0]["raw"])
        # The broker split the 60 copies between the replicas; the store took 30.
        shares = [store.offered for _, store in replicas]
        assert sum(shares) == 60
        assert min(shares) > 0
        stats = replicas[0][1].inner.stats()
        assert (stats.filed, stats.rejected) == (30, 0)
        # Each message acked "received" to the station (a duplicate's ack may go again).
        assert wait_until(lambda: {payloads_ack_id(a) for a in acks} >= set(map(str, ids)))
    finally:
        station.loop_stop()
        station.disconnect()
        for gateway, _ in replicas:
            gateway.stop()


def payloads_ack_id(body: bytes) -> str:
    ack = json.loads(body)
    assert ack["status"] == "received", ack
    return str(ack["message_id"])
