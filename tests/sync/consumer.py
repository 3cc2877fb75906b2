"""The practice system's side in tests: a real paho subscriber that dedups by message_id."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import jsonschema
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from station import schemas
from tests.fixtures.broker import Broker

# Formats on (RFC 3339 date-times and the rest): what a station sends must hold to the
# published schemas exactly as an integrator's validator would check it.
_FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def contract_problems(payload: bytes) -> list[str]:
    """What is wrong with one station message by its published JSON Schema (docs/schemas/,
    chosen by the envelope's `schema`, e.g. rooming.help_request/1 -> help-request)."""
    body = json.loads(payload)
    name = body.get("schema") if isinstance(body, dict) else None
    if not isinstance(name, str):
        return []  # a test's own stand-in body, not a station message
    kind = name.removeprefix("rooming.").split("/")[0].replace("_", "-")
    path = schemas.SCHEMA_DIR / f"{kind}.schema.json"
    if not path.exists():
        return [f"{name}: no published schema {path.name}"]
    validator = jsonschema.Draft202012Validator(json.loads(path.read_text()),
                                                format_checker=_FORMATS)
    return [f"{name}: {e.json_path}: {e.message}" for e in validator.iter_errors(body)]


class Consumer:
    """Counts every message_id it sees per topic (QoS 1 at least once), and the distinct set."""

    def __init__(self, broker: Broker, topic: str = "rooming/v1/#", *,
                 identity: str = "practice-system", client_id: str = "practice-consumer",
                 persistent: bool = False) -> None:
        self.seen: Counter[str] = Counter()
        self.topics: dict[str, str] = {}
        self.bodies: dict[str, dict[str, object]] = {}
        self.order: list[str] = []
        # Every station message received, checked against docs/schemas with formats on;
        # `close()` fails the test on any problem.
        self.contract_errors: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=paho.MQTTv5)
        if broker.pki is not None:
            cert = broker.pki.client(identity)
            self.client.tls_set(ca_certs=str(broker.pki.ca), certfile=str(cert.cert),
                                keyfile=str(cert.key))
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.max_inflight_messages_set(100)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0, 1)
        properties = None
        if persistent:  # keep the session (and what arrives meanwhile) while away
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
        self.client.connect_async(broker.host, broker.port, clean_start=not persistent,
                                  properties=properties)
        self.client.loop_start()
        assert self._subscribed.wait(10), "practice consumer did not subscribe"

    def _on_message(self, client: paho.Client, userdata: object,
                    message: paho.MQTTMessage) -> None:
        problems = contract_problems(message.payload)
        if problems:
            with self._lock:
                self.contract_errors.extend(problems)
        if message.topic.endswith("/status"):
            return
        body = json.loads(message.payload)
        with self._lock:
            mid = body["message_id"]
            if mid not in self.seen:
                self.order.append(mid)
                self.bodies[mid] = body
            self.seen[mid] += 1
            self.topics[mid] = message.topic

    def distinct(self) -> set[str]:
        with self._lock:
            return set(self.seen)

    def wait_for(self, expected: set[str], timeout_s: float) -> set[str]:
        """Wait until every expected id arrived; returns the ones still missing."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            missing = expected - self.distinct()
            if not missing:
                return set()
            time.sleep(0.05)
        return expected - self.distinct()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        assert self.contract_errors == [], self.contract_errors[:5]


def outbox_paths(directory: Path) -> tuple[Path, Path]:
    return directory / "outbox.sqlite3", directory / "outbox.key"
