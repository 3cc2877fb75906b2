"""`station config check --gateway`, `station gateway sample|status`: what an installer runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from station.cli import main
from station.gateway.store import RowState, SqliteGatewayStore


def test_the_sample_gateway_file_passes_its_own_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gateway", "sample"]) == 0
    path = tmp_path / "gateway.toml"
    path.write_text(capsys.readouterr().out)
    assert main(["config", "check", "--gateway", str(path)]) == 0
    out = capsys.readouterr().out
    assert out == (f"{path}: OK — broker broker.practice.example:8883 with TLS as "
                   "practice-gateway-1 (group ehr-gateway; vitals, checkin, alert), MLLP "
                   "interface-engine.practice.example:2575, store "
                   "/var/lib/station-gateway/gateway.sqlite3\n")


@pytest.mark.parametrize(("text", "problem"), [
    ("[mllp]\nport = 2575\n", "[broker]: missing: the gateway needs its broker"),
    ("[broker]\nhost = 'b'\nrequire_tls = true\n",
     "broker: Value error, require_tls = true needs ca_file (and cert_file/key_file for "
     "mutual TLS); set require_tls = false only for a test broker"),
    ("[broker]\nrequire_tls = false\nshare_group = 'a/b'\n",
     "broker.share_group: got 'a/b', expected"),
    ("[broker]\nrequire_tls = false\n[mllp]\nretry_min_s = 9\nretry_max_s = 1\n",
     "mllp: Value error, retry_min_s must not exceed retry_max_s"),
    ("[broker]\nrequire_tls = false\n[hl7]\ncheckin_message = 'SIU^S12'\n",
     "hl7.checkin_message: "),
])
def test_a_bad_gateway_file_is_refused_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    assert main(["config", "check", "--gateway", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}: {problem}"), err


def test_status_reports_queue_outcomes_and_the_last_downstream_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "gw.sqlite3"
    config = tmp_path / "gateway.toml"
    config.write_text(f"[broker]\nrequire_tls = false\n[store]\npath = '{store_path}'\n")
    store = SqliteGatewayStore(store_path)
    store.offer("00000000-0000-4000-8000-000000000001", "rooming/v1/s/e/vitals", b"{}", 1000.0)
    store.offer("00000000-0000-4000-8000-000000000002", "rooming/v1/s/e/vitals", b"{}", 1001.0)
    # The same message_id again (QoS 1 redelivery) is not queued twice.
    store.offer("00000000-0000-4000-8000-000000000002", "rooming/v1/s/e/vitals", b"{}", 1002.0)
    store.offer("00000000-0000-4000-8000-000000000003", "rooming/v1/s/e/vitals", b"{}", 1003.0)
    head = store.next_queued()
    assert head is not None
    store.finish(head.seq, RowState.REJECTED, "not filed by the EHR (AR): x", 1004.0)
    head = store.next_queued()
    assert head is not None
    store.finish(head.seq, RowState.FILED, "", 1005.0)
    head = store.next_queued()
    assert head is not None
    store.attempt_failed(head.seq, "no ACK from 127.0.0.1:2575 within 30 s", 1006.0)
    store.close()
    assert main(["gateway", "status", "--config", str(config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {k: report[k] for k in ("queued", "head_attempts", "filed", "rejected",
                                   "acks_unpublished", "last_downstream_error")} == {
        "queued": 1, "head_attempts": 1, "filed": 1, "rejected": 1, "acks_unpublished": 2,
        "last_downstream_error": "no ACK from 127.0.0.1:2575 within 30 s"}
    assert report["lag_s"] > 0
