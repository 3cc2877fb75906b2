"""Issue 19: `station devices` as a biomed tech uses it, as real processes against the fake
BlueZ on a private D-Bus (real bleak): the station's own settings and state dir, a Bluetooth
address written with hyphens, `test` telling stored readings from a new one, `pair` with the
passkey typed once, `records` over RACP, and a device held by the running station.

Outside facts used:
- A Bluetooth device address is a 48-bit IEEE 802 MAC address (Bluetooth Core v5.3, Vol 2,
  Part B, 1.2 "Bluetooth device addressing"); IEEE Std 802-2014, 8.1 writes it as six
  hyphen-separated hexadecimal octets (AA-BB-CC-DD-EE-08), BlueZ with colons.
- RACP (GATT Specification Supplement 3.182 / Glucose Profile 1.0.1 3.6): "Report stored
  records" 0x01, "Delete stored records" 0x02, "Report number of stored records" 0x04,
  response code "Success" 0x01, number of records in the count response.
- Passkey entry is six decimal digits (Bluetooth Core v5.3, Vol 3, Part H, 2.3.5.3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from station.devices.simulators.ble import BloodPressureCuff, StoredBp
from station.devices.simulators.fakebluez import FakeBlueZ
from tests.fixtures.ble import BleLoop

CUFF = "AA:BB:CC:DD:EE:08"
YESTERDAY = datetime(2026, 3, 1, 8, 15)  # a stored reading, long before any test


def _cli(
    state: Path, *args: str, config: Path | None = None, timeout: float = 40, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("STATION_STATE_DIR",)}
    env["STATION_CONFIG"] = str(config or state / "absent.toml")
    head = ["--state-dir", str(state)] if config is None else ["--config", str(config)]
    return subprocess.run(
        [sys.executable, "-m", "station", "devices", *head, *args],
        env=env, input=stdin, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_devices_read_the_stations_settings_file_and_its_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    config = tmp_path / "station.toml"
    config.write_text(
        '[station]\nsite = "test-clinic"\nstation_id = "exam-1"\nmode = "exam"\n'
        f'[storage]\nstate_dir = "{state}"\n'
        '[[devices]]\nid = "scale"\nprofile = "generic-ble-weight-scale"\n'
        'address = "AA:BB:CC:DD:EE:0A"\n',
        encoding="utf-8",
    )
    bound = _cli(state, "bind", "AA-BB-CC-DD-EE-08", "--profile", "and-ua-651ble", "--id", "cuff",
                 "--scan-seconds", "0", config=config)
    assert bound.returncode == 0, bound.stderr
    assert bound.stdout.splitlines()[0] == "bound cuff: AA:BB:CC:DD:EE:08 (and-ua-651ble)"
    assert "restart it" in bound.stdout  # a CLI bind applies at the next `station run`
    listed = _cli(state, "list", config=config)
    assert listed.stdout.splitlines() == [
        "cuff         and-ua-651ble          AA:BB:CC:DD:EE:08  (bindings.json)",
        "scale        generic-ble-weight-scale AA:BB:CC:DD:EE:0A  (station.toml)",
    ]
    bogus = _cli(state, "bind", "AA-BB-CC", "--profile", "and-ua-651ble", config=config)
    assert bogus.returncode == 2
    assert bogus.stderr == (
        "station: 'AA-BB-CC' is not a valid Bluetooth address (3 groups); expected six pairs "
        "of hex digits, like AA:BB:CC:DD:EE:FF (or AA-BB-CC-DD-EE-FF)\n"
    )


@pytest.mark.ble
def test_test_marks_stored_readings_and_waits_for_a_new_one(
    fake_bluez: FakeBlueZ, tmp_path: Path
) -> None:
    stored = [StoredBp(141, 92, 108, 77, YESTERDAY), StoredBp(139, 90, 106, 75, YESTERDAY)]
    cuff = BloodPressureCuff(fake_bluez, CUFF, "A&D_UA-651BLE", stored=stored,
                             battery_percent=64, firmware="2.0.7")
    assert _cli(tmp_path, "bind", CUFF, "--profile", "and-ua-651ble", "--id", "cuff",
                "--scan-seconds", "0").returncode == 0
    env = {**os.environ, "STATION_CONFIG": str(tmp_path / "absent.toml")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "station", "devices", "--state-dir", str(tmp_path), "test", "cuff",
         "--seconds", "30"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while cuff.clock_written == [] and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the stored dump goes out on subscribe
    assert cuff.measure(118, 76, 90, 64)  # no timestamp: measured now
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    notes = [line for line in out.splitlines() if line.startswith("# not a new reading")]
    assert len(notes) == 2
    assert all("measured" in n and "before this rooming" in n for n in notes)
    assert all("(device time 2026-03-01 08:15:00)" in n for n in notes)
    last = json.loads(out.splitlines()[-1])
    assert (last["systolic_mmhg"], last["diastolic_mmhg"]) == (118.0, 76.0)
    # The fake BlueZ on a private bus is a simulator: its readings are demo data, not a
    # patient's (#15: `station simulate` readings said "mode": "real").
    assert last["mode"] == "demo"
    assert err.startswith("# readings marked mode=demo: Bluetooth on a private D-Bus is "
                          "simulated (station simulate --ble)\n")
    assert "# battery 64 %, firmware 2.0.7" in err
    assert "# clock written (2a08): " in err


@pytest.mark.ble
def test_pair_asks_for_the_passkey_once_and_says_why_a_wrong_one_fails(
    fake_bluez: FakeBlueZ, tmp_path: Path
) -> None:
    cuff = BloodPressureCuff(fake_bluez, CUFF, "SBM69", passkey=123456, clock_characteristic=None)
    assert _cli(tmp_path, "bind", CUFF, "--profile", "beurer-sbm69", "--id", "cuff",
                "--scan-seconds", "0").returncode == 0
    wrong = _cli(tmp_path, "pair", "cuff", stdin="654321\n")
    assert wrong.returncode == 2
    assert "cuff (AA:BB:CC:DD:EE:08) not paired: pairing failed: the device refused the passkey" \
        in wrong.stderr
    assert not cuff.peripheral.paired
    fake_bluez.run(fake_bluez.drop(cuff.peripheral))  # the failed attempt's connection
    right = _cli(tmp_path, "pair", "cuff", stdin="123456\n")
    assert right.returncode == 0, right.stderr
    assert "passkey shown on cuff (AA:BB:CC:DD:EE:08): " in right.stderr
    assert right.stdout.startswith("paired cuff (AA:BB:CC:DD:EE:08): bonded")
    assert cuff.peripheral.paired


@pytest.mark.ble
def test_records_count_fetch_and_clear_over_racp(fake_bluez: FakeBlueZ, tmp_path: Path) -> None:
    stored = [StoredBp(141, 92, 108, 77, YESTERDAY), StoredBp(139, 90, 106, 75, YESTERDAY)]
    cuff = BloodPressureCuff(fake_bluez, CUFF, "BP-Cuff", stored=stored,
                             dump_stored_on_connect=False)
    assert _cli(tmp_path, "bind", CUFF, "--profile", "generic-ble-blood-pressure", "--id", "cuff",
                "--scan-seconds", "0").returncode == 0
    count = _cli(tmp_path, "records", "cuff")
    assert (count.returncode, count.stdout) == (0, "2 stored record(s)\n"), count.stderr
    fake_bluez.run(fake_bluez.drop(cuff.peripheral))
    fetched = _cli(tmp_path, "records", "cuff", "--fetch")
    assert fetched.returncode == 0, fetched.stderr
    lines = fetched.stdout.splitlines()
    assert lines[-1] == "racp report_records: success"
    systolics = [json.loads(line.removeprefix("stored "))["systolic_mmhg"] for line in lines[:-1]]
    assert systolics == [141.0, 139.0]
    fake_bluez.run(fake_bluez.drop(cuff.peripheral))
    cleared = _cli(tmp_path, "records", "cuff", "--clear")
    assert (cleared.returncode, cleared.stdout) == (0, "racp delete_records: success\n")
    assert cuff.stored == []


@pytest.mark.ble
def test_test_says_when_the_running_station_holds_the_device(
    fake_bluez: FakeBlueZ, ble_loop: BleLoop, tmp_path: Path
) -> None:
    cuff = BloodPressureCuff(fake_bluez, CUFF, "A&D_UA-651BLE")
    assert _cli(tmp_path, "bind", CUFF, "--profile", "and-ua-651ble", "--id", "cuff",
                "--scan-seconds", "0").returncode == 0
    from bleak import BleakClient, BleakScanner

    async def hold() -> BleakClient:  # what `station run`'s link does with a bound device
        device = await BleakScanner.find_device_by_address(CUFF, timeout=10)
        assert device is not None
        client = BleakClient(device)
        await client.connect()
        return client

    client = ble_loop.run(hold())
    try:
        assert cuff.connected
        held = _cli(tmp_path, "test", "cuff", "--seconds", "5")
    finally:
        ble_loop.run(client.disconnect())
    assert held.returncode == 3
    assert "connected to another program on this machine" in held.stderr
    assert "station run" in held.stderr
