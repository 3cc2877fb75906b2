"""Simulators: real pyserial talks to them on a pty; `station simulate` serves a profile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from station.devices.codecs.registry import get_codec
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.devices.codecs.serial.nonin import Nonin2Decoder
from station.devices.codecs.serial.suntech import GET_CUFF_PRESSURE, START_ADULT_BP
from station.devices.profiles import BUNDLED_DIR, load_profiles
from station.devices.simulators.uart import uart_receive
from station.models import BodyWeight, CuffPressure, PulseOximetry
from tests.fixtures.serial import SimulatorFactory

pytestmark = pytest.mark.serial
PROFILES = load_profiles([BUNDLED_DIR])


def exchange(port: serial.Serial, request: bytes, until: bytes, timeout: float = 3.0) -> bytes:
    port.write(request)
    data = b""
    deadline = time.monotonic() + timeout
    while not (until and data.endswith(until)) and time.monotonic() < deadline:
        data += port.read(max(1, port.in_waiting))
    return data


def test_sma_scale_answers_a_poll_with_the_weight_it_records(
    serial_simulator: SimulatorFactory,
) -> None:
    simulator = serial_simulator(PROFILES["sma-scale"], scenario="motion")
    with serial.Serial(simulator.port, 9600, timeout=0.05) as port:
        reply = exchange(port, b"\nW\r", b"\r")
        unknown = exchange(port, b"\nQ\r", b"\r")
    [reading] = get_codec("serial:sma").new_decoder().feed(reply)  # type: ignore[union-attr]
    assert isinstance(reading, BodyWeight)
    assert reading.weight_kg == simulator.sent[0]["weight_kg"]
    assert reading.flags == ("in_motion",)
    assert unknown == b"\n?\r"


def test_mt_sics_answers_s_and_refuses_an_unknown_command(
    serial_simulator: SimulatorFactory,
) -> None:
    simulator = serial_simulator(PROFILES["mettler-toledo-mt-sics"])
    with serial.Serial(simulator.port, 9600, timeout=0.05) as port:
        reply = exchange(port, b"S\r\n", b"\n")
        error = exchange(port, b"XYZ\r\n", b"\n")
        zero = exchange(port, b"Z\r\n", b"\n")
    weight = simulator.sent[0]["weight_kg"]
    assert reply == f"S S {weight:10.2f} kg\r\n".encode()
    assert (error, zero) == (b"ES\r\n", b"Z A\r\n")


def test_suntech_acknowledges_start_reports_busy_and_deflates(
    serial_simulator: SimulatorFactory,
) -> None:
    simulator = serial_simulator(PROFILES["suntech-advantage"])
    decoder = get_codec("serial:suntech-advantage").new_decoder()  # type: ignore[union-attr]
    with serial.Serial(simulator.port, 9600, timeout=0.05) as port:
        # Every reply ends with its checksum; status replies are 4 bytes, cuff pressure 5.
        ack = decoder.feed(exchange(port, START_ADULT_BP, b"\x3e\x04\x4f\x6f"))
        busy = decoder.feed(exchange(port, START_ADULT_BP, b"\x3e\x04\x42\x7c"))
        time.sleep(0.3)
        cuff = decoder.feed(exchange(port, GET_CUFF_PRESSURE, b"", 0.3))
    assert [e.code for e in ack] == [DeviceEventCode.ACK]  # type: ignore[union-attr]
    assert [e.code for e in busy] == [DeviceEventCode.BUSY]  # type: ignore[union-attr]
    [pressure] = cuff
    assert isinstance(pressure, CuffPressure)
    assert pressure.cuff_pressure_mmhg is not None and 30 <= pressure.cuff_pressure_mmhg <= 160


def test_unplug_scenario_removes_and_restores_the_stable_name(
    serial_simulator: SimulatorFactory,
) -> None:
    simulator = serial_simulator(PROFILES["nonin-xpod-3012lp"], scenario="unplug")
    link = Path(simulator.port)
    first = os.readlink(link)
    deadline = time.monotonic() + 5
    seen_missing = False
    while time.monotonic() < deadline and simulator.plug_count < 2:
        seen_missing |= not link.exists()
        time.sleep(0.02)
    assert seen_missing and simulator.plug_count == 2
    assert link.exists()  # back under the same stable name, now pointing at the new pty
    assert Path(os.readlink(link)).exists()
    assert first.startswith("/dev/pts/")


@settings(derandomize=True, database=None, max_examples=40, deadline=None)
@given(st.binary(max_size=64), st.sampled_from([1200, 9600, 19200, 115200]))
def test_uart_at_the_right_baud_reads_exactly_what_was_sent(data: bytes, baud: int) -> None:
    assert uart_receive(data, baud, baud) == data


def test_uart_at_the_wrong_baud_reads_no_valid_nonin_frame() -> None:
    from station.devices.simulators.frames import nonin2_packet

    sent = nonin2_packet(72, 97) * 4
    garbled = uart_receive(sent, 19200, 9600)
    assert garbled != sent and len(garbled) < len(sent)
    events = Nonin2Decoder().feed(garbled)
    assert not [e for e in events if isinstance(e, PulseOximetry)]


def test_station_simulate_prints_the_port_and_streams_until_interrupted() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "station", "simulate", "nonin-xpod-3012lp", "--seed", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        run_simulate(process)
    assert process.returncode == 130


def run_simulate(process: subprocess.Popen[str]) -> None:
    try:
        assert process.stdout is not None
        path = process.stdout.readline().strip()
        assert path.startswith("/dev/pts/")
        decoder = Nonin2Decoder()
        readings: list[PulseOximetry] = []
        with serial.Serial(path, 9600, timeout=0.1) as port:
            deadline = time.monotonic() + 5
            while len(readings) < 2 and time.monotonic() < deadline:
                readings += [
                    e for e in decoder.feed(port.read(256)) if isinstance(e, PulseOximetry)
                ]
        assert len(readings) >= 2
        assert all(r.spo2_percent is not None and 95 <= r.spo2_percent <= 99 for r in readings)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=5)


def test_station_simulate_refuses_a_ble_profile() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "station", "simulate", "nonin-3230"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "station: nonin-3230 is a Bluetooth LE profile; `station simulate` runs serial devices\n"
    )


def test_decoder_reports_the_format_selection_ack() -> None:
    from station.devices.codecs.serial.nonin import Nonin7Decoder

    assert Nonin7Decoder().feed(b"\x06") == []  # held: more noise may follow
    events = Nonin7Decoder().feed(b"\x06" + bytes([0x81, 0, 0, 0, 0x81]))
    assert events[0] == DeviceEvent(codec="serial:nonin-7", code=DeviceEventCode.ACK, raw_hex="06")


def test_station_simulate_port_path_makes_a_stable_symlink(tmp_path: Path) -> None:
    link = tmp_path / "usb-FTDI_SIM-if00-port0"
    with subprocess.Popen(
        [sys.executable, "-m", "station", "simulate", "sma-scale", "--port", str(link)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == str(link)
            assert os.readlink(link).startswith("/dev/pts/")
            with serial.Serial(str(link), 9600, timeout=0.05) as port:
                reply = exchange(port, b"\nW\r", b"\r")
            assert len(reply) == 20 and reply.endswith(b"kg \r")
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=5)
    assert process.returncode == 130
    assert not link.exists()  # the simulator removes its symlink when it stops
