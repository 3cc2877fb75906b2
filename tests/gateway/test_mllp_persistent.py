"""`[mllp] connection = "persistent"`: one MLLP connection carries the whole stream, and a
connection the EHR drops is reopened without losing or doubling a message.

The EHR side is python-hl7's MLLP server (PyPI `hl7`, hl7.mllp; tests/conformance/mllp/
python_hl7_server.py), which counts the connections it accepts: the count is taken where the
connections arrive, not from the gateway. HL7 v2 Appendix C (MLLP release 2) lets a sender keep
one connection for many messages, each answered before the next goes; HL7 v2.5.1 chapter 2
(2.10.3, original-mode acknowledgement) says a message without an ACK is sent again with the
same MSH-10, which is how a repeat is recognised below.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.config import BrokerSection
from station.gateway.config import GatewayBroker, GatewayMllp, GatewaySettings, GatewayStore
from station.gateway.service import Gateway
from station.sync.mqtt import MqttLink
from station.sync.outbox import DeliveryState, Outbox
from tests.fixtures.broker import Broker
from tests.fixtures.hl7_mllp import Hl7Server, start_hl7_server
from tests.gateway.test_gateway_e2e import SITE, STATION, strict, submit_vitals, wait_until
from tests.sync.consumer import outbox_paths

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def settings(broker: Broker, ehr: Hl7Server, store: Path) -> GatewaySettings:
    return GatewaySettings(
        broker=GatewayBroker(
            host=broker.host, port=broker.port, require_tls=False, session_expiry_s=3600
        ),
        mllp=GatewayMllp(
            host="127.0.0.1",
            port=ehr.port,
            connection="persistent",
            ack_timeout_s=5,
            retry_min_s=0.1,
            retry_max_s=0.5,
        ),
        store=GatewayStore(path=store),
    )


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    (tmp_path / "station").mkdir()
    box = Outbox(*outbox_paths(tmp_path / "station"))
    yield box
    box.close()


@pytest.fixture
def link(persistent_broker: Broker, outbox: Outbox) -> Iterator[MqttLink]:
    station = MqttLink(
        BrokerSection(host=persistent_broker.host, port=persistent_broker.port, require_tls=False),
        site=SITE,
        station_id=STATION,
        outbox=outbox,
        reconnect_min_s=0,
        reconnect_max_s=1,
    )
    station.start()
    yield station
    station.stop()


@pytest.fixture
def started() -> Iterator[list[Gateway]]:
    gateways: list[Gateway] = []
    yield gateways
    for gateway in gateways:
        gateway.stop()


def start_gateway(started: list[Gateway], config: GatewaySettings) -> Gateway:
    gateway = Gateway(config)
    started.append(gateway)
    gateway.start()
    assert gateway.wait_subscribed(10)
    return gateway


def control_ids(ids: list[uuid.UUID]) -> list[str]:
    return [m.hex[:20] for m in ids]


def test_one_connection_carries_every_message_in_order(
    persistent_broker: Broker,
    link: MqttLink,
    outbox: Outbox,
    started: list[Gateway],
    tmp_path: Path,
) -> None:
    ehr = start_hl7_server(tmp_path / "ehr")
    try:
        gateway = start_gateway(started, settings(persistent_broker, ehr, tmp_path / "gw.sqlite3"))
        ids = [submit_vitals(link) for _ in range(30)]
        got = ehr.wait_for(30, 60)
        assert [g["control_id"] for g in got] == control_ids(ids)
        assert {g["type"] for g in got} == {"ORU^R01"}
        # One connection, seen from the server, carried all thirty.
        assert ehr.connections() == 1
        assert {g["connection"] for g in got} == {1}
        assert gateway.connections_opened == 1
        for g in (got[0], got[-1]):
            strict(g["raw"])
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in ids))
    finally:
        ehr.stop()


def test_a_connection_the_ehr_closes_after_its_ack_is_reopened_and_nothing_repeats(
    persistent_broker: Broker,
    link: MqttLink,
    outbox: Outbox,
    started: list[Gateway],
    tmp_path: Path,
) -> None:
    # The listener closes each connection after ten acknowledged messages (an engine's
    # per-connection limit): three connections for thirty messages, each message once.
    ehr = start_hl7_server(tmp_path / "ehr", "--drop-after-ack", "10")
    try:
        start_gateway(started, settings(persistent_broker, ehr, tmp_path / "gw.sqlite3"))
        ids = [submit_vitals(link) for _ in range(30)]
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in ids), 60)
        got = ehr.received()
        assert [g["control_id"] for g in got] == control_ids(ids)
        assert ehr.connections() == 3
        assert [g["connection"] for g in got] == [1] * 10 + [2] * 10 + [3] * 10
    finally:
        ehr.stop()


def test_a_message_whose_connection_drops_before_its_ack_goes_again_with_its_control_id(
    persistent_broker: Broker,
    link: MqttLink,
    outbox: Outbox,
    started: list[Gateway],
    tmp_path: Path,
) -> None:
    # The listener reads the fifth message and closes the connection without an ACK: the
    # gateway cannot know whether it was filed, so it sends it again (same MSH-10) on a new
    # connection; nothing else is sent twice and nothing overtakes it.
    ehr = start_hl7_server(tmp_path / "ehr", "--drop-before-ack", "5")
    try:
        start_gateway(started, settings(persistent_broker, ehr, tmp_path / "gw.sqlite3"))
        ids = [submit_vitals(link) for _ in range(12)]
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in ids), 60)
        got = ehr.received()
        expected = control_ids(ids)
        assert [g["control_id"] for g in got] == expected[:5] + expected[4:]
        assert [g["ack"] for g in got] == ["AA"] * 4 + ["none"] + ["AA"] * 8
        assert ehr.connections() == 2
    finally:
        ehr.stop()


def test_a_restarted_ehr_gets_the_rest_on_a_new_connection(
    persistent_broker: Broker,
    link: MqttLink,
    outbox: Outbox,
    started: list[Gateway],
    tmp_path: Path,
) -> None:
    # The kept connection dies with the listener (killed, then started again on its port):
    # the gateway opens a new one for the next message; the first ten are not sent again.
    ehr = start_hl7_server(tmp_path / "ehr1")
    gateway = start_gateway(started, settings(persistent_broker, ehr, tmp_path / "gw.sqlite3"))
    first = [submit_vitals(link) for _ in range(10)]
    assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in first), 60)
    ehr.stop()
    again = start_hl7_server(tmp_path / "ehr2", port=ehr.port)
    try:
        time.sleep(0.2)
        rest = [submit_vitals(link) for _ in range(10)]
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in rest), 60)
        assert [g["control_id"] for g in ehr.received()] == control_ids(first)
        assert [g["control_id"] for g in again.received()] == control_ids(rest)
        assert (ehr.connections(), again.connections()) == (1, 1)
        assert gateway.connections_opened == 2
    finally:
        again.stop()
