"""Issue 19 item 7: `station simulate --ble` lets a person run the Bluetooth path: a private
bus, the fake BlueZ and the simulated ward, with the exports to point `station devices` at it.

The expected profile matches follow the profiles' own match rules as documented by the
makers' advertising names (A&D "A&D_UA-651", Beurer "SBM69") and the Bluetooth SIG service
UUIDs (Assigned Numbers 3.4.2: 0x1810 Blood Pressure, 0x181D Weight Scale, 0x1809 Health
Thermometer, 0x1822 Pulse Oximeter)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path


def test_simulate_ble_prints_how_to_reach_it_and_scan_finds_the_ward(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "station", "simulate", "--ble"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Here:"):
                break
        text = "\n".join(lines)
        bus = re.search(r"export DBUS_SYSTEM_BUS_ADDRESS='([^']+)'", text)
        stub = re.search(r"export PATH='([^']+)'", text)
        assert bus and stub, text
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus.group(1),
               "PATH": f"{stub.group(1)}{os.pathsep}{os.environ['PATH']}",
               "STATION_STATE_DIR": str(tmp_path), "STATION_CONFIG": str(tmp_path / "none")}
        scan = subprocess.run(
            [sys.executable, "-m", "station", "devices", "scan", "--transport", "ble",
             "--seconds", "3"],
            env=env, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert scan.returncode == 0, scan.stderr
        found = {line.split()[0]: line for line in scan.stdout.splitlines()}
        assert sorted(found) == [
            "AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02", "AA:BB:CC:DD:EE:03",
            "AA:BB:CC:DD:EE:04", "AA:BB:CC:DD:EE:05", "AA:BB:CC:DD:EE:99",
        ]
        assert "and-ua-651ble" in found["AA:BB:CC:DD:EE:01"]
        assert "beurer-sbm69" in found["AA:BB:CC:DD:EE:02"]
        assert "generic-ble-weight-scale" in found["AA:BB:CC:DD:EE:03"]
        assert "generic-ble-thermometer" in found["AA:BB:CC:DD:EE:04"]
        assert "generic-ble-pulse-oximeter" in found["AA:BB:CC:DD:EE:05"]
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stdin.close()
        if proc.stderr is not None:
            proc.stderr.close()
