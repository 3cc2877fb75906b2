"""FHIR REST output: the station's Bundle POSTed as a transaction to an EHR endpoint.

The EHR here is a real HTTP server in this process (stdlib http.server) that checks what a
FHIR server would: the bearer token, the media type, and the Bundle itself with fhir.resources
(R4B, another project's FHIR models) — type `transaction`, every entry with a request. It was
not tested against a real FHIR server (HAPI FHIR cannot run on this machine); the expected
handling is the FHIR R4 RESTful API's (hl7.org/fhir/R4/http.html):
- #transaction: success is 200 OK with a Bundle of type transaction-response; a failed
  transaction is an HTTP error with an OperationOutcome, and nothing of it is kept;
- #ccreate: a conditional create (Bundle.entry.request.ifNoneExist) creates nothing when a
  resource matching the search already exists, so a Bundle sent again is harmless;
- #2.21.0.11 (HTTP status codes): 4xx the client's error, 5xx the server's; RFC 9110 15.5.9 and
  RFC 6585 4: 408 and 429 mean "try again later".
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from station.gateway.config import GatewayFhir, GatewayRoutes, GatewaySettings
from station.gateway.service import Gateway
from station.gateway.store import RowState, SqliteGatewayStore
from station.sync import payloads
from station.sync.contract import Channel, to_json
from station.sync.outbox import DeliveryState, Outbox
from tests.fixtures.broker import Broker
from tests.fixtures.mllp import MllpServer
from tests.gateway.test_gateway_e2e import SITE, STATION, gateway_settings, station_link, wait_until
from tests.sync.samples import AT
from tests.sync.test_lists_fhir import lists_submission

TOKEN = "test-token-not-a-secret"


def operation_outcome(text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "processing", "diagnostics": text}]}


@dataclass
class FhirEhr:
    """What the test EHR saw and how it is to answer next (a script of replies)."""

    port: int = 0
    script: list[str | int] = field(default_factory=list)  # 200, 422, 503, "hang"
    seen: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/fhir"


def _handler(ehr: FhirEhr) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads `seen`."""

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            with ehr.lock:
                plan = ehr.script.pop(0) if ehr.script else 200
            record: dict[str, Any] = {"path": self.path, "answer": plan,
                                      "auth": self.headers.get("Authorization"),
                                      "type": self.headers.get("Content-Type")}
            try:
                bundle = json.loads(raw)
                record["bundle"] = bundle
                record["id"] = bundle.get("identifier", {}).get("value")
            except ValueError:
                bundle = None
            ehr.seen.append(record)
            if plan == "hang":
                time.sleep(1.5)  # longer than the gateway waits
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._reply(401, operation_outcome("no valid bearer token"))
                return
            problems = []
            if not str(self.headers.get("Content-Type")).startswith("application/fhir+json"):
                problems.append("media type is not application/fhir+json")
            try:
                model = Bundle.model_validate(bundle)
            except Exception as exc:
                problems.append(f"not a FHIR R4B Bundle: {exc}")
            else:
                if model.type != "transaction":
                    problems.append(f"Bundle.type {model.type}, expected transaction")
                for entry in model.entry or []:
                    if entry.request is None or entry.request.method != "POST":
                        problems.append(f"entry {entry.fullUrl} has no POST request")
            if problems:
                self._reply(400, operation_outcome("; ".join(problems)))
                return
            assert isinstance(plan, int)
            if plan >= 300:
                self._reply(plan, operation_outcome(f"refused with {plan}: Unknown patient"))
                return
            entries = [{"response": {"status": "201 Created"}} for _ in bundle["entry"]]
            self._reply(200, {"resourceType": "Bundle", "type": "transaction-response",
                              "entry": entries})

    return Handler


@pytest.fixture
def fhir_ehr() -> Iterator[FhirEhr]:
    ehr = FhirEhr()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ehr))
    ehr.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ehr
    server.shutdown()
    server.server_close()


def fhir_settings(ehr: FhirEhr, tmp_path: Path, base: GatewaySettings | None = None,
                  timeout_s: float = 5.0) -> GatewaySettings:
    token = tmp_path / "fhir-token"
    token.write_text(TOKEN + "\n")
    return (base or GatewaySettings()).model_copy(update={
        "routes": GatewayRoutes(vitals="fhir", checkin="fhir"),
        "fhir": GatewayFhir(base_url=ehr.url, token_file=token, require_https=False,
                            timeout_s=timeout_s, retry_min_s=0.05, retry_max_s=0.2)})


def offline_gateway(settings: GatewaySettings, tmp_path: Path) -> Gateway:
    """A gateway not connected to any broker: send_one drives it (acks wait in the store)."""
    return Gateway(settings, store=SqliteGatewayStore(tmp_path / "gw.sqlite3"))


def queue_vitals(gateway: Gateway, mid: uuid.UUID | None = None) -> uuid.UUID:
    mid = mid or uuid.uuid4()
    body = to_json(payloads.vitals(lists_submission(), message_id=mid, site=SITE,
                                   station_id=STATION, sent_at=AT))
    gateway.store.offer(str(mid), f"rooming/v1/{SITE}/{STATION}/vitals", body, time.time())
    return mid


def outcome(gateway: Gateway, mid: uuid.UUID) -> tuple[RowState, str] | None:
    for row in gateway.store.acks_to_publish():
        if row.message_id == str(mid):
            return row.state, row.reason
    return None


def test_the_bundle_goes_as_a_transaction_with_the_token_and_2xx_files_it(
    fhir_ehr: FhirEhr, tmp_path: Path
) -> None:
    gateway = offline_gateway(fhir_settings(fhir_ehr, tmp_path), tmp_path)
    mid = queue_vitals(gateway)
    assert gateway.send_one()
    assert outcome(gateway, mid) == (RowState.FILED, "")
    (seen,) = fhir_ehr.seen
    assert (seen["path"], seen["auth"], seen["answer"]) == ("/fhir", f"Bearer {TOKEN}", 200)
    assert seen["type"].startswith("application/fhir+json")
    bundle = seen["bundle"]
    assert bundle["type"] == "transaction"
    assert bundle["identifier"]["value"] == f"urn:uuid:{mid}"
    collection = payloads.vitals(lists_submission(), message_id=mid, site=SITE,
                                 station_id=STATION, sent_at=AT).fhir_bundle
    assert [e["fullUrl"] for e in bundle["entry"]] == [
        e["fullUrl"] for e in collection["entry"]]  # type: ignore[index,union-attr]
    for entry in bundle["entry"]:
        request, resource = entry["request"], entry["resource"]
        assert (request["method"], request["url"]) == ("POST", resource["resourceType"])
        # A conditional create on the resource's own identifier: sent again, nothing twice.
        ident = resource["identifier"]
        first = ident[0] if isinstance(ident, list) else ident
        assert request["ifNoneExist"] == f"identifier={first['system']}|{first['value']}"
    gateway.store.close()


def test_a_4xx_with_an_operation_outcome_is_rejected_with_its_diagnostics(
    fhir_ehr: FhirEhr, tmp_path: Path
) -> None:
    fhir_ehr.script = [422]
    gateway = offline_gateway(fhir_settings(fhir_ehr, tmp_path), tmp_path)
    mid = queue_vitals(gateway)
    assert gateway.send_one()
    assert outcome(gateway, mid) == (
        RowState.REJECTED, "not filed by the EHR (HTTP 422): refused with 422: Unknown patient")
    assert gateway.send_one()  # nothing queued: a rejection is never sent again
    assert len(fhir_ehr.seen) == 1
    gateway.store.close()


def test_5xx_timeouts_and_429_are_retried_in_order_never_dropped(
    fhir_ehr: FhirEhr, tmp_path: Path
) -> None:
    fhir_ehr.script = [503, "hang", 429, 200, 200]
    gateway = offline_gateway(fhir_settings(fhir_ehr, tmp_path, timeout_s=0.5), tmp_path)
    first, second = queue_vitals(gateway), queue_vitals(gateway)
    results = [gateway.send_one() for _ in range(3)]
    assert results == [False, False, False]
    stats = gateway.store.stats()
    assert (stats.queued, stats.head_attempts) == (2, 3)
    assert "answered 429" in stats.last_error
    assert gateway.send_one() and gateway.send_one()
    # The first message until it was taken, then the second: never overtaken, none lost.
    assert [s["id"] for s in fhir_ehr.seen] == [f"urn:uuid:{first}"] * 4 + [f"urn:uuid:{second}"]
    assert outcome(gateway, first) == (RowState.FILED, "")
    assert outcome(gateway, second) == (RowState.FILED, "")
    gateway.store.close()


def test_a_wrong_token_is_the_servers_refusal_not_a_retry(fhir_ehr: FhirEhr,
                                                          tmp_path: Path) -> None:
    settings = fhir_settings(fhir_ehr, tmp_path)
    assert settings.fhir is not None and settings.fhir.token_file is not None
    settings.fhir.token_file.write_text("someone-elses-token\n")
    gateway = offline_gateway(settings, tmp_path)
    mid = queue_vitals(gateway)
    assert gateway.send_one()
    assert outcome(gateway, mid) == (
        RowState.REJECTED, "not filed by the EHR (HTTP 401): no valid bearer token")
    gateway.store.close()


@pytest.mark.broker
@pytest.mark.slow
def test_the_station_sees_received_and_rejected_from_the_fhir_server(
    deploy_broker: Broker, mllp_server: MllpServer, fhir_ehr: FhirEhr, tmp_path: Path
) -> None:
    from tests.sync.consumer import outbox_paths

    (tmp_path / "station").mkdir()
    box = Outbox(*outbox_paths(tmp_path / "station"))
    fhir_ehr.script = [200, 422]
    settings = fhir_settings(fhir_ehr, tmp_path,
                             gateway_settings(deploy_broker, mllp_server, tmp_path / "gw.db"))
    gateway = Gateway(settings)
    gateway.start()
    link = station_link(deploy_broker, box)
    link.start()
    try:
        assert gateway.wait_subscribed(10)
        ids = []
        for _ in range(2):
            mid = uuid.uuid4()
            link.submit(Channel.VITALS, to_json(payloads.vitals(
                lists_submission(), message_id=mid, site=SITE, station_id=STATION,
                sent_at=AT)), mid)
            ids.append(mid)
            assert wait_until(lambda m=mid: box.state(m) in (DeliveryState.RECEIVED,
                                                              DeliveryState.REJECTED))
        assert box.state(ids[0]) == DeliveryState.RECEIVED
        assert box.state(ids[1]) == DeliveryState.REJECTED
        assert box.rejection(ids[1]) == (
            "not filed by the EHR (HTTP 422): refused with 422: Unknown patient")
        assert mllp_server.received() == []  # routed to FHIR, not to the MLLP listener
    finally:
        link.stop()
        gateway.stop()
        box.close()
