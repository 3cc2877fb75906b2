"""The bridge watchdog: a heartbeat through a clinic's Mosquitto bridge, judged at the center.

Mosquitto 2.0.11 (Debian 12's) can leave a bridge hung after a failed reconnection: TCP is
up but the CONNECT is never sent, so nothing crosses until the clinic's broker restarts
(eclipse-mosquitto/mosquitto#2207, "broken bridge functionality"). From inside the clinic
broker nothing looks wrong, so this watches from outside, on the clinic's server:

- every `interval_s` it publishes a heartbeat to the clinic broker (QoS 1, expiring) on
  `rooming/v1/<site>/bridge-watch/heartbeat`, which the bridge carries like the stations'
  messages, and the same heartbeat marked "direct" straight to the center;
- it subscribes at the center and notes when each kind last arrived, and when the clinic
  broker last acknowledged (PUBACK) a heartbeat.

`BridgeJudge` (pure: times in, a verdict out) says what that means; `BridgeWatch` runs the two
MQTT connections, raises the alarm (an ERROR log line, the systemd STATUS, a retained state
message at the center) and runs `restart_command` when restarting the clinic broker can help.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from station.config import TOPIC_LEVEL, TomlError, describe_validation_error, parse_toml
from station.errors import ConfigError

log = logging.getLogger(__name__)
HEARTBEAT_SCHEMA = "rooming.bridge_heartbeat/1"
STATE_SCHEMA = "rooming.bridge_watch_state/1"


def heartbeat_topic(site: str) -> str:
    return f"rooming/v1/{site}/bridge-watch/heartbeat"


def state_topic(site: str) -> str:
    return f"rooming/v1/{site}/bridge-watch/state"


# ----------------------------------------------------------------------------------- judge


class WatchState(StrEnum):
    STARTING = "starting"  # no heartbeat through the bridge yet, still within stall_after_s
    OK = "ok"  # a heartbeat crossed the bridge within stall_after_s
    BRIDGE_STALLED = "bridge_stalled"  # both brokers answer, nothing crosses: restart clinic
    CLINIC_UNRESPONSIVE = "clinic_unresponsive"  # the clinic broker acks nothing: restart it
    CENTER_UNREACHABLE = "center_unreachable"  # the center itself is away: a restart won't help


HEALTHY = frozenset({WatchState.STARTING, WatchState.OK})


@dataclass(frozen=True)
class Verdict:
    state: WatchState
    restart: bool  # run the restart command now
    bridge_age_s: float | None  # since the last heartbeat through the bridge (None: never)


class BridgeJudge:
    """What the heartbeats' arrival times mean. All times are one monotonic clock's seconds."""

    def __init__(
        self, *, stall_after_s: float, restart_min_interval_s: float, started_at: float
    ) -> None:
        self.stall_after_s = stall_after_s
        self.restart_min_interval_s = restart_min_interval_s
        self.started_at = started_at
        self.bridged_at: float | None = None
        self.direct_at: float | None = None
        self.clinic_acked_at: float | None = None
        self.restarted_at: float | None = None

    def bridged(self, at: float) -> None:
        self.bridged_at = at

    def direct(self, at: float) -> None:
        self.direct_at = at

    def clinic_acked(self, at: float) -> None:
        self.clinic_acked_at = at

    def _fresh(self, at: float | None, now: float) -> bool:
        # Never seen counts from the start: a watchdog just started gives everything its time.
        return now - (self.started_at if at is None else at) < self.stall_after_s

    def judge(self, now: float) -> Verdict:
        age = None if self.bridged_at is None else now - self.bridged_at
        if self._fresh(self.bridged_at, now):
            state = WatchState.STARTING if self.bridged_at is None else WatchState.OK
            return Verdict(state, False, age)
        # The center counts as answering only if a direct heartbeat came back in the last
        # half of the window: when the center itself stops, the last bridged and the last
        # direct heartbeat arrive within moments of each other, and a restart must not win
        # that race (restarting the clinic broker cannot bring the center back).
        if self.direct_at is None or now - self.direct_at >= self.stall_after_s / 2:
            return Verdict(WatchState.CENTER_UNREACHABLE, False, age)
        state = (
            WatchState.BRIDGE_STALLED
            if self._fresh(self.clinic_acked_at, now)
            else WatchState.CLINIC_UNRESPONSIVE
        )
        restart = (
            self.restarted_at is None or now - self.restarted_at >= self.restart_min_interval_s
        )
        if restart:
            self.restarted_at = now
        return Verdict(state, restart, age)


# ---------------------------------------------------------------------------------- config


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class WatchBroker(_Strict):
    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 8883
    require_tls: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None  # CN bridge-watch-<site>: an ACL user at clinic and center
    key_file: Path | None = None
    client_id: Annotated[str, Field(pattern=TOPIC_LEVEL)] = "bridge-watch"
    keepalive_s: Annotated[int, Field(ge=2, le=3600)] = 15

    @model_validator(mode="after")
    def _tls(self) -> WatchBroker:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        if self.require_tls and self.ca_file is None:
            raise ValueError(
                "require_tls = true needs ca_file (and cert_file/key_file for "
                "mutual TLS); set require_tls = false only for a test broker"
            )
        return self


class BridgeWatchSettings(_Strict):
    site: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    interval_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    # Nothing through the bridge for this long while the center answers: the bridge is hung.
    stall_after_s: Annotated[float, Field(gt=0, le=86400)] = 60.0
    restart_command: tuple[str, ...] = ("systemctl", "restart", "mosquitto.service")
    # After a restart, give the bridge this long before restarting again.
    restart_min_interval_s: Annotated[float, Field(ge=0, le=86400)] = 300.0
    clinic: WatchBroker
    center: WatchBroker

    @model_validator(mode="after")
    def _timing(self) -> BridgeWatchSettings:
        if self.stall_after_s < 2 * self.interval_s:
            raise ValueError(
                "stall_after_s must be at least twice interval_s (one late "
                "heartbeat is not a stall)"
            )
        return self


def load_bridge_watch_settings(path: Path) -> BridgeWatchSettings:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot read: {exc}"]) from exc
    try:
        data = parse_toml(text)
    except TomlError as exc:
        raise ConfigError(str(path), [str(exc)]) from exc
    try:
        return BridgeWatchSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), describe_validation_error(exc)) from exc


SAMPLE_BRIDGE_WATCH_CONFIG = """\
# /etc/station/bridge-watch.toml — on each CLINIC's server, beside its Mosquitto and its
# bridge to the center (deploy/mosquitto/bridge-to-center.conf). docs/deploy-practice.md.
site = "clinic-north"
interval_s = 10
stall_after_s = 60                  # nothing through the bridge this long: alarm (+ restart)
restart_command = ["systemctl", "restart", "mosquitto.service"]
restart_min_interval_s = 300        # at most one restart per 5 minutes

[clinic]                            # this clinic's broker (the bridge's local side)
host = "localhost"
port = 8883
ca_file = "/etc/station-bridge-watch/tls/ca.crt"
cert_file = "/etc/station-bridge-watch/tls/bridge-watch.crt"  # CN bridge-watch-clinic-north
key_file = "/run/credentials/rooming-bridge-watch.service/bridge-watch.key"
client_id = "bridge-watch-clinic-north"

[center]                            # the central broker, reached directly (not via the bridge)
host = "central-broker.practice.example"
port = 8883
ca_file = "/etc/station-bridge-watch/tls/ca.crt"
cert_file = "/etc/station-bridge-watch/tls/bridge-watch.crt"
key_file = "/run/credentials/rooming-bridge-watch.service/bridge-watch.key"
client_id = "bridge-watch-clinic-north"
"""


# --------------------------------------------------------------------------------- adapter


def _client(broker: WatchBroker) -> paho.Client:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=broker.client_id, protocol=paho.MQTTv5
    )
    if broker.require_tls or broker.ca_file is not None:
        client.tls_set(
            ca_certs=str(broker.ca_file) if broker.ca_file else None,
            certfile=str(broker.cert_file) if broker.cert_file else None,
            keyfile=str(broker.key_file) if broker.key_file else None,
        )
    client.reconnect_delay_set(1, 10)
    client.max_queued_messages_set(10)  # heartbeats that cannot go are not worth keeping
    return client


class BridgeWatch:
    """The running watchdog. `start()` / `stop()`; `verdict` is the last judgement."""

    def __init__(
        self,
        settings: BridgeWatchSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        restart: Callable[[Sequence[str]], str] | None = None,
        on_verdict: Callable[[Verdict], None] | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._restart = restart or run_restart_command
        self._on_verdict = on_verdict
        self.judge = BridgeJudge(
            stall_after_s=settings.stall_after_s,
            restart_min_interval_s=settings.restart_min_interval_s,
            started_at=clock(),
        )
        self.verdict = Verdict(WatchState.STARTING, False, None)
        self.restarts = 0
        self._seq = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._topic = heartbeat_topic(settings.site)
        # One connection to each broker (the shipped brokers take the client id from the
        # certificate's CN, bridge-watch-<site>, the same at both).
        self.clinic = _client(settings.clinic)
        self.center = _client(settings.center)
        self.clinic.on_publish = self._clinic_puback
        self.center.on_connect = self._center_connected
        self.center.on_message = self._center_message

    # -- MQTT callbacks (paho's threads): record times only

    def _clinic_puback(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties,
    ) -> None:
        if not reason.is_failure:
            self.judge.clinic_acked(self._clock())

    def _center_connected(
        self,
        client: paho.Client,
        userdata: object,
        flags: object,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason.is_failure:
            client.subscribe(self._topic, 0)

    def _center_message(
        self, client: paho.Client, userdata: object, message: paho.MQTTMessage
    ) -> None:
        try:
            body = json.loads(message.payload)
            via = body["via"] if body.get("schema") == HEARTBEAT_SCHEMA else None
        except (ValueError, KeyError, TypeError, AttributeError):
            return
        now = self._clock()
        if via == "bridge":
            self.judge.bridged(now)
        elif via == "direct":
            self.judge.direct(now)

    # -- the loop

    def _heartbeat(self, via: str) -> bytes:
        return json.dumps(
            {
                "schema": HEARTBEAT_SCHEMA,
                "site": self.settings.site,
                "seq": self._seq,
                "via": via,
                "sent_at": datetime.now(UTC).isoformat(),
            }
        ).encode()

    def _expiring(self) -> Properties:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        # A heartbeat queued behind a stalled bridge is stale once the stall would be seen.
        properties.MessageExpiryInterval = max(1, int(self.settings.stall_after_s))
        return properties

    def tick(self) -> Verdict:
        """One round: send both heartbeats, judge, act. Called every interval_s."""
        self._seq += 1
        self.clinic.publish(
            self._topic, self._heartbeat("bridge"), qos=1, properties=self._expiring()
        )
        self.center.publish(
            self._topic, self._heartbeat("direct"), qos=0, properties=self._expiring()
        )
        verdict = self.judge.judge(self._clock())
        if verdict.state != self.verdict.state:
            self._changed(verdict)
        self.verdict = verdict
        if verdict.restart:
            self.restarts += 1
            threading.Thread(
                target=self._run_restart, name="bridge-watch-restart", daemon=True
            ).start()
        if self._on_verdict is not None:
            self._on_verdict(verdict)
        return verdict

    def _changed(self, verdict: Verdict) -> None:
        site = self.settings.site
        if verdict.state in HEALTHY:
            log.info("bridge watch %s: %s", site, verdict.state.value)
        elif verdict.state is WatchState.CENTER_UNREACHABLE:
            log.error(
                "bridge watch %s: the central broker does not answer; the clinic broker "
                "keeps queueing (no restart: it would not help)",
                site,
            )
        else:
            log.error(
                "bridge watch %s: %s: no heartbeat through the bridge for %.0f s; "
                "restarting the clinic broker (%s)",
                site,
                verdict.state.value,
                self.settings.stall_after_s,
                " ".join(self.settings.restart_command),
            )
        state = json.dumps(
            {
                "schema": STATE_SCHEMA,
                "site": site,
                "state": verdict.state.value,
                "since": datetime.now(UTC).isoformat(),
                "restarts": self.restarts + (1 if verdict.restart else 0),
            }
        )
        # Retained at the center (directly), for whoever watches the clinics from there.
        self.center.publish(state_topic(site), state, qos=1, retain=True)

    def _run_restart(self) -> None:
        outcome = self._restart(self.settings.restart_command)
        log.warning("bridge watch %s: restart command: %s", self.settings.site, outcome)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.interval_s):
            try:
                self.tick()
            except Exception:  # the watchdog must keep watching
                log.exception("bridge watch: a round failed")

    def start(self) -> None:
        for client, broker in (
            (self.clinic, self.settings.clinic),
            (self.center, self.settings.center),
        ):
            client.connect_async(broker.host, broker.port, keepalive=broker.keepalive_s)
            client.loop_start()
        self._thread = threading.Thread(target=self._loop, name="bridge-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.settings.interval_s + 5)
        for client in (self.clinic, self.center):
            client.disconnect()
            client.loop_stop()


def run_restart_command(command: Sequence[str]) -> str:
    """Run the restart command; what happened, in words (never raises)."""
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not run {' '.join(command)}: {exc}"
    if done.returncode != 0:
        return f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[:200]}"
    return f"{' '.join(command)}: done"


def describe(verdict: Verdict) -> dict[str, Any]:
    return {
        "state": verdict.state.value,
        "bridge_age_s": None if verdict.bridge_age_s is None else round(verdict.bridge_age_s, 1),
    }
