"""Zero loss over 100+ SIGKILLs of a station process at random points, against real Mosquitto."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.broker import REPO, Broker
from tests.sync.consumer import Consumer

pytestmark = [pytest.mark.broker, pytest.mark.slow]
TRIALS = 100


def test_every_accepted_submission_arrives_despite_sigkill_at_random_points(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    consumer = Consumer(mosquitto_broker, "rooming/v1/clinic-north/exam-3/vitals")
    zygote = subprocess.Popen(
        [sys.executable, "-m", "tests.sync.station_zygote", str(tmp_path),
         mosquitto_broker.host, str(mosquitto_broker.port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
        stderr=subprocess.DEVNULL,  # station log lines (ids and counts only) are not checked here
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    rng = random.Random(20260302)
    try:
        for _ in range(TRIALS):
            zygote.stdin.write("go\n")
            zygote.stdin.flush()
            pid = int(zygote.stdout.readline())
            # Anywhere from "still opening the database" to "deep in a publish burst".
            time.sleep(rng.uniform(0.0, 0.3))
            os.kill(pid, signal.SIGKILL)
        zygote.stdin.write("drain\n")
        zygote.stdin.flush()
        zygote.stdout.readline()
        assert zygote.stdout.readline().strip() == "drained"
    finally:
        zygote.stdin.close()
        zygote.wait(10)
        zygote.stdout.close()
    accepted = set((tmp_path / "accepted.log").read_text().split())
    try:
        assert len(accepted) > TRIALS  # the trials really produced traffic
        assert consumer.wait_for(accepted, 20) == set()
        # At least once on the wire; the consumer's dedup by message_id makes it exactly once.
        assert all(count >= 1 for count in consumer.seen.values())
        assert accepted <= consumer.distinct()
    finally:
        consumer.close()
