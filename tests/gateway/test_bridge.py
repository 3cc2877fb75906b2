"""Site-to-center: a clinic's Mosquitto bridged to a central one with the shipped bridge
config (deploy/mosquitto/bridge-to-center.conf), the gateway at the center. The central broker
is away for a while; nothing the stations sent meanwhile is lost, and the EHR's acks come back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.config import BrokerSection
from station.gateway.service import Gateway
from station.sync.mqtt import MqttLink
from station.sync.outbox import DeliveryState, Outbox
from tests.fixtures.broker import REPO, Broker, Pki, start_broker, start_deploy_broker
from tests.fixtures.mllp import MllpServer
from tests.gateway.test_gateway_e2e import (
    SITE,
    STATION,
    gateway_settings,
    strict,
    submit_vitals,
    wait_until,
)
from tests.sync.consumer import outbox_paths

pytestmark = [pytest.mark.broker, pytest.mark.slow]
BRIDGE_CONF = REPO / "deploy" / "mosquitto" / "bridge-to-center.conf"


def bridge_lines(central: Broker, pki: Pki) -> str:
    """The shipped bridge file line for line, except the center's address and the files."""
    cert = pki.client("bridge-clinic-north")
    paths = {
        "address": f"address {central.host}:{central.port}",
        "bridge_cafile": f"bridge_cafile {pki.ca}",
        "bridge_certfile": f"bridge_certfile {cert.cert}",
        "bridge_keyfile": f"bridge_keyfile {cert.key}",
    }
    return "\n".join(paths.get(line.split(" ", 1)[0], line)
                     for line in BRIDGE_CONF.read_text().splitlines())


@pytest.fixture
def brokers(tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    central = start_deploy_broker(tmp_path / "central")
    assert central.pki is not None
    # The clinic's own broker (plain on loopback here; the stations' side is tested elsewhere)
    # with persistence, as rooming.conf has it, and the bridge.
    clinic = start_broker(tmp_path / "clinic", persistent=True,
                          extra="autosave_interval 1\nautosave_on_changes true\n"
                          + bridge_lines(central, central.pki))
    yield clinic, central
    clinic.kill()
    central.kill()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    (tmp_path / "station").mkdir()
    box = Outbox(*outbox_paths(tmp_path / "station"))
    yield box
    box.close()


def test_central_broker_down_for_a_while_loses_nothing_and_acks_come_back(
    brokers: tuple[Broker, Broker], mllp_server: MllpServer, outbox: Outbox, tmp_path: Path
) -> None:
    clinic, central = brokers
    gateway = Gateway(gateway_settings(central, mllp_server, tmp_path / "gw.sqlite3"))
    gateway.start()
    link = MqttLink(BrokerSection(host=clinic.host, port=clinic.port, require_tls=False),
                    site=SITE, station_id=STATION, outbox=outbox, reconnect_min_s=0,
                    reconnect_max_s=1)
    link.start()
    try:
        assert gateway.wait_subscribed(10)
        before = [submit_vitals(link) for _ in range(5)]
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in before),
                          30), clinic.log_text()[-2000:]
        central.stop()
        during: list[uuid.UUID] = [submit_vitals(link) for _ in range(20)]
        # The clinic's broker took them (PUBACK): the station has let them go to the broker.
        assert wait_until(lambda: outbox.stats().depth == 0, 15)
        # The center stays away a while, but is back before the bridge's first reconnection
        # attempt (restart_timeout 5): Mosquitto 2.0.11's bridge can hang for good after a
        # failed attempt (deploy/mosquitto/bridge-to-center.conf, docs/deploy-practice.md).
        time.sleep(1.0)
        central.start()
        expected = {m.hex[:20] for m in before + during}
        assert wait_until(lambda: {g["control_id"] for g in mllp_server.received()} == expected,
                          90), (len(mllp_server.received()), clinic.log_text()[-1500:])
        # Each once downstream, in the order the station sent them.
        got = [g["control_id"] for g in mllp_server.received()]
        assert got == [m.hex[:20] for m in before + during]
        strict(mllp_server.received()[-1]["raw"])
        # And the EHR's acks crossed the bridge back to the station.
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED
                                      for m in during), 60)
    finally:
        link.stop()
        gateway.stop()
