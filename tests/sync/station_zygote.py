"""A station process for the SIGKILL trials: imports once, then forks one station per trial.

Started by tests/sync/test_kill.py as `python -m tests.sync.station_zygote DIR HOST PORT`.
For each line `go` on stdin it forks a child that opens the outbox and the MQTT link and
keeps submitting until it is killed; the child appends each message id to DIR/accepted.log
only after `submit` returned (committed). `drain` forks a child that submits nothing and
exits when the outbox is empty. The zygote prints each child's pid.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from pathlib import Path

from station.config import BrokerSection
from station.sync.contract import Channel
from station.sync.mqtt import MqttLink
from station.sync.outbox import Outbox


def station(directory: Path, host: str, port: int, *, produce: bool) -> None:
    outbox = Outbox(directory / "outbox.sqlite3", directory / "outbox.key")
    link = MqttLink(BrokerSection(host=host, port=port, require_tls=False), site="clinic-north",
                    station_id="exam-3", outbox=outbox, reconnect_min_s=0, reconnect_max_s=1)
    link.start()
    if not produce:
        while outbox.stats().depth:
            time.sleep(0.02)
        link.stop()
        os._exit(0)
    log = os.open(directory / "accepted.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    rng = random.Random(os.getpid())
    while True:
        mid = uuid.uuid4()
        link.submit(Channel.VITALS, json.dumps({"message_id": str(mid)}).encode(), mid)
        os.write(log, f"{mid}\n".encode())
        time.sleep(rng.random() * 0.004)


def main() -> None:
    directory, host, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    for line in sys.stdin:
        command = line.strip()
        pid = os.fork()
        if pid == 0:
            station(directory, host, port, produce=command == "go")
        print(pid, flush=True)
        if command == "drain":
            os.waitpid(pid, 0)
            print("drained", flush=True)
        else:
            # Reap killed children so they do not pile up as zombies.
            while True:
                try:
                    done, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if done == 0:
                    break


if __name__ == "__main__":
    main()
