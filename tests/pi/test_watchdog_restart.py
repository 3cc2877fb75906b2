"""A hung main loop stops feeding the watchdog and is restarted, as systemd does with WatchdogSec.

`systemd-run --user` is not available here (no user manager on the bus), so the test plays
systemd's part over the real protocol: a real AF_UNIX datagram socket as NOTIFY_SOCKET, a real
child process running the station's Notifier and Watchdog, and a small supervisor that applies
systemd's rules (wait for READY=1, then kill and restart when WATCHDOG=1 stops arriving).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WATCHDOG_S = 1.5
READY_TIMEOUT_S = (
    30.0  # a cold Python start on a loaded two-core machine; systemd's TimeoutStartSec
)

# The child is a stand-in for the station's main loop: it feeds the watchdog from the loop, and
# on its first run the loop hangs after three feeds (a deadlock, a stuck driver call).
CHILD = """
import sys, time
from pathlib import Path
from station.sdnotify import Notifier, Watchdog

runs = Path(sys.argv[1])
first_run = not runs.exists()
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
notifier = Notifier.from_environment()
dog = Watchdog.from_environment(notifier)
notifier.ready("rooming")
feeds = 0
while True:
    if dog.tick(time.monotonic()):
        feeds += 1
    if first_run and feeds == 3:
        time.sleep(3600)
    time.sleep(0.02)
"""


def supervise(
    sock: socket.socket, runs_file: Path, env: dict[str, str], max_starts: int
) -> list[tuple[int, str]]:
    """systemd's Type=notify + WatchdogSec + Restart=always, reduced to what the test needs."""
    events: list[tuple[int, str]] = []
    for start in range(1, max_starts + 1):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(runs_file)], env=env)
        events.append((start, "started"))
        ready = False
        feeds = 0
        try:
            while True:
                sock.settimeout(WATCHDOG_S if ready else READY_TIMEOUT_S)
                try:
                    lines = sock.recv(4096).decode().split("\n")
                except TimeoutError:
                    state = "hung" if proc.poll() is None else f"exited {proc.returncode}"
                    events.append((start, f"watchdog timeout, process {state}"))
                    break
                if "READY=1" in lines:
                    ready = True
                    events.append((start, "ready"))
                    assert f"MAINPID={proc.pid}" in lines
                if "WATCHDOG=1" in lines:
                    feeds += 1
                    events.append((start, "fed"))
                if start == max_starts and feeds == 3:
                    break
        finally:
            # systemd sends SIGABRT on a watchdog timeout (WatchdogSignal=) for a core dump.
            if proc.poll() is None:
                proc.send_signal(signal.SIGABRT)
            proc.wait(timeout=10)
    return events


@pytest.mark.slow
def test_hung_main_loop_is_restarted_and_comes_back_ready(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    runs_file = tmp_path / "runs"
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC=str(int(WATCHDOG_S * 1_000_000)))
    env.pop("WATCHDOG_PID", None)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        events = supervise(sock, runs_file, env, max_starts=2)
    assert events == [
        (1, "started"),
        (1, "ready"),
        (1, "fed"),
        (1, "fed"),
        (1, "fed"),
        (1, "watchdog timeout, process hung"),
        (2, "started"),
        (2, "ready"),
        (2, "fed"),
        (2, "fed"),
        (2, "fed"),
    ]
    assert runs_file.read_text() == "xx"
