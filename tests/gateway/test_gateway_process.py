"""`station gateway run` as a process: killed mid-stream, and two replicas on one shared
subscription, against the shipped Mosquitto (mTLS + ACL) and a real MLLP server
(node-hl7-server). "Once downstream" is counted on what the MLLP server received, by MSH-10.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.gateway.store import SqliteGatewayStore
from station.sync.outbox import DeliveryState, Outbox
from tests.fixtures.broker import Broker
from tests.fixtures.mllp import MllpServer
from tests.gateway.test_gateway_e2e import station_link, strict, submit_vitals, wait_until
from tests.sync.consumer import outbox_paths

pytestmark = [pytest.mark.broker, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def write_config(directory: Path, broker: Broker, mllp: MllpServer, client_id: str) -> Path:
    assert broker.pki is not None
    cert = broker.pki.client(client_id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "gateway.toml"
    path.write_text(f"""
[broker]
host = "{broker.host}"
port = {broker.port}
require_tls = true
ca_file = "{broker.pki.ca}"
cert_file = "{cert.cert}"
key_file = "{cert.key}"
client_id = "{client_id}"
session_expiry_s = 3600

[mllp]
host = "127.0.0.1"
port = {mllp.port}
ack_timeout_s = 2
retry_min_s = 0.1
retry_max_s = 0.5

[store]
path = "{directory / 'gateway.sqlite3'}"
""")
    return path


def start_gateway(config: Path) -> subprocess.Popen[bytes]:
    log = (config.parent / "gateway.log").open("ab")
    try:
        return subprocess.Popen([sys.executable, "-m", "station", "gateway", "run", "--config",
                                 str(config)], cwd=REPO, stdout=log, stderr=log,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        log.close()


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    (tmp_path / "station").mkdir()
    box = Outbox(*outbox_paths(tmp_path / "station"))
    yield box
    box.close()


def test_a_gateway_killed_mid_stream_loses_nothing_and_files_nothing_twice(
    deploy_broker: Broker, mllp_server: MllpServer, outbox: Outbox, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "gw", deploy_broker, mllp_server, "practice-gateway-1")
    link = station_link(deploy_broker, outbox)
    link.start()
    gateway = start_gateway(config)
    try:
        # Its session (and so its share of the stream) exists from the first subscription on.
        assert wait_until(lambda: "subscribed" in (config.parent / "gateway.log").read_text(),
                          30)
        ids = [submit_vitals(link) for _ in range(60)]
        assert len(mllp_server.wait_for(10, 60)) >= 10, (config.parent / "gateway.log").read_text()
        gateway.kill()  # SIGKILL: no chance to finish anything
        gateway.wait(10)
        killed_at = len(mllp_server.received())
        assert killed_at < 60, "the stream had finished before the kill: nothing was tested"
        gateway = start_gateway(config)
        expected = {m.hex[:20] for m in ids}
        assert wait_until(lambda: {g["control_id"] for g in mllp_server.received()} >= expected,
                          90), (killed_at, outbox.stats(), [outbox.state(m) for m in ids])
        got = mllp_server.received()
        counts = Counter(g["control_id"] for g in got)
        assert set(counts) == expected  # nothing lost, nothing foreign
        # At most the one message that was on the wire when the process died goes again, with
        # the same MSH-10 (an EHR drops a repeated control id); nothing else twice.
        assert sum(c - 1 for c in counts.values()) <= 1
        # In the order the station sent them (a resend follows its original directly).
        order = list(dict.fromkeys(g["control_id"] for g in got))
        assert order == [m.hex[:20] for m in ids]
        for g in got[:3]:
            strict(g["raw"])
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in ids),
                          60)
    finally:
        stop(gateway)
        link.stop()


def test_two_replicas_on_one_shared_subscription_file_every_message_exactly_once(
    deploy_broker: Broker, mllp_server: MllpServer, outbox: Outbox, tmp_path: Path
) -> None:
    # Each replica with its own certificate (CN = client id) and its own store.
    configs = [write_config(tmp_path / f"gw{n}", deploy_broker, mllp_server,
                            f"practice-gateway-{n}") for n in (1, 2)]
    replicas = [start_gateway(c) for c in configs]
    link = station_link(deploy_broker, outbox)
    try:
        # Both subscribed before anything is sent (each says so on stderr).
        assert wait_until(lambda: all("subscribed" in (c.parent / "gateway.log").read_text()
                                      for c in configs), 30)
        link.start()
        ids = [submit_vitals(link) for _ in range(40)]
        expected = {m.hex[:20] for m in ids}
        assert wait_until(lambda: len(mllp_server.received()) >= 40, 90)
        time.sleep(1.0)  # anything sent twice would arrive by now
        counts = Counter(g["control_id"] for g in mllp_server.received())
        assert set(counts) == expected
        assert set(counts.values()) == {1}
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in ids),
                          60)
    finally:
        for proc in replicas:
            stop(proc)
        link.stop()
    # The broker split the stream: each replica filed some of it.
    shares = []
    for config in configs:
        store = SqliteGatewayStore(config.parent / "gateway.sqlite3")
        shares.append(store.stats().filed)
        store.close()
    assert sum(shares) == 40
    assert min(shares) > 0
