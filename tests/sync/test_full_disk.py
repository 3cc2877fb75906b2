"""A really full disk (#13): a small tmpfs in a private mount namespace, real ENOSPC.

Regression: on a full disk messages still went out but their deliveries could not be
recorded — the depth stayed, a traceback every 0.5 s, new submissions refused until someone
freed space. Now a space reserve is given up so PUBACKs are recorded, new messages are
refused saying what is full, and everything recovers by itself when space returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.broker import REPO, Broker
from tests.sync.consumer import Consumer

pytestmark = pytest.mark.broker


def test_a_full_disk_keeps_deliveries_recorded_says_what_is_full_and_recovers(
    mosquitto_broker: Broker, tmp_path: Path
) -> None:
    mount = tmp_path / "small-disk"
    mount.mkdir()
    # A private mount namespace: the tmpfs is seen by the scenario only, and vanishes with it.
    # As root that is `unshare --mount`; otherwise a user namespace maps us to root in it.
    unshare = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--map-root-user",
                                                                "--mount"]
    practice = Consumer(mosquitto_broker, "rooming/v1/+/+/vitals")
    try:
        run = subprocess.run(
            [*unshare, sys.executable, "-m", "tests.sync.full_disk_scenario", str(mount),
             mosquitto_broker.host, str(mosquitto_broker.port)],
            cwd=REPO, capture_output=True, text=True, timeout=90, check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout.strip().splitlines()[-1])
        # New messages are refused, saying what is full and what to do.
        assert "disk full while trying to queue a message" in result["put_when_full"]
        assert f"the file system of {mount} has no space left" in result["put_when_full"]
        assert "nothing was lost" in result["put_when_full"]
        # What was queued goes out, and its deliveries are recorded on the full disk.
        assert practice.wait_for(set(result["sent_ids"]), 10) == set()
        assert (result["queued"], result["delivered_recorded"]) == (0, 20)
        assert result["disk_full_reported"] is True
        # Said once, not a traceback every half second.
        assert not any("[traceback]" in line for line in result["log_while_full"])
        assert len(result["log_while_full"]) <= 3, result["log_while_full"]
        # Space back: the next submission is saved and sent, the reserve is taken back.
        assert result["put_after_space_returned"] == "saved"
        assert practice.wait_for({result["later_id"]}, 10) == set()
        assert result["reserve_back"] is True
        assert result["disk_full_after"] is False
    finally:
        practice.close()
