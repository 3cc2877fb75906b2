"""`station devices`: bind/unbind/list in-process; scan, test and log as real processes against
the fake BlueZ and serial simulators on ptys."""

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
from station.devices.codecs.registry import get_codec
from station.devices.codecs.serial.events import DeviceEvent
from station.devices.profiles import find_profile
from station.devices.simulators.ble import BloodPressureCuff
from station.devices.simulators.fakebluez import FakeBlueZ
from station.models import Mode, PulseOximetry
from tests.fixtures.serial import SimulatorFactory, by_id_name

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
                "--not-plugged-in",  # bound ahead of the device (a missing port is refused)
            ]
        )
        == 0
    )
    assert main([*sd, "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [
        "cuff         and-ua-651ble          AA:BB:CC:DD:EE:01  (bindings.json)",
        "ox           nonin-xpod-3012lp      /dev/serial/by-id/usb-Nonin-if00  (bindings.json)",
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


def test_bind_says_what_is_wrong_with_the_address_or_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """#15: a short address was taken for a serial port ("unknown serial profile"), and a
    port that is not there was bound silently. A Bluetooth device address is 48 bits, six
    octets (Bluetooth Core Specification v5.3, Vol 2, Part B, 1.2 "Bluetooth device
    addressing"), written as six hex pairs."""
    sd = ["devices", "--state-dir", str(tmp_path)]
    assert main([*sd, "bind", "AA:BB:CC:DD:EE", "--profile", "and-ua-651ble"]) == 2
    assert capsys.readouterr().err == (
        "station: 'AA:BB:CC:DD:EE' is not a valid Bluetooth address (5 groups); expected six "
        "pairs of hex digits, like AA:BB:CC:DD:EE:FF (or AA-BB-CC-DD-EE-FF)\n"
    )
    missing = tmp_path / "usb-Nonin-if00"
    assert main([*sd, "bind", str(missing), "--profile", "nonin-xpod-3012lp"]) == 2
    assert capsys.readouterr().err == (
        f"station: {missing}: no such serial port (is the device plugged in? `station devices "
        "scan --transport serial` lists the ports there are); to bind it before it is plugged "
        "in, add --not-plugged-in\n"
    )
    assert not (tmp_path / "bindings.json").exists()  # nothing bound by a refused command
    assert (
        main(
            [*sd, "bind", "aa:bb:cc:dd:ee:0f", "--profile", "and-ua-651ble", "--scan-seconds", "0"]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines()[0] == (
        "bound and-ua-651ble: AA:BB:CC:DD:EE:0F (and-ua-651ble)"
    )


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
        [
            sys.executable,
            "-m",
            "station",
            "devices",
            "scan",
            "--seconds",
            "0.5",
            "--transport",
            "ble",
        ],
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


def _cli(tmp_path: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "station", "devices", *args],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_scan_lists_plugged_in_serial_ports_with_profiles_and_binding(
    tmp_path: Path, by_id_dir: Path, serial_simulator: SimulatorFactory
) -> None:
    oximeter = find_profile("nonin-xpod-3012lp")
    rad8 = find_profile("masimo-rad-8")
    serial_simulator(oximeter)
    serial_simulator(rad8)
    ox_port = by_id_dir / by_id_name(oximeter)
    assert (
        main(
            [
                "devices",
                "--state-dir",
                str(tmp_path),
                "bind",
                str(ox_port),
                "--profile",
                oximeter.id,
                "--id",
                "ox",
            ]
        )
        == 0
    )
    proc = _cli(tmp_path, "scan", "--transport", "serial", "--by-id-dir", str(by_id_dir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{by_id_dir / by_id_name(rad8)}  -  masimo-rad-8,masimo-radical-7,nonin-oem-iii-df7,"
        "nonin-oem-iii-df8,suntech-advantage,detecto-758c,ge-dinamap-pro,healthometer-pro-plus,"
        "mettler-toledo-mt-sics,sma-scale  not bound",
        f"{ox_port}  -  nonin-xpod-3012lp,detecto-758c,ge-dinamap-pro,healthometer-pro-plus,"
        "mettler-toledo-mt-sics,sma-scale  bound as ox",
    ]


def test_test_command_on_a_serial_device_prints_one_reading_decoded_and_raw(
    tmp_path: Path, by_id_dir: Path, serial_simulator: SimulatorFactory
) -> None:
    profile = find_profile("nonin-xpod-3012lp")
    simulator = serial_simulator(profile)
    port = by_id_dir / by_id_name(profile)
    assert (
        main(
            [
                "devices",
                "--state-dir",
                str(tmp_path),
                "bind",
                str(port),
                "--profile",
                profile.id,
                "--id",
                "ox",
            ]
        )
        == 0
    )
    proc = _cli(tmp_path, "test", "ox", "--seconds", "10")
    assert proc.returncode == 0, proc.stderr
    # device events (the oximeter's firmware revision, frame 4) may come before the reading
    raw, decoded = [line for line in proc.stdout.splitlines() if not line.startswith("event ")]
    assert raw.startswith("serial ")
    reading = PulseOximetry.model_validate_json(decoded)
    # the printed reading is exactly what the codec makes of the printed bytes ...
    decoder = get_codec("serial:nonin-2").new_decoder()  # type: ignore[union-attr]
    decoded_again = decoder.feed(bytes.fromhex(raw.removeprefix("serial ")))
    # ... marked as the simulator's, not a patient's (#15: `station simulate` readings said
    # "mode": "real"; sdc11073's MeasurementValidity/mode: a simulated value is demo data) ...
    assert reading.mode is Mode.DEMO
    assert [
        e.model_copy(update={"mode": Mode.DEMO})
        for e in decoded_again
        if not isinstance(e, DeviceEvent)
    ] == [reading]
    # ... and those are values the simulated oximeter sent
    sent = {"spo2_percent": reading.spo2_percent, "pulse_rate_bpm": reading.pulse_rate_bpm}
    assert sent in simulator.sent
    assert proc.stderr.startswith(
        "# readings marked mode=demo: a pseudo-terminal is a simulator (station simulate)\n"
        f"# connected {port}\n"
    )


def test_log_command_on_a_serial_device_prints_frames_as_they_arrive(
    tmp_path: Path, by_id_dir: Path, serial_simulator: SimulatorFactory
) -> None:
    profile = find_profile("masimo-rad-8")
    simulator = serial_simulator(profile, speed=8.0)
    port = by_id_dir / by_id_name(profile)
    assert (
        main(
            [
                "devices",
                "--state-dir",
                str(tmp_path),
                "bind",
                str(port),
                "--profile",
                profile.id,
                "--id",
                "ox",
            ]
        )
        == 0
    )
    proc = _cli(tmp_path, "log", "ox", "--seconds", "1.5")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) >= 4
    decoder = get_codec("serial:masimo-ascii").new_decoder()  # type: ignore[union-attr]
    got = []
    for line in lines:
        kind, raw = line.split()
        assert kind == "serial"
        [reading] = decoder.feed(bytes.fromhex(raw))
        got.append({k: getattr(reading, k) for k in simulator.sent[0]})
    first = simulator.sent.index(got[0])
    assert simulator.sent[first : first + len(got)] == got


def test_test_command_names_a_serial_device_that_is_not_plugged_in(tmp_path: Path) -> None:
    port = tmp_path / "usb-FTDI_nothing-if00-port0"
    assert (
        main(
            [
                "devices",
                "--state-dir",
                str(tmp_path),
                "bind",
                str(port),
                "--profile",
                "masimo-rad-8",
                "--id",
                "ox",
                "--not-plugged-in",
            ]
        )
        == 0
    )
    proc = _cli(tmp_path, "test", "ox", "--seconds", "0.5")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        f"# disconnected: {port}: no such port (unplugged?)\n"
        "# stopped\n"
        "station: no reading from ox in 0.5 s\n"
    )


def test_only_simulators_are_marked_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A USB serial adapter is /dev/ttyUSB*/ttyACM* (Linux Documentation/admin-guide/devices.txt:
    char 188 ttyUSB, 166 ttyACM); a pseudo-terminal is /dev/pts/* (char 136, Unix98 PTY
    slaves). BlueZ listens on the system bus at unix:path=/run/dbus/system_bus_socket (the
    D-Bus Specification's well-known system bus address, "unix:path=/var/run/dbus/
    system_bus_socket", /var/run being /run)."""
    from station.cli.devices import simulated_by

    assert simulated_by("/dev/ttyUSB0") is None
    link = tmp_path / "usb-FTDI-if00-port0"
    link.symlink_to("/dev/pts/7")  # what `station simulate --port PATH` makes
    assert simulated_by(str(link)) == "a pseudo-terminal is a simulator (station simulate)"
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket")
    assert simulated_by(None) is None
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS")
    assert simulated_by(None) is None
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/bus")
    assert simulated_by(None) == (
        "Bluetooth on a private D-Bus is simulated (station simulate --ble)"
    )
