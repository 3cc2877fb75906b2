"""`station gateway status` on a running gateway whose EHR is away, then back.

What an operator reads when the MA's screens say "not yet received": how many messages wait,
how long the oldest has waited (measured against this test's own clock around the publishes),
and the last downstream error in words. The EHR is node-hl7-server (tests/conformance/mllp).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from station.cli import main
from station.config import BrokerSection
from station.gateway.service import Gateway
from station.sync.mqtt import MqttLink
from station.sync.outbox import DeliveryState, Outbox
from tests.fixtures.broker import Broker, free_port
from tests.fixtures.mllp import start_mllp
from tests.gateway.test_gateway_e2e import SITE, STATION, submit_vitals, wait_until
from tests.sync.consumer import outbox_paths

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def status(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert main(["gateway", "status", "--config", str(config), "--json"]) == 0
    report: dict[str, object] = json.loads(capsys.readouterr().out)
    return report


def prometheus(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, tuple[str, float]]:
    """`status --prometheus` read by the Prometheus project's own Python parser
    (prometheus_client.parser, the text exposition format 0.0.4): name -> (type, value)."""
    from prometheus_client.parser import text_string_to_metric_families

    capsys.readouterr()
    assert main(["gateway", "status", "--config", str(config), "--prometheus"]) == 0
    text = capsys.readouterr().out
    found: dict[str, tuple[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name] = (family.type, sample.value)
    return found


def test_status_reports_queue_lag_and_the_ehr_error_then_the_recovery(
    persistent_broker: Broker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # nothing listens here yet: the EHR is down
    store = tmp_path / "gw.sqlite3"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f"[broker]\nhost = '{persistent_broker.host}'\nport = {persistent_broker.port}\n"
        "require_tls = false\nclient_id = 'practice-gateway-1'\nsession_expiry_s = 3600\n"
        f"[mllp]\nhost = '127.0.0.1'\nport = {port}\nconnect_timeout_s = 1\n"
        "retry_min_s = 0.1\nretry_max_s = 0.3\n"
        f"[store]\npath = '{store}'\n"
    )
    from station.gateway.config import load_gateway_settings

    gateway = Gateway(load_gateway_settings(config))
    gateway.start()
    (tmp_path / "station").mkdir()
    outbox = Outbox(*outbox_paths(tmp_path / "station"))
    link = MqttLink(
        BrokerSection(host=persistent_broker.host, port=persistent_broker.port, require_tls=False),
        site=SITE,
        station_id=STATION,
        outbox=outbox,
        reconnect_min_s=0,
        reconnect_max_s=1,
    )
    link.start()
    ehr = None
    try:
        assert gateway.wait_subscribed(10)
        before = time.time()
        ids = [submit_vitals(link) for _ in range(4)]
        assert wait_until(lambda: gateway.store.stats().queued == 4)
        assert wait_until(lambda: gateway.store.stats().head_attempts >= 2)
        time.sleep(1.0)
        report = status(config, capsys)
        waited = time.time() - before
        assert report["queued"] == 4
        assert report["filed"] == 0
        # The oldest has waited at least the second slept, and no longer than since the first
        # publish (the report rounds to 0.1 s).
        lag = report["lag_s"]
        assert isinstance(lag, float)
        assert 1.0 <= lag <= waited + 0.1
        attempts = report["head_attempts"]
        assert isinstance(attempts, int)
        assert attempts >= 2
        error = report["last_downstream_error"]
        assert isinstance(error, str)
        assert error.startswith(f"cannot connect to the EHR's MLLP listener 127.0.0.1:{port}: ")
        assert report["sender"] == "practice-gateway-1"
        # The words an operator reads, not only the JSON.
        capsys.readouterr()
        assert main(["gateway", "status", "--config", str(config)]) == 0
        text = capsys.readouterr().out
        assert text.startswith("queued for the EHR: 4 (oldest waiting ")
        assert f"cannot connect to the EHR's MLLP listener 127.0.0.1:{port}" in text
        # The same health as Prometheus metrics, parsed by the Prometheus client's own parser:
        # numbers only, never the EHR's error text.
        metrics = prometheus(config, capsys)
        assert metrics["rooming_gateway_queued"] == ("gauge", 4.0)
        assert metrics["rooming_gateway_lag_seconds"][1] >= 1.0
        assert metrics["rooming_gateway_head_attempts"][1] >= 2
        # The client's parser names a counter's family without "_total", its sample with it.
        assert metrics["rooming_gateway_filed_total"] == ("counter", 0.0)
        assert metrics["rooming_gateway_last_downstream_error_age_seconds"][1] >= 0
        assert metrics["rooming_gateway_sender_info"] == ("gauge", 1.0)

        ehr = start_mllp(tmp_path / "ehr", port=port)
        assert wait_until(lambda: all(outbox.state(m) == DeliveryState.RECEIVED for m in ids), 30)
        report = status(config, capsys)
        assert (report["queued"], report["lag_s"], report["filed"]) == (0, None, 4)
        # The last error stays on record, with its age, after the EHR came back.
        assert isinstance(report["last_downstream_error_age_s"], float)
        metrics = prometheus(config, capsys)
        assert (metrics["rooming_gateway_queued"][1], metrics["rooming_gateway_lag_seconds"][1],
                metrics["rooming_gateway_filed_total"][1]) == (0.0, 0.0, 4.0)
    finally:
        link.stop()
        gateway.stop()
        outbox.close()
        if ehr is not None:
            ehr.stop()
