"""N simulated stations -> one Mosquitto -> `station gateway` replica(s) -> an MLLP sink.

Each station is the real thing from the outbox on: its own encrypted SQLite outbox and its
own MqttLink (its own MQTT connection, client id = station id), submitting real `vitals`
messages (FHIR Bundle and readings, about 9 kB) at random times: a Poisson stream of
`--rooms-per-hour` roomings per station (default 6: a busy exam room, one patient every 10
minutes), run `--speedup` times faster than real time (default 5) for `--window` seconds.
The gateway(s) run as processes of their own (`station gateway run`, each with its own SQLite
store, a persistent MLLP connection, strict hl7apy validation of every ORU^R01); the sink is
python-hl7's MLLP server (tests/conformance/mllp/python_hl7_server.py), which ACKs AA. The
station counts a message delivered when the gateway's `ack` "received" reaches it.

Printed per run: messages offered and delivered, lost (submitted but never at the sink) and
doubled at the sink (same MSH-10 twice), station resends, end-to-end p50/p90/p99/max (submit
to the station's "received"), throughput into the sink, gateway lag (the oldest message
waiting in a store, sampled every 0.5 s) and queue depth, peak RSS of the broker, each
gateway and this process (the stations). The baseline, in the same process and the same
way: one station, 20 messages 0.5 s apart (an idle pipeline); each run's latency is given
as a ratio to it.

    .venv/bin/python bench/fleet.py                      # N = 50, 200, 500; then 500 on 2 replicas
    .venv/bin/python bench/fleet.py --stations 200 --replicas 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from station.config import BrokerSection  # noqa: E402
from station.gateway.store import SqliteGatewayStore  # noqa: E402
from station.sync import payloads  # noqa: E402
from station.sync.contract import AckPayload, AckStatus, Channel, to_json  # noqa: E402
from station.sync.mqtt import MqttLink  # noqa: E402
from station.sync.outbox import Outbox  # noqa: E402
from station.sync.router import Inbound  # noqa: E402
from tests.fixtures.broker import start_broker  # noqa: E402
from tests.fixtures.hl7_mllp import start_hl7_server  # noqa: E402
from tests.sync.samples import AT, submission  # noqa: E402

SITE = "clinic-north"


def rss_mb(pid: int, key: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


@dataclass
class Result:
    label: str
    stations: int
    replicas: int
    offered: int
    delivered: int
    lost: int
    doubled: int
    resends: int
    latencies_s: list[float]
    elapsed_s: float
    sink_rate: float
    max_lag_s: float
    max_queued: int
    rss_broker_mb: float
    rss_gateways_mb: list[float]
    rss_stations_mb: float
    offered_rate: float = 0.0
    notes: list[str] = field(default_factory=list)

    def p(self, q: float) -> float:
        return percentile(self.latencies_s, q) * 1000 if self.latencies_s else float("nan")


def gateway_config(directory: Path, broker_port: int, sink_port: int, replica: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "gateway.toml"
    path.write_text(
        f"[broker]\nhost = '127.0.0.1'\nport = {broker_port}\nrequire_tls = false\n"
        f"client_id = 'practice-gateway-{replica}'\nsession_expiry_s = 3600\n"
        f"[mllp]\nhost = '127.0.0.1'\nport = {sink_port}\nconnection = 'persistent'\n"
        "ack_timeout_s = 30\nretry_min_s = 0.2\nretry_max_s = 2\n"
        f"[store]\npath = '{directory / 'gateway.sqlite3'}'\n"
    )
    return path


def start_gateway(config: Path) -> subprocess.Popen[bytes]:
    log = (config.parent / "gateway.log").open("ab")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "station", "gateway", "run", "--config",
                                 str(config)], cwd=REPO, stdout=log, stderr=log,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    finally:
        log.close()
    deadline = time.monotonic() + 30
    while "subscribed" not in (config.parent / "gateway.log").read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError((config.parent / "gateway.log").read_text()[-2000:])
        time.sleep(0.05)
    return proc


class Fleet:
    """Some stations, each an Outbox and an MqttLink; records submit and "received" times."""

    def __init__(self, directory: Path, broker_port: int, station_ids: list[str]) -> None:
        self.submitted: dict[uuid.UUID, float] = {}
        self.received: dict[uuid.UUID, float] = {}
        self._lock = threading.Lock()
        self.stations: dict[str, tuple[MqttLink, Outbox]] = {}
        section = BrokerSection(host="127.0.0.1", port=broker_port, require_tls=False)
        for station_id in station_ids:
            folder = directory / station_id
            folder.mkdir(parents=True)
            outbox = Outbox(folder / "outbox.sqlite3", folder / "outbox.key")
            link = MqttLink(section, site=SITE, station_id=station_id, outbox=outbox,
                            handlers=Inbound(on_ack=self._acked), reconnect_min_s=1,
                            reconnect_max_s=5)
            self.stations[station_id] = (link, outbox)

    def _acked(self, ack: AckPayload) -> None:
        if ack.status is AckStatus.RECEIVED:
            with self._lock:
                self.received.setdefault(ack.message_id, time.monotonic())

    def start(self) -> None:
        for link, _ in self.stations.values():
            link.start()
        deadline = time.monotonic() + 120
        for link, _ in self.stations.values():
            if not link.wait_connected(max(0.1, deadline - time.monotonic())):
                raise RuntimeError("a simulated station did not connect")

    def submit(self, station_id: str, body: bytes, mid: uuid.UUID) -> None:
        with self._lock:
            self.submitted[mid] = time.monotonic()
        self.stations[station_id][0].submit(Channel.VITALS, body, mid)

    def resends(self) -> int:
        return sum(link.resent_count for link, _ in self.stations.values())

    def stop(self) -> None:
        for link, outbox in self.stations.values():
            link.stop()
            outbox.close()


# paho waits on its sockets with select(), which takes no descriptor above 1023: with an
# outbox (three SQLite files) and a socket pair per station, one process holds about 100.
STATIONS_PER_PROCESS = 100


def station_worker(conn: Connection, directory: Path, broker_port: int,
                   plan: list[tuple[float, str, str, bytes]], station_ids: list[str], *,
                   deadline_after_s: float) -> None:
    """One process's share of the fleet: connect, say ready, wait for the start time, submit
    on schedule, and report the times when everything is acknowledged (or at the deadline)."""
    fleet = Fleet(directory, broker_port, station_ids)
    try:
        fleet.start()
        conn.send("ready")
        start: float = conn.recv()
        pending = list(plan)
        deadline = start + deadline_after_s
        while time.monotonic() < deadline:
            now = time.monotonic()
            while pending and start + pending[0][0] <= now:
                _, station_id, mid, body = pending.pop(0)
                fleet.submit(station_id, body, uuid.UUID(mid))
            if not pending and len(fleet.received) >= len(plan):
                break
            time.sleep(0.005)
        conn.send({"submitted": {str(k): v for k, v in fleet.submitted.items()},
                   "received": {str(k): v for k, v in fleet.received.items()},
                   "resends": fleet.resends(), "rss_mb": rss_mb(os.getpid())})
    finally:
        fleet.stop()
        conn.close()


def vitals_body(station_id: str, mid: uuid.UUID) -> bytes:
    return to_json(payloads.vitals(submission(), message_id=mid, site=SITE,
                                   station_id=station_id, sent_at=AT))


def run(label: str, stations: int, replicas: int, schedule: list[tuple[float, int]],
        drain_s: float) -> Result:
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        directory = Path(tmp)
        broker = start_broker(directory / "broker", persistent=True)
        sink = start_hl7_server(directory / "sink")
        configs = [gateway_config(directory / f"gw{r}", broker.port, sink.port, r)
                   for r in range(1, replicas + 1)]
        gateways = [start_gateway(c) for c in configs]
        stores = [SqliteGatewayStore(c.parent / "gateway.sqlite3") for c in configs]
        ids = [f"exam-{i:03d}" for i in range(stations)]
        plan = [(at, ids[i], str(mid), vitals_body(ids[i], mid))
                for at, i in schedule for mid in [uuid.uuid4()]]
        window = schedule[-1][0] if schedule else 0.0
        context = multiprocessing.get_context("fork")
        workers = []
        for first in range(0, stations, STATIONS_PER_PROCESS):
            chunk = ids[first:first + STATIONS_PER_PROCESS]
            mine = [p for p in plan if p[1] in set(chunk)]
            parent, child = context.Pipe()
            proc = context.Process(
                target=station_worker,
                args=(child, directory / "stations", broker.port, mine, chunk),
                kwargs={"deadline_after_s": window + drain_s})
            proc.start()
            workers.append((proc, parent))
        max_lag, max_queued = 0.0, 0
        try:
            for _, conn in workers:
                if not conn.poll(180) or conn.recv() != "ready":
                    raise RuntimeError("a station process did not get its stations connected")
            start = time.monotonic() + 0.5
            for _, conn in workers:
                conn.send(start)
            reports: list[dict[str, Any]] = []
            waiting = list(workers)
            while waiting:
                wall = time.time()
                for store in stores:
                    stats = store.stats()
                    max_queued = max(max_queued, stats.queued)
                    max_lag = max(max_lag, stats.lag_s(wall) or 0.0)
                for proc, conn in list(waiting):
                    if conn.poll(0):
                        reports.append(conn.recv())
                        waiting.remove((proc, conn))
                time.sleep(0.5)
            elapsed = time.monotonic() - start
            rss_broker = rss_mb(broker.proc.pid) if broker.proc else float("nan")
            rss_gateways = [rss_mb(g.pid) for g in gateways]
            submitted = {k: v for r in reports for k, v in r["submitted"].items()}
            received = {k: v for r in reports for k, v in r["received"].items()}
            events = sink.received()
            sunk = [e["control_id"] for e in events]
            offered = {uuid.UUID(mid).hex[:20] for _, _, mid, _ in plan}
            latencies = [received[m] - submitted[m] for m in received if m in submitted]
            last_ack = max(received.values(), default=start)
            first_submit = min(submitted.values(), default=start)
            return Result(label, stations, replicas, len(plan), len(received),
                          len(offered - set(sunk)), len(sunk) - len(set(sunk)),
                          sum(r["resends"] for r in reports), latencies, elapsed,
                          len(set(sunk)) / max(1e-9, last_ack - first_submit), max_lag,
                          max_queued, rss_broker, rss_gateways,
                          max((r["rss_mb"] for r in reports), default=float("nan")),
                          offered_rate=len(plan) / max(1e-9, window))
        finally:
            for proc, _ in workers:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
            for store in stores:
                store.close()
            for g in gateways:
                g.terminate()
                try:
                    g.wait(20)
                except subprocess.TimeoutExpired:
                    g.kill()
            sink.stop()
            broker.kill()


def poisson_schedule(stations: int, rate_per_s: float, window_s: float,
                     rng: random.Random) -> list[tuple[float, int]]:
    """(seconds from start, station index) for every submission, in time order."""
    out = []
    for i in range(stations):
        t = rng.expovariate(rate_per_s)
        while t < window_s:
            out.append((t, i))
            t += rng.expovariate(rate_per_s)
    return sorted(out)


def report(result: Result, base: Result) -> None:
    lat = result.latencies_s
    print(f"{result.label}: {result.stations} stations, {result.replicas} gateway "
          f"replica(s), {result.offered} vitals offered at {result.offered_rate:.2f} msg/s")
    print(f"  delivered {result.delivered}/{result.offered}, lost {result.lost}, doubled at "
          f"the sink {result.doubled}, station resends {result.resends}")
    if lat:
        print(f"  end to end (submit -> station 'received'), ms: p50 {result.p(50):.0f}  "
              f"p90 {result.p(90):.0f}  p99 {result.p(99):.0f}  max {max(lat) * 1000:.0f}  "
              f"(mean {statistics.fmean(lat) * 1000:.0f})")
        print(f"  ratio to the one-station baseline: p50 {result.p(50) / base.p(50):.1f}x  "
              f"p99 {result.p(99) / base.p(99):.1f}x")
    print(f"  into the sink {result.sink_rate:.2f} msg/s; gateway lag max "
          f"{result.max_lag_s:.1f} s, queue max {result.max_queued}")
    print(f"  peak RSS MB: broker {result.rss_broker_mb:.1f}, gateway(s) "
          f"{', '.join(f'{r:.1f}' for r in result.rss_gateways_mb)}, a process of up to "
          f"{STATIONS_PER_PROCESS} stations {result.rss_stations_mb:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--replicas", type=int, default=1)
    parser.add_argument("--rooms-per-hour", type=float, default=6.0)
    parser.add_argument("--speedup", type=float, default=5.0)
    parser.add_argument("--window", type=float, default=60.0, help="seconds of traffic")
    parser.add_argument("--drain", type=float, default=240.0,
                        help="seconds allowed after the window for everything to arrive")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-extra", action="store_true",
                        help="skip the last run (the largest N again on two replicas)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (1 min)")
    rate = args.rooms_per_hour * args.speedup / 3600
    base = run("baseline", 1, 1, [(0.5 * k, 0) for k in range(20)], 60)
    print(f"baseline: 1 station, 20 vitals 0.5 s apart: p50 {base.p(50):.0f} ms, "
          f"p99 {base.p(99):.0f} ms, delivered {base.delivered}/20")
    print(f"traffic: {args.rooms_per_hour:g} roomings per station per hour x{args.speedup:g} "
          f"(Poisson), {args.window:g} s; seed {args.seed}")
    runs = [(n, args.replicas) for n in args.stations]
    if not args.no_extra and args.replicas == 1:
        runs.append((max(args.stations), 2))
    for stations, replicas in runs:
        schedule = poisson_schedule(stations, rate, args.window, rng)
        result = run(f"N={stations}", stations, replicas, schedule, args.drain)
        report(result, base)
        sys.stdout.flush()
    # Other work on the machine skews every figure above: say how busy it was.
    print(json.dumps({"machine": f"{os.cpu_count()} CPUs", "python": sys.version.split()[0],
                      "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
