"""The outbox pump on its own, against a fake client at the lowest seam (paho's `publish`),
over a real outbox file: what goes out, in which order, and when a row counts as delivered.

MQTT 5.0 (OASIS, 2019) §4.3.2: a QoS 1 sender treats the message as unacknowledged until it
receives the PUBACK; §3.4.2.1: a PUBACK reason code of 0x80 or more is a failure (0x87 "Not
authorized"), so the message was not accepted.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from station.sync.outbox import DeliveryState, Outbox
from station.sync.pump import OutboxPump
from tests.sync.consumer import outbox_paths

SUCCESS = ReasonCode(PacketTypes.PUBACK, identifier=0x00)  # type: ignore[no-untyped-call]
NOT_AUTHORIZED = ReasonCode(PacketTypes.PUBACK, identifier=0x87)  # type: ignore[no-untyped-call]


@dataclass
class Info:
    rc: int
    mid: int


class FakeClient:
    """paho's publish as the pump uses it: every call accepted and numbered."""

    def __init__(self) -> None:
        self.published: list[tuple[int, str, bytes]] = []

    def publish(self, topic: str, payload: bytes, qos: int, *, retain: bool) -> Info:
        assert qos == 1 and not retain
        mid = len(self.published) + 1
        self.published.append((mid, topic, payload))
        return Info(rc=0, mid=mid)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    box = Outbox(*outbox_paths(tmp_path))
    yield box
    box.close()


def queued(outbox: Outbox, n: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    for i, mid in enumerate(ids):
        outbox.put(mid, "rooming/v1/test-clinic/exam-1/vitals", f'{{"n": {i}}}'.encode())
    return ids


def until(done: object, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)
    return bool(done())  # type: ignore[operator]


def test_a_window_goes_out_in_order_and_only_pubacks_deliver(outbox: Outbox) -> None:
    ids = queued(outbox, 5)
    pump = OutboxPump(outbox, 3, wake=lambda: None, acks_ready=lambda: None)
    pump.start()
    try:
        client = FakeClient()
        pump.fill(client, lambda: True)
        # The window: three in flight, in the order queued; nothing delivered yet.
        assert [p[2] for p in client.published] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
        assert pump.awaiting_puback == 3
        assert [outbox.state(m) for m in ids] == [DeliveryState.QUEUED] * 5
        pump.on_publish(1, SUCCESS)
        pump.on_publish(2, NOT_AUTHORIZED)
        pump.record_acks()
        assert until(lambda: outbox.state(ids[0]) is DeliveryState.DELIVERED)
        # Refused by the broker: kept, not delivered; the third is still awaiting its PUBACK.
        assert [outbox.state(m) for m in ids[1:]] == [DeliveryState.QUEUED] * 4
        assert pump.awaiting_puback == 1
        pump.fill(client, lambda: True)  # two slots free: the next two rows, never the refused
        assert [p[2] for p in client.published[3:]] == [b'{"n": 3}', b'{"n": 4}']
    finally:
        pump.stop(5)


def test_nothing_is_sent_while_disconnected(outbox: Outbox) -> None:
    queued(outbox, 2)
    pump = OutboxPump(outbox, 3, wake=lambda: None, acks_ready=lambda: None)
    client = FakeClient()
    pump.fill(client, lambda: False)
    assert client.published == []


def test_a_new_connection_resends_what_paho_did_not_hold_within_the_granted_window(
    outbox: Outbox,
) -> None:
    # MQTT 5.0 §3.2.2.3.3 Receive Maximum: the broker grants 2; one slot is kept for status.
    ids = queued(outbox, 3)
    pump = OutboxPump(outbox, 100, wake=lambda: None, acks_ready=lambda: None)
    pump.new_connection(2)
    assert pump.send_window == 1
    client = FakeClient()
    pump.fill(client, lambda: True)
    assert len(client.published) == 1
    pump.forget_client()  # the client replaced (protocol fallback): nothing in flight
    pump.new_connection(None)
    pump.fill(client, lambda: True)
    assert [p[2] for p in client.published] == [b'{"n": 0}', b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    assert [outbox.state(m) for m in ids] == [DeliveryState.QUEUED] * 3
