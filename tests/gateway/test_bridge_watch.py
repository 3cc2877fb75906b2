"""`station bridge-watch`: a heartbeat through a clinic's Mosquitto bridge, judged at the center.

The failure it is for is eclipse-mosquitto/mosquitto#2207 ("broken bridge functionality",
Mosquitto 2.0.x): after a failed reconnection "the connection at TCP level will happen, but
the CONNECT packet is never sent over the socket", so nothing crosses and nothing in the
clinic broker says so; the remedy reported there and in #2795 (a Home Assistant user's
automation on `$SYS/broker/connection/<name>/state`) is restarting the bridging broker.
That hang cannot be produced on demand, so these tests make its outside shape with two real
Mosquitto instances and a TCP relay as the bridge's path: the relay frozen with SIGSTOP keeps
the TCP connection open while nothing moves. The central broker frozen the same way is the
other case: the center is away, and restarting the clinic's broker would not help.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from station.cli import main
from station.gateway.bridge_watch import (
    BridgeJudge,
    BridgeWatch,
    BridgeWatchSettings,
    WatchBroker,
    WatchState,
    run_restart_command,
    state_topic,
)
from tests.fixtures.broker import REPO, Broker, free_port, start_broker, start_deploy_broker
from tests.gateway.test_gateway_e2e import wait_until

BRIDGE_CONF = REPO / "deploy" / "mosquitto" / "bridge-to-center.conf"
RELAY = Path(__file__).resolve().parents[1] / "fixtures" / "relay.py"
SITE = "clinic-north"
WATCH_CN = f"bridge-watch-{SITE}"


# ------------------------------------------------------------------- the judge, on its own


def test_judge_a_bridge_that_carries_nothing_while_both_brokers_answer_is_stalled() -> None:
    judge = BridgeJudge(stall_after_s=60, restart_min_interval_s=300, started_at=0)
    assert judge.judge(30).state is WatchState.STARTING  # nothing yet, still within the window
    for t in range(0, 100, 10):
        judge.direct(t)
        judge.clinic_acked(t)
        judge.bridged(t)
    assert judge.judge(100).state is WatchState.OK

    # #2207's shape: the clinic broker acks every heartbeat, the center answers directly, and
    # nothing arrives through the bridge.
    def answered_until(end: int) -> None:
        for t in range(100, end + 1, 5):
            judge.direct(t)
            judge.clinic_acked(t)

    answered_until(155)
    verdict = judge.judge(155)
    assert (verdict.state, verdict.restart, verdict.bridge_age_s) == (
        WatchState.BRIDGE_STALLED,
        True,
        65,
    )
    # One restart per restart_min_interval_s, however long the stall lasts.
    restarts = []
    for t in (165, 300, 454, 455):
        answered_until(t)
        restarts.append(judge.judge(t).restart)
    assert restarts == [False, False, False, True]


def test_judge_a_center_that_answers_nothing_is_reported_never_restarted() -> None:
    judge = BridgeJudge(stall_after_s=60, restart_min_interval_s=0, started_at=0)
    for t in range(0, 100, 10):
        judge.direct(t)
        judge.clinic_acked(t)
        judge.bridged(t)
    judge.clinic_acked(150)
    # The last direct and bridged heartbeats came back together: the center stopped.
    verdict = judge.judge(160)
    assert (verdict.state, verdict.restart) == (WatchState.CENTER_UNREACHABLE, False)
    assert judge.judge(1000).restart is False


def test_judge_a_clinic_broker_that_acks_nothing_is_restarted() -> None:
    judge = BridgeJudge(stall_after_s=60, restart_min_interval_s=300, started_at=0)
    judge.bridged(10)
    judge.clinic_acked(10)
    for t in range(10, 100, 10):
        judge.direct(t)
    verdict = judge.judge(95)
    assert (verdict.state, verdict.restart) == (WatchState.CLINIC_UNRESPONSIVE, True)


def test_the_restart_command_outcome_is_said_in_words() -> None:
    assert run_restart_command(["true"]) == "true: done"
    assert run_restart_command(["sh", "-c", "echo nope >&2; exit 3"]) == (
        "sh -c echo nope >&2; exit 3 exited 3: nope"
    )
    assert run_restart_command(["/nonexistent/systemctl"]).startswith(
        "could not run /nonexistent/systemctl: "
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "site = 'clinic-north'\n[clinic]\nrequire_tls = false\n",
            "center: missing: this key is required",
        ),
        (
            "site = 'clinic-north'\ninterval_s = 10\nstall_after_s = 15\n"
            "[clinic]\nrequire_tls = false\n[center]\nrequire_tls = false\n",
            "Value error, stall_after_s must be at least twice interval_s",
        ),
    ],
)
def test_a_bad_settings_file_is_refused_naming_the_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    path = tmp_path / "bridge-watch.toml"
    path.write_text(text)
    assert main(["bridge-watch", "run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert problem in err, err


def test_the_sample_settings_file_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from station.gateway.bridge_watch import load_bridge_watch_settings

    assert main(["bridge-watch", "sample"]) == 0
    path = tmp_path / "bridge-watch.toml"
    path.write_text(capsys.readouterr().out)
    settings = load_bridge_watch_settings(path)
    assert settings.site == SITE
    assert settings.restart_command == ("systemctl", "restart", "mosquitto.service")


# --------------------------------------------------------- two real brokers and the path


@dataclass
class Relay:
    port: int
    target: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(RELAY), str(self.port), str(self.target)], stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline() == b"listening\n"
        self.proc.stdout.close()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


@dataclass
class Sites:
    clinic: Broker
    central: Broker
    relay: Relay


def bridge_through(relay: Relay, central: Broker) -> str:
    """The shipped bridge file line for line, but to the center through the relay."""
    assert central.pki is not None
    cert = central.pki.client(f"bridge-{SITE}")
    paths = {
        "address": f"address 127.0.0.1:{relay.port}",
        "bridge_cafile": f"bridge_cafile {central.pki.ca}",
        "bridge_certfile": f"bridge_certfile {cert.cert}",
        "bridge_keyfile": f"bridge_keyfile {cert.key}",
    }
    return "\n".join(
        paths.get(line.split(" ", 1)[0], line) for line in BRIDGE_CONF.read_text().splitlines()
    )


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[Sites]:
    central = start_deploy_broker(tmp_path / "central")
    relay = Relay(free_port(), central.port)
    relay.start()
    clinic = start_broker(
        tmp_path / "clinic",
        persistent=True,
        extra="autosave_interval 1\nautosave_on_changes true\n" + bridge_through(relay, central),
    )
    yield Sites(clinic, central, relay)
    if central.proc is not None:
        os.kill(central.proc.pid, signal.SIGCONT)
    relay.kill()
    clinic.kill()
    central.kill()


def watch_settings(sites: Sites) -> BridgeWatchSettings:
    pki = sites.central.pki
    assert pki is not None
    cert = pki.client(WATCH_CN)
    return BridgeWatchSettings(
        site=SITE,
        interval_s=0.25,
        stall_after_s=2.0,
        restart_min_interval_s=300,
        clinic=WatchBroker(
            host=sites.clinic.host,
            port=sites.clinic.port,
            require_tls=False,
            client_id=WATCH_CN,
            keepalive_s=5,
        ),
        center=WatchBroker(
            host=sites.central.host,
            port=sites.central.port,
            ca_file=pki.ca,
            cert_file=cert.cert,
            key_file=cert.key,
            client_id=WATCH_CN,
            keepalive_s=5,
        ),
    )


class Restarts:
    """The restart command's stand-in: `systemctl restart mosquitto` is not ours to run here."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, command: Sequence[str]) -> str:
        self.calls.append(tuple(command))
        return "recorded"


class CenterReader:
    """The practice system's account at the center: collects the stations' messages and the
    watchdog's retained state."""

    def __init__(self, central: Broker) -> None:
        assert central.pki is not None
        cert = central.pki.client("practice-system")
        self.message_ids: list[str] = []
        self.states: list[str] = []
        self.subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id="practice-system", protocol=paho.MQTTv5
        )
        self.client.tls_set(
            ca_certs=str(central.pki.ca), certfile=str(cert.cert), keyfile=str(cert.key)
        )
        self.client.on_connect = lambda c, *_: c.subscribe(f"rooming/v1/{SITE}/#", 1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._message
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 600
        self.client.connect(central.host, central.port, clean_start=False, properties=properties)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def _message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        body = json.loads(message.payload)
        if message.topic == state_topic(SITE):
            self.states.append(body["state"])
        elif message.topic.endswith("/vitals"):
            self.message_ids.append(body["message_id"])

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def station_publisher(clinic: Broker) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="exam-3", protocol=paho.MQTTv5)
    client.connect(clinic.host, clinic.port)
    client.loop_start()
    return client


def publish_vitals(client: paho.Client, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for mid in ids:
        body = json.dumps({"schema": "rooming.vitals/1", "message_id": mid})
        client.publish(f"rooming/v1/{SITE}/exam-3/vitals", body, qos=1).wait_for_publish(10)
    return ids


@pytest.mark.broker
@pytest.mark.slow
def test_a_frozen_bridge_path_raises_the_alarm_restarts_once_and_loses_nothing(
    sites: Sites,
) -> None:
    restarts = Restarts()
    watch = BridgeWatch(watch_settings(sites), restart=restarts)
    reader = CenterReader(sites.central)
    station = station_publisher(sites.clinic)
    watch.start()
    try:
        assert wait_until(lambda: watch.verdict.state is WatchState.OK, 15)
        before = publish_vitals(station, 5)
        assert wait_until(lambda: set(reader.message_ids) >= set(before), 15)

        sites.relay.signal(signal.SIGSTOP)  # TCP stays up; nothing moves across
        during = publish_vitals(station, 5)  # the clinic broker takes them (PUBACK)
        assert wait_until(lambda: watch.verdict.state is WatchState.BRIDGE_STALLED, 10)
        assert wait_until(
            lambda: restarts.calls == [("systemctl", "restart", "mosquitto.service")], 5
        )
        # The center's watchers see it too: the state, retained at the center, directly.
        assert wait_until(lambda: "bridge_stalled" in reader.states, 5)
        time.sleep(3.0)  # a stall that goes on restarts nothing more within the interval
        assert len(restarts.calls) == 1
        assert watch.verdict.state is WatchState.BRIDGE_STALLED

        # What the restart does on a clinic's server (systemctl restart mosquitto), once the
        # path is back: the bridge connects anew and the queue crosses.
        sites.relay.kill()
        sites.relay.start()
        sites.clinic.stop()
        sites.clinic.start()
        assert wait_until(lambda: watch.verdict.state is WatchState.OK, 30), (
            sites.clinic.log_text()[-1500:]
        )
        assert wait_until(lambda: set(reader.message_ids) >= set(before + during), 30)
        assert wait_until(lambda: reader.states[-1:] == ["ok"], 5)
    finally:
        watch.stop()
        station.loop_stop()
        reader.stop()


@pytest.mark.broker
@pytest.mark.slow
def test_a_frozen_center_is_reported_and_the_clinic_broker_left_alone(sites: Sites) -> None:
    restarts = Restarts()
    watch = BridgeWatch(watch_settings(sites), restart=restarts)
    watch.start()
    try:
        assert wait_until(lambda: watch.verdict.state is WatchState.OK, 15)
        assert sites.central.proc is not None
        os.kill(sites.central.proc.pid, signal.SIGSTOP)
        assert wait_until(lambda: watch.verdict.state is WatchState.CENTER_UNREACHABLE, 10)
        time.sleep(2.0)
        assert watch.verdict.state is WatchState.CENTER_UNREACHABLE
        assert restarts.calls == []
        os.kill(sites.central.proc.pid, signal.SIGCONT)
        assert wait_until(lambda: watch.verdict.state is WatchState.OK, 30)
        assert restarts.calls == []
    finally:
        watch.stop()


@pytest.mark.broker
@pytest.mark.slow
def test_a_frozen_clinic_broker_is_restarted(sites: Sites) -> None:
    restarts = Restarts()
    watch = BridgeWatch(watch_settings(sites), restart=restarts)
    watch.start()
    try:
        assert wait_until(lambda: watch.verdict.state is WatchState.OK, 15)
        assert sites.clinic.proc is not None
        os.kill(sites.clinic.proc.pid, signal.SIGSTOP)
        assert wait_until(lambda: watch.verdict.state is WatchState.CLINIC_UNRESPONSIVE, 10)
        assert wait_until(lambda: len(restarts.calls) == 1, 5)
        os.kill(sites.clinic.proc.pid, signal.SIGCONT)
        assert wait_until(lambda: watch.verdict.state is WatchState.OK, 30)
    finally:
        watch.stop()


@pytest.mark.broker
@pytest.mark.slow
def test_the_command_reads_its_file_and_judges_the_live_bridge(
    sites: Sites, tmp_path: Path
) -> None:
    settings = watch_settings(sites)
    center = settings.center
    config = tmp_path / "bridge-watch.toml"
    config.write_text(
        f"site = '{SITE}'\ninterval_s = 0.25\nstall_after_s = 2\n"
        "restart_command = ['false']\n"
        f"[clinic]\nhost = '{sites.clinic.host}'\nport = {sites.clinic.port}\n"
        f"require_tls = false\nclient_id = '{WATCH_CN}'\n"
        f"[center]\nhost = '{center.host}'\nport = {center.port}\nca_file = '{center.ca_file}'\n"
        f"cert_file = '{center.cert_file}'\nkey_file = '{center.key_file}'\n"
        f"client_id = '{WATCH_CN}'\n"
    )
    command = [
        sys.executable,
        "-m",
        "station",
        "bridge-watch",
        "run",
        "--config",
        str(config),
        "--once-json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["state"] == "ok"
    assert 0 <= report["bridge_age_s"] < 2
    sites.relay.signal(signal.SIGSTOP)
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, json.loads(done.stdout)["state"]) == (1, "bridge_stalled")
