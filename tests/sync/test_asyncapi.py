"""docs/asyncapi.yaml is accepted by tools nobody here wrote, and says what the code does.

Outside truths:
- the official AsyncAPI parser, `@asyncapi/parser` 3.6.6 from npm (installed by `make venv`
  from tests/conformance/asyncapi/package-lock.json), which validates the document against
  the AsyncAPI 3.0.0 JSON Schema and the MQTT binding 0.2.0 schemas shipped in
  `@asyncapi/specs`; the test fails on any error or warning it reports;
- PyYAML, a YAML 1.1 loader: a plain scalar containing ": " is a mapping error there too;
- AsyncAPI 3.0.0 spec: an operation's `reply` names the reply channel and a runtime
  expression (`$message.payload#/...`) for the reply address; `X509` is the security scheme
  type for client certificates; MQTT binding 0.2.0 carries `lastWill`, `responseTopic` and
  `correlationData`;
- MQTT 5.0 (OASIS) §3.3.2.3.5-6: Response Topic and Correlation Data are PUBLISH properties.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from station.sync.connection import QOS
from station.sync.contract import Channel, device_status_topic, topic

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "asyncapi.yaml"
CHECKER = ROOT / "tests" / "conformance" / "asyncapi" / "check.mjs"
NODE_MODULES = CHECKER.parent / "node_modules" / "@asyncapi" / "parser"


def run_parser(path: Path) -> tuple[int, list[dict[str, Any]]]:
    node = shutil.which("node")
    assert node is not None, "node is missing: run `make venv` (scripts/debian-deps installs it)"
    assert NODE_MODULES.is_dir(), "@asyncapi/parser is missing: run `make venv` (npm ci)"
    done = subprocess.run(
        [node, str(CHECKER), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SCARF_ANALYTICS": "false"},
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.stderr == "", done.stderr
    return done.returncode, lines


def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOC.read_text(encoding="utf-8"))
    return loaded


def test_the_official_asyncapi_parser_reports_no_error_and_no_warning() -> None:
    code, lines = run_parser(DOC)
    problems = [line for line in lines if "severity" in line and line["severity"] <= 1]
    assert problems == []
    assert code == 0
    [summary] = [line for line in lines if line.get("document")]
    assert summary == {
        "document": True,
        "version": "3.0.0",
        "channels": ["ack", "alert", "audit", "checkin", "config", "deviceStatus", "lookup",
                     "lookupResponse", "schedule", "status", "vitals"],
        "operations": ["receiveAck", "receiveConfig", "receiveSchedule", "sendAlert",
                       "sendAudit", "sendCheckin", "sendDeviceStatus", "sendLookup",
                       "sendStatus", "sendVitals"],
        "securitySchemes": [["mutualTls", "X509"]],
    }


def test_the_parser_does_refuse_what_the_issue_found(tmp_path: Path) -> None:
    # Issue 14: an unquoted description containing ": " broke the document for every tool.
    text = DOC.read_text(encoding="utf-8").replace(
        "description: The practice system filed (or rejected) a station message, by its "
        "message_id.",
        "description: Acks: the practice system filed it.",
    )
    assert "Acks: the practice" in text
    bad = tmp_path / "docs" / "asyncapi.yaml"
    bad.parent.mkdir()
    bad.write_text(text, encoding="utf-8")
    (tmp_path / "docs" / "schemas").symlink_to(DOC.parent / "schemas")
    code, lines = run_parser(bad)
    assert code == 1
    assert [line["code"] for line in lines if line.get("severity") == 0] == ["parser"]


def test_pyyaml_loads_it() -> None:
    assert spec()["asyncapi"] == "3.0.0"


def test_the_channels_are_the_topics_the_code_uses() -> None:
    channels = spec()["channels"]
    by_channel = {
        "status": Channel.STATUS, "vitals": Channel.VITALS, "checkin": Channel.CHECKIN,
        "alert": Channel.ALERT, "lookup": Channel.LOOKUP,
        "lookupResponse": Channel.LOOKUP_RESPONSE, "schedule": Channel.SCHEDULE,
        "config": Channel.CONFIG, "ack": Channel.ACK,
    }
    for name, channel in by_channel.items():
        assert channels[name]["address"] == topic("{site}", "{station_id}", channel), name
    assert channels["deviceStatus"]["address"] == device_status_topic(
        "{site}", "{station_id}", "{device_id}")
    # Every payload schema it references is a published schema file.
    for message in spec()["components"]["messages"].values():
        ref = message["payload"]["schema"]["$ref"]
        assert (DOC.parent / ref).is_file(), ref


def test_the_lookup_is_modelled_as_a_request_with_a_reply() -> None:
    doc = spec()
    send = doc["operations"]["sendLookup"]
    assert send["reply"]["channel"] == {"$ref": "#/channels/lookupResponse"}
    assert send["reply"]["address"]["location"] == "$message.payload#/reply_to"
    correlation = doc["components"]["correlationIds"]["lookup"]
    assert correlation["location"] == "$message.payload#/correlation_id"
    request = doc["components"]["messages"]["lookupRequest"]
    response = doc["components"]["messages"]["lookupResponse"]
    for message in (request, response):
        assert message["correlationId"] == {"$ref": "#/components/correlationIds/lookup"}
        # A UUID's 16 bytes, as station.sync.mqtt sets CorrelationData = correlation_id.bytes
        binding = message["bindings"]["mqtt"]["correlationData"]
        assert (binding["minLength"], binding["maxLength"]) == (16, 16)
    assert "responseTopic" in request["bindings"]["mqtt"]
    # The body fields the runtime expressions point at exist in the published schemas.
    schemas = DOC.parent / "schemas"
    req = json.loads((schemas / "lookup-request.schema.json").read_text())
    resp = json.loads((schemas / "lookup-response.schema.json").read_text())
    assert {"reply_to", "correlation_id"} <= set(req["required"])
    assert "correlation_id" in resp["required"]


def test_the_server_names_mutual_tls_and_the_last_will_the_station_sets() -> None:
    server = spec()["servers"]["practice-broker"]
    assert server["protocol"] == "secure-mqtt"
    assert server["security"] == [{"$ref": "#/components/securitySchemes/mutualTls"}]
    assert spec()["components"]["securitySchemes"]["mutualTls"]["type"] == "X509"
    will = server["bindings"]["mqtt"]["lastWill"]
    # station.sync.mqtt sets the will on the status topic, QoS 1, retained.
    assert will == {**will, "topic": topic("{site}", "{station_id}", Channel.STATUS),
                    "qos": QOS, "retain": True}


def test_every_operation_has_the_mqtt_qos_and_retain_the_station_uses() -> None:
    retained = {"sendStatus", "sendDeviceStatus", "receiveSchedule", "receiveConfig"}
    for name, operation in spec()["operations"].items():
        binding = operation["bindings"]["mqtt"]
        assert (binding["qos"], binding["retain"]) == (QOS, name in retained), name
