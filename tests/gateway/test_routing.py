"""Where each kind of station message goes, and that none is silently dropped.

Help requests, screening alerts and the multi-message vitals (ORU^R01 + ADT^A60) through the
shipped Mosquitto (mTLS + ACL) into real MLLP listeners (node-hl7-server), the station's real
MqttLink and Outbox on the other side. Outside truths: HL7 v2.5.1 ch. 3 3.3.60 (ADT^A60),
ch. 7 7.3.1 (ORU^R01, PATIENT optional), ch. 2 2.14.9.10 (MSH-10 identifies one message);
the station contract (docs/mqtt.md): every message the station sends waits for an `ack`.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from station.cli import main
from station.gateway.config import GatewayMllp, GatewayRoutes, GatewaySettings
from station.gateway.routing import Destination, lane_for, plan
from station.gateway.service import Gateway
from station.gateway.store import Lane, Offered, Row, RowState, SqliteGatewayStore
from station.sync import payloads
from station.sync.contract import Channel, to_json
from station.sync.outbox import DeliveryState, Outbox
from tests.fixtures.broker import Broker
from tests.fixtures.mllp import MllpServer, start_mllp
from tests.gateway.test_gateway_e2e import (
    SITE,
    STATION,
    gateway_settings,
    station_link,
    strict,
    wait_until,
)
from tests.gateway.test_hl7v2_intake import vitals
from tests.sync.samples import AT, PATIENT, submission
from tests.sync.test_mqtt_doc import item9_alert

NOW = datetime(2026, 3, 2, 15, 10, tzinfo=UTC)


def row(channel: str, body: bytes, message_id: str = "m") -> Row:
    return Row(seq=1, message_id=message_id, topic=f"rooming/v1/{SITE}/{STATION}/{channel}",
               body=body, state=RowState.QUEUED, reason="", attempts=0)


def help_body(mid: uuid.UUID | None = None) -> bytes:
    return to_json(payloads.help_request(screen="find", language="es", requested_at=AT,
                                         message_id=mid or uuid.uuid4(), site=SITE,
                                         station_id=STATION, sent_at=AT))


def screening_alert_body(mid: uuid.UUID | None = None) -> bytes:
    return to_json(payloads.screening_alert(
        item9_alert(), appointment_id="APT-0001", patient=PATIENT, language="en",
        raised_at=AT, message_id=mid or uuid.uuid4(), site=SITE, station_id=STATION,
        sent_at=AT))


def test_help_requests_are_acked_without_forwarding_unless_routed_to_a_listener() -> None:
    acked = plan(row("alert", help_body()), GatewaySettings(), NOW)
    assert (acked.parts, acked.reject_reason) == ((), "")
    assert "not forwarded" in acked.skip_reason
    paging = GatewaySettings(routes=GatewayRoutes(help_request="alerts"),
                             alerts_mllp=GatewayMllp(port=2576))
    forwarded = plan(row("alert", help_body()), paging, NOW)
    assert [(p.destination, p.label) for p in forwarded.parts] == [
        (Destination.ALERTS, "ORU^R01")]


def test_an_alert_of_a_kind_the_gateway_does_not_know_is_rejected_saying_so() -> None:
    body = (b'{"schema": "rooming.fire_drill/1", "message_id": "'
            + str(uuid.uuid4()).encode() + b'"}')
    got = plan(row("alert", body), GatewaySettings(), NOW)
    assert got.parts == ()
    assert got.reject_reason.startswith(
        "the practice gateway takes no 'rooming.fire_drill/1' messages on alert (expected ")


def test_alerts_ride_their_own_lane() -> None:
    assert lane_for(f"rooming/v1/{SITE}/{STATION}/alert") is Lane.ALERT
    assert lane_for(f"rooming/v1/{SITE}/{STATION}/vitals") is Lane.CHART
    assert lane_for(f"rooming/v1/{SITE}/{STATION}/checkin") is Lane.CHART


def test_vitals_with_an_allergy_review_are_two_messages_with_their_own_control_ids() -> None:
    got = plan(row("vitals", to_json(vitals())), GatewaySettings(), NOW)
    assert [p.label for p in got.parts] == ["ORU^R01", "ADT^A60"]
    ids = [p.er7.split("\r")[0].split("|")[9] for p in got.parts]
    assert len(set(ids)) == 2
    none = plan(row("vitals", to_json(vitals())),
                GatewaySettings.model_validate({"hl7": {"allergies_message": "none"}}), NOW)
    assert [p.label for p in none.parts] == ["ORU^R01"]


def test_a_store_from_before_lanes_opens_and_keeps_its_queue(tmp_path: Path) -> None:
    # The schema the first release wrote (no lane, no parts_done), one message queued.
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE inbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, message_id TEXT NOT NULL
            UNIQUE, topic TEXT NOT NULL, body BLOB NOT NULL, received_at REAL NOT NULL,
            state TEXT NOT NULL DEFAULT 'queued', reason TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 0, ack_published INTEGER NOT NULL DEFAULT 0,
            done_at REAL);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO inbox (message_id, topic, body, received_at)
            VALUES ('old-1', 'rooming/v1/s/st/vitals', x'7b7d', 1.0);
    """)
    db.commit()
    db.close()
    store = SqliteGatewayStore(path)
    head = store.next_queued(Lane.CHART)
    assert head is not None and (head.message_id, head.parts_done) == ("old-1", 0)
    assert store.offer("old-1", head.topic, b"{}", 2.0) is Offered.DUPLICATE
    store.close()


@pytest.mark.parametrize(("text", "problem"), [
    ("[routes]\nhelp_request = 'alerts'\n",
     'Value error, routes.help_request = "alerts" needs an [alerts_mllp] section'),
    ("[routes]\nscreening_alert = 'ack'\n", "routes.screening_alert: "),
    ("[routes]\nvitals = 'fhir'\n", 'Value error, routes.vitals = "fhir" needs a [fhir] section'),
    ("[fhir]\nbase_url = 'http://ehr.example/fhir'\n",
     "fhir: Value error, base_url is not https"),
    ("[store]\nkind = 'postgresql'\n", 'store: Value error, kind = "postgresql" needs dsn'),
    ("[store]\nkind = 'postgresql'\ndsn = 'host=db user=gw password=hunter2'\n",
     "store: Value error, dsn carries a password"),
])
def test_station_config_check_refuses_bad_routes_and_stores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("[broker]\nrequire_tls = false\n" + text)
    assert main(["config", "check", "--gateway", str(path)]) == 2
    err = capsys.readouterr().err
    assert problem in err, err


def test_station_config_check_reads_the_fhir_token(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "gateway.toml"
    token = tmp_path / "token"
    path.write_text(f"[broker]\nrequire_tls = false\n[routes]\nvitals = 'fhir'\n[fhir]\n"
                    f"base_url = 'https://ehr.example/fhir'\ntoken_file = '{token}'\n")
    assert main(["config", "check", "--gateway", str(path)]) == 2
    assert "cannot read the FHIR token" in capsys.readouterr().err
    token.write_text("abc.def.ghi\n")
    assert main(["config", "check", "--gateway", str(path)]) == 0
    assert "FHIR https://ehr.example/fhir" in capsys.readouterr().out


# ------------------------------------------------------------------ through the real parts


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    from tests.sync.consumer import outbox_paths

    (tmp_path / "station").mkdir()
    return Outbox(*outbox_paths(tmp_path / "station"))


def run(gateway: Gateway, broker: Broker, box: Outbox) -> object:
    link = station_link(broker, box)
    gateway.start()
    link.start()
    assert gateway.wait_subscribed(10)
    return link


@pytest.mark.broker
@pytest.mark.slow
def test_a_help_request_is_acked_received_and_nothing_reaches_the_ehr(
    deploy_broker: Broker, mllp_server: MllpServer, outbox: Outbox, tmp_path: Path
) -> None:
    gateway = Gateway(gateway_settings(deploy_broker, mllp_server, tmp_path / "gw.sqlite3"))
    link = run(gateway, deploy_broker, outbox)
    try:
        mid = uuid.uuid4()
        link.submit(Channel.ALERT, help_body(mid), mid)  # type: ignore[attr-defined]
        assert wait_until(lambda: outbox.state(mid) == DeliveryState.RECEIVED)
        assert mllp_server.received() == []
    finally:
        link.stop()  # type: ignore[attr-defined]
        gateway.stop()
        outbox.close()


@pytest.mark.broker
@pytest.mark.slow
def test_a_screening_alert_reaches_the_alerts_listener_while_the_ehr_is_down(
    deploy_broker: Broker, outbox: Outbox, tmp_path: Path
) -> None:
    # The EHR's listener is gone: the vitals wait. The alerts listener takes the PHQ-9
    # item 9 alert (and a help request routed there) at once, ahead of the chart queue.
    down = start_mllp(tmp_path / "down")
    down.stop()
    alerts = start_mllp(tmp_path / "alerts")
    base = gateway_settings(deploy_broker, down, tmp_path / "gw.sqlite3")
    settings = base.model_copy(update={
        "routes": GatewayRoutes(screening_alert="alerts", help_request="alerts"),
        "alerts_mllp": GatewayMllp(host="127.0.0.1", port=alerts.port, ack_timeout_s=2,
                                   retry_min_s=0.1, retry_max_s=0.5)})
    gateway = Gateway(settings)
    link = run(gateway, deploy_broker, outbox)
    try:
        chart = uuid.uuid4()
        link.submit(Channel.VITALS, to_json(payloads.vitals(  # type: ignore[attr-defined]
            submission(), message_id=chart, site=SITE, station_id=STATION, sent_at=AT)), chart)
        assert wait_until(lambda: "cannot connect" in gateway.store.stats().last_error)
        alert, help_id = uuid.uuid4(), uuid.uuid4()
        link.submit(Channel.ALERT, screening_alert_body(alert),  # type: ignore[attr-defined]
                    alert)
        link.submit(Channel.ALERT, help_body(help_id), help_id)  # type: ignore[attr-defined]
        got = alerts.wait_for(2, 20)
        assert [g["control_id"] for g in got] == [alert.hex[:20], help_id.hex[:20]]
        assert [g["ack"] for g in got] == ["AA", "AA"]
        for g in got:
            strict(g["raw"])
        assert "OBX|1|CWE|44260-8^^LN||LA6569-3^Several days^LN|||AA" in got[0]["raw"]
        assert "\rPID|" not in got[1]["raw"].replace("\n", "\r")
        assert wait_until(lambda: outbox.state(alert) == DeliveryState.RECEIVED)
        assert outbox.state(chart) != DeliveryState.RECEIVED
        assert gateway.store.stats().queued == 1  # the vitals, still waiting for the EHR
    finally:
        link.stop()  # type: ignore[attr-defined]
        gateway.stop()
        alerts.stop()
        outbox.close()


@pytest.mark.broker
@pytest.mark.slow
def test_vitals_with_allergies_reach_the_ehr_as_oru_then_adt_a60(
    deploy_broker: Broker, mllp_server: MllpServer, outbox: Outbox, tmp_path: Path
) -> None:
    gateway = Gateway(gateway_settings(deploy_broker, mllp_server, tmp_path / "gw.sqlite3"))
    link = run(gateway, deploy_broker, outbox)
    try:
        mid = uuid.uuid4()
        body = to_json(vitals().model_copy(update={"message_id": mid}))
        link.submit(Channel.VITALS, body, mid)  # type: ignore[attr-defined]
        got = mllp_server.wait_for(2, 30)
        assert [(g["type"], g["ack"]) for g in got] == [("ORU^R01", "AA"), ("ADT^A60", "AA")]
        assert got[0]["control_id"] == mid.hex[:20]
        for g in got:
            strict(g["raw"])
        assert wait_until(lambda: outbox.state(mid) == DeliveryState.RECEIVED)
        time.sleep(0.5)
        assert len(mllp_server.received()) == 2  # nothing sent twice
    finally:
        link.stop()  # type: ignore[attr-defined]
        gateway.stop()
        outbox.close()


@pytest.mark.broker
@pytest.mark.slow
def test_a_refused_allergy_update_says_the_vitals_before_it_were_filed(
    deploy_broker: Broker, outbox: Outbox, tmp_path: Path
) -> None:
    ehr = start_mllp(tmp_path / "ehr", "--reject-type", "ADT^A60", "--reason",
                     "Allergy interface not enabled")
    gateway = Gateway(gateway_settings(deploy_broker, ehr, tmp_path / "gw.sqlite3"))
    link = run(gateway, deploy_broker, outbox)
    try:
        mid = uuid.uuid4()
        link.submit(Channel.VITALS, to_json(vitals().model_copy(  # type: ignore[attr-defined]
            update={"message_id": mid})), mid)
        assert wait_until(lambda: outbox.state(mid) == DeliveryState.REJECTED)
        assert outbox.rejection(mid) == (
            "not filed by the EHR (AR): Allergy interface not enabled (the ADT^A60; the "
            "ORU^R01 before it was filed)")
        time.sleep(0.5)
        assert [(g["type"], g["ack"]) for g in ehr.received()] == [
            ("ORU^R01", "AA"), ("ADT^A60", "AR")]  # neither sent again
    finally:
        link.stop()  # type: ignore[attr-defined]
        gateway.stop()
        ehr.stop()
        outbox.close()
