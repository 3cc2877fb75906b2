"""Station -> shipped Mosquitto (mTLS + ACL) -> gateway -> a real MLLP server (node-hl7-server).

The EHR side is another project's MLLP listener and HL7 parser (npm node-hl7-server 2.5.0 /
node-hl7-client 2.3.1); every message it receives is parsed again here with hl7apy's STRICT
v2.5.1 validation. The station side is the real MqttLink and encrypted Outbox.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from station.config import BrokerSection
from station.gateway.config import GatewayBroker, GatewayMllp, GatewaySettings, GatewayStore
from station.gateway.service import Gateway
from station.sync import payloads
from station.sync.contract import Channel, to_json
from station.sync.mqtt import MqttLink
from station.sync.outbox import DeliveryState, Outbox
from tests.fixtures.broker import Broker
from tests.fixtures.mllp import MllpServer, start_mllp
from tests.sync.consumer import outbox_paths
from tests.sync.samples import AT, submission

pytestmark = [pytest.mark.broker, pytest.mark.slow]
SITE, STATION = "clinic-north", "exam-3"


def wait_until(check: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def gateway_settings(broker: Broker, mllp: MllpServer, store: Path,
                     client_id: str = "practice-gateway-1") -> GatewaySettings:
    assert broker.pki is not None
    cert = broker.pki.client(client_id)
    return GatewaySettings(
        broker=GatewayBroker(host=broker.host, port=broker.port, require_tls=True,
                             ca_file=broker.pki.ca, cert_file=cert.cert, key_file=cert.key,
                             client_id=client_id, session_expiry_s=3600),
        mllp=GatewayMllp(host="127.0.0.1", port=mllp.port, ack_timeout_s=2,
                         retry_min_s=0.1, retry_max_s=0.5),
        store=GatewayStore(path=store),
    )


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    (tmp_path / "station").mkdir()
    box = Outbox(*outbox_paths(tmp_path / "station"))
    yield box
    box.close()


def station_link(broker: Broker, outbox: Outbox) -> MqttLink:
    assert broker.pki is not None
    cert = broker.pki.client(STATION)  # the shipped ACL: a station's CN is its station_id
    section = BrokerSection(host=broker.host, port=broker.port, require_tls=True,
                            ca_file=broker.pki.ca, cert_file=cert.cert, key_file=cert.key)
    return MqttLink(section, site=SITE, station_id=STATION, outbox=outbox,
                    reconnect_min_s=0, reconnect_max_s=1)


def submit_vitals(link: MqttLink, mrn_suffix: str = "") -> uuid.UUID:
    mid = uuid.uuid4()
    sub = submission()
    if mrn_suffix:
        sub = sub.model_copy(update={"patient": sub.patient.model_copy(
            update={"mrn": f"TEST{mrn_suffix}"})})
    body = to_json(payloads.vitals(sub, message_id=mid, site=SITE, station_id=STATION,
                                   sent_at=AT))
    link.submit(Channel.VITALS, body, mid)
    return mid


def strict(raw: str) -> object:
    """hl7apy STRICT: structure, cardinality, datatypes and lengths of HL7 v2.5.1."""
    message = parse_message(raw.replace("\n", "\r"), validation_level=VALIDATION_LEVEL.STRICT,
                            find_groups=True)
    message.validate()
    return message


def test_vitals_reach_the_ehr_as_valid_oru_and_the_station_shows_received(
    deploy_broker: Broker, mllp_server: MllpServer, outbox: Outbox, tmp_path: Path
) -> None:
    gateway = Gateway(gateway_settings(deploy_broker, mllp_server, tmp_path / "gw.sqlite3"))
    gateway.start()
    link = station_link(deploy_broker, outbox)
    link.start()
    try:
        assert gateway.wait_subscribed(10), "the shipped ACL refused the gateway"
        ids = [submit_vitals(link) for _ in range(3)]
        got = mllp_server.wait_for(3, 30)
        assert len(got) == 3
        # node-hl7-client parsed each as ORU^R01 for the fake patient, and ACKed AA.
        assert [(g["type"], g["mrn"], g["ack"]) for g in got] == [("ORU^R01", "TEST100001",
                                                                   "AA")] * 3
        # MSH-10 is the first 20 hex digits of the message_id, in the order they were sent.
        assert [g["control_id"] for g in got] == [m.hex[:20] for m in ids]
        for g in got:
            strict(g["raw"])
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in ids))
    finally:
        link.stop()
        gateway.stop()


def test_an_ehr_reject_reaches_the_station_as_rejected_with_the_ehr_reason(
    deploy_broker: Broker, outbox: Outbox, tmp_path: Path
) -> None:
    ehr = start_mllp(tmp_path / "ehr", "--reject-mrn", "TEST900009",
                     "--reason", "Unknown patient MRN")
    gateway = Gateway(gateway_settings(deploy_broker, ehr, tmp_path / "gw.sqlite3"))
    gateway.start()
    link = station_link(deploy_broker, outbox)
    link.start()
    try:
        assert gateway.wait_subscribed(10)
        good = submit_vitals(link)
        bad = submit_vitals(link, mrn_suffix="900009")
        assert wait_until(lambda: outbox.state(bad) == DeliveryState.REJECTED, 30)
        # The reason the MA sees is the EHR's own text (MSA-3 / ERR-8), with the ACK code.
        assert outbox.rejection(bad) == "not filed by the EHR (AR): Unknown patient MRN"
        assert wait_until(lambda: outbox.state(good) == DeliveryState.RECEIVED)
        # Rejected once, never sent again.
        time.sleep(1.0)
        assert [g["ack"] for g in ehr.received() if g["mrn"] == "TEST900009"] == ["AR"]
    finally:
        link.stop()
        gateway.stop()
        ehr.stop()


def test_an_ehr_that_is_down_or_silent_gets_everything_later_in_order(
    deploy_broker: Broker, outbox: Outbox, tmp_path: Path
) -> None:
    # The MLLP listener is not there at first, then answers nothing to the first message
    # (the ACK timeout), then works: every message arrives, in the order the station sent.
    port_holder = start_mllp(tmp_path / "probe")
    port = port_holder.port
    port_holder.stop()
    gateway = Gateway(gateway_settings(deploy_broker, port_holder, tmp_path / "gw.sqlite3"))
    gateway.start()
    link = station_link(deploy_broker, outbox)
    link.start()
    ehr: MllpServer | None = None
    try:
        assert gateway.wait_subscribed(10)
        ids = [submit_vitals(link) for _ in range(5)]
        assert wait_until(lambda: gateway.store.stats().queued == 5)
        assert wait_until(lambda: "cannot connect" in gateway.store.stats().last_error)
        ehr = start_mllp(tmp_path / "ehr", "--silent-first", "1", port=port)
        got = ehr.wait_for(6, 30)
        # The first one twice (no ACK the first time: same control id again), then the rest.
        assert [g["control_id"] for g in got] == [ids[0].hex[:20]] + [m.hex[:20] for m in ids]
        assert [g["ack"] for g in got] == ["none"] + ["AA"] * 5
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in ids))
        assert gateway.store.stats().queued == 0
    finally:
        link.stop()
        gateway.stop()
        if ehr is not None:
            ehr.stop()
