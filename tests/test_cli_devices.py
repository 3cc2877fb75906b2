"""`station devices`: bind/unbind/list in-process; scan and test as real processes (fake BlueZ)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from station.cli import main
from station.devices.simulators.ble import BloodPressureCuff
from station.devices.simulators.fakebluez import FakeBlueZ

CUFF = "AA:BB:CC:DD:EE:01"
NEXT_DOOR = "AA:BB:CC:DD:EE:99"


def test_bind_list_unbind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sd = ["devices", "--state-dir", str(tmp_path)]
    assert main([*sd, "bind", CUFF.lower(), "--profile", "and-ua-651ble", "--id", "cuff"]) == 0
    assert (
        main(
            [
                *sd,
                "bind",
                "/dev/serial/by-id/usb-Nonin-if00",
                "--profile",
                "nonin-xpod-3012lp",
                "--id",
                "ox",
            ]
        )
        == 0
    )
    assert main([*sd, "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "cuff         and-ua-651ble          AA:BB:CC:DD:EE:01",
        "ox           nonin-xpod-3012lp      /dev/serial/by-id/usb-Nonin-if00",
    ]
    assert main([*sd, "unbind", "cuff"]) == 0
    assert main([*sd, "unbind", "cuff"]) == 2
    assert capsys.readouterr().err == "station: nothing bound as 'cuff'; bound: ox\n"


def test_bind_refuses_unknown_ble_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["devices", "--state-dir", str(tmp_path), "bind", CUFF, "--profile", "nope"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "station: unknown Bluetooth profile 'nope'; expected one of: and-ua-651ble, "
    )
    assert not (tmp_path / "bindings.json").exists()


def _env(state_dir: Path) -> dict[str, str]:
    return {**os.environ, "STATION_STATE_DIR": str(state_dir)}


@pytest.mark.ble
def test_scan_shows_profiles_and_binding(fake_bluez: FakeBlueZ, tmp_path: Path) -> None:
    BloodPressureCuff(fake_bluez, CUFF, "A&D_UA-651BLE")
    BloodPressureCuff(fake_bluez, NEXT_DOOR, "Cuff-next-door")
    assert (
        main(
            [
                "devices",
                "--state-dir",
                str(tmp_path),
                "bind",
                CUFF,
                "--profile",
                "and-ua-651ble",
                "--id",
                "cuff",
            ]
        )
        == 0
    )
    proc = subprocess.run(
        [sys.executable, "-m", "station", "devices", "scan", "--seconds", "0.5"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # the simulated RSSI alternates between -58 and -59 from one advert to the next
    lines = [
        re.sub(r" -5[89] dBm", " RSSI", " ".join(line.split())) for line in proc.stdout.splitlines()
    ]
    assert lines == [
        "AA:BB:CC:DD:EE:01 RSSI A&D_UA-651BLE and-ua-651ble,generic-ble-blood-pressure "
        "bound as cuff",
        "AA:BB:CC:DD:EE:99 RSSI Cuff-next-door generic-ble-blood-pressure not bound",
    ]


@pytest.mark.ble
def test_test_command_prints_one_reading_decoded_and_raw(
    fake_bluez: FakeBlueZ, tmp_path: Path
) -> None:
    cuff = BloodPressureCuff(fake_bluez, CUFF, "A&D_UA-651BLE")
    assert (
        main(
            [
                "devices",
                "--state-dir",
                str(tmp_path),
                "bind",
                CUFF,
                "--profile",
                "generic-ble-blood-pressure",
                "--id",
                "cuff",
            ]
        )
        == 0
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "station", "devices", "test", "cuff", "--seconds", "20"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not cuff.subscribed("2a35") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cuff.measure(117, 75, 89, 61)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    raw, decoded = out.splitlines()
    assert raw.startswith("2a35 ")
    reading = json.loads(decoded)
    assert (reading["systolic_mmhg"], reading["diastolic_mmhg"], reading["raw_hex"]) == (
        117.0,
        75.0,
        raw.split()[1],
    )
