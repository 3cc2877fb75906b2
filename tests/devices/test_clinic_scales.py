"""The physician scales US clinics own: the Detecto / Cardinal 758C (SMA with `W01,`) and the
Health o meter Professional Pro Plus (ESC protocol), each against its manual's pages and its
simulator on a real pty (pyserial) and through `station simulate`.

Sources (read as public page transcriptions; see docs/devices.md):
- Cardinal Detecto 758C Owner's Manual 8555-M210-O1 rev R, "Weight On Demand Formats", p. 32:
  host `<lf> W <cr>`, reply `<lf>W01,<s><r><n><m><f><xxxxxx.xxx><uuu><cr>`.
- Health o meter Pro Plus 1100KL/2650KL/2700KL Operation Manual, "PC Communication Protocol",
  p. 33: `<ESC>R<ESC>I1234567890<ESC>W200.00<ESC>Nm<ESC>...<ESC>E`; W weight `nnn.nn`, H height,
  T tare, B BMI `nnn.n`, N units (m metric, c constitutional); power status `<ESC>O<ESC>E`,
  `<ESC>F<ESC>E`, `<ESC>L<ESC>E`; settings answer `<ESC>PAHT=10<ESC>E`.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import serial

from station.devices.codecs.base import BadFrame, StreamCodec
from station.devices.codecs.registry import get_codec
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.devices.codecs.serial.healthometer import HealthOMeterDecoder
from station.devices.profiles import BUNDLED_DIR, Delivery, load_profiles
from station.models import BodyWeight, Flag
from station.units import Unit
from tests.fixtures.serial import SimulatorFactory

PROFILES = load_profiles([BUNDLED_DIR])
ESC = "\x1b"


def decode(codec: str, data: bytes) -> list[object]:
    spec = get_codec(codec)
    assert isinstance(spec, StreamCodec)
    whole = spec.new_decoder().feed(data)
    decoder = spec.new_decoder()
    by_byte = [event for i in range(len(data)) for event in decoder.feed(data[i : i + 1])]
    assert by_byte == whole
    return list(whole)


def read_until(port: serial.Serial, until: bytes, timeout: float = 3.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(until) and time.monotonic() < deadline:
        data += port.read(max(1, port.in_waiting))
    return data


# Health o meter: the codec against p. 33 ------------------------------------------------------
def test_the_manuals_reading_is_200_kg_metric() -> None:
    raw = f"{ESC}R{ESC}I1234567890{ESC}W200.00{ESC}Nm{ESC}E".encode()
    [reading] = decode("serial:healthometer-esc", raw)
    assert isinstance(reading, BodyWeight)
    assert (reading.weight_kg, reading.height_cm, reading.bmi_kg_m2) == (200.0, None, None)
    assert reading.unit_as_sent == Unit.KG
    assert reading.flags == ()
    assert reading.raw_hex == raw.hex()
    assert reading.user_id is None  # the typed patient ID is never taken as a user number


def test_constitutional_units_are_pounds_and_inches() -> None:
    # N c = "constitutional" (p. 33): 150.00 lb and 65.00 in -> 68.0388555 kg, 165.1 cm.
    raw = f"{ESC}R{ESC}W150.00{ESC}H65.00{ESC}B25.0{ESC}Nc{ESC}E".encode()
    [reading] = decode("serial:healthometer-esc", raw)
    assert isinstance(reading, BodyWeight)
    assert reading.weight_kg == pytest.approx(68.0388555, abs=1e-9)
    assert reading.height_cm == pytest.approx(165.1, abs=1e-9)
    assert reading.bmi_kg_m2 == 25.0
    assert reading.unit_as_sent == Unit.LB


def test_a_tare_being_tared_out_makes_the_weight_net() -> None:
    # "T: the TARE weight that the scale is taring out" (p. 33), values of the p. 35 sample.
    raw = f"{ESC}R{ESC}W90.98{ESC}T5.70{ESC}Nm{ESC}E".encode()
    [reading] = decode("serial:healthometer-esc", raw)
    assert isinstance(reading, BodyWeight)
    assert reading.weight_kg == 90.98
    assert reading.flags == (Flag.NET_WEIGHT,)
    [untared] = decode("serial:healthometer-esc", raw.replace(b"T5.70", b"T0.00"))
    assert untared.flags == ()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("packet", "detail"),
    [("O", "power on"), ("F", "power off"), ("L", "low power"), ("PAHT=10", "setting AHT=10")],
)
def test_power_status_and_settings_answers_are_events_not_readings(
    packet: str, detail: str
) -> None:
    raw = f"{ESC}{packet}{ESC}E".encode()
    assert decode("serial:healthometer-esc", raw) == [
        DeviceEvent(
            codec="serial:healthometer-esc",
            code=DeviceEventCode.REPLY,
            detail=detail,
            raw_hex=raw.hex(),
        )
    ]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (f"{ESC}R{ESC}W72.40{ESC}E", "no units field (N)"),
        (f"{ESC}R{ESC}W72.40{ESC}Ng{ESC}E", "units 'g' unknown"),
        (f"{ESC}R{ESC}H170.00{ESC}Nm{ESC}E", "reading without a weight (W)"),
        (f"{ESC}R{ESC}W72.40{ESC}W72.50{ESC}Nm{ESC}E", "field 'W' twice in one reading"),
        (f"{ESC}R{ESC}W7240.0{ESC}Nm{ESC}E", "W value '7240.0' malformed"),
        (f"{ESC}R{ESC}Z1{ESC}W72.40{ESC}Nm{ESC}E", "field 'Z' unknown in a reading"),
        (f"{ESC}R{ESC}I12345678901{ESC}W72.40{ESC}Nm{ESC}E", "patient ID longer than 10"),
    ],
)
def test_a_packet_off_the_manuals_layout_is_refused_with_the_reason(raw: str, problem: str) -> None:
    [event] = decode("serial:healthometer-esc", raw.encode())
    assert isinstance(event, BadFrame)
    assert problem in event.problem


def test_a_packet_without_its_end_is_reported_within_the_limit_and_the_next_one_kept() -> None:
    good = f"{ESC}R{ESC}W72.40{ESC}Nm{ESC}E".encode()
    events = HealthOMeterDecoder().feed(b"\x1bR" + b"\x1bW1" * 40 + good)
    assert isinstance(events[0], BadFrame)
    assert isinstance(events[-1], BodyWeight) and events[-1].weight_kg == 72.4


# Profiles ------------------------------------------------------------------------------------
def test_the_two_scale_profiles_say_what_the_manuals_say() -> None:
    detecto = PROFILES["detecto-758c"]
    assert detecto.codecs == ["serial:sma"]
    assert detecto.serial is not None and detecto.serial.poll is not None
    assert detecto.serial.poll.command == b"\nW\r"  # p. 32: the host sends <lf> W <cr>
    assert detecto.behaviour.delivery is Delivery.STREAMING
    hom = PROFILES["healthometer-pro-plus"]
    assert hom.codecs == ["serial:healthometer-esc"]
    assert hom.serial is not None and hom.serial.poll is None  # the scale sends, unasked
    assert hom.behaviour.delivery is Delivery.SPOT


# Simulators on a pty -------------------------------------------------------------------------
@pytest.mark.serial
def test_detecto_simulator_answers_w_with_the_w01_reply(
    serial_simulator: SimulatorFactory,
) -> None:
    simulator = serial_simulator(PROFILES["detecto-758c"], scenario="motion")
    with serial.Serial(simulator.port, 9600, timeout=0.05) as port:
        port.write(b"\nW\r")
        reply = read_until(port, b"\r")
        port.write(b"\nQ\r")
        unknown = read_until(port, b"\r")
    assert reply.startswith(b"\nW01,") and len(reply) == 24  # p. 32: 20-byte SMA + "W01,"
    [reading] = decode("serial:sma", reply)
    assert isinstance(reading, BodyWeight)
    assert reading.weight_kg == simulator.sent[0]["weight_kg"]
    assert reading.flags == (Flag.IN_MOTION,)
    assert unknown == b"\n?\r"


@pytest.mark.serial
def test_healthometer_simulator_sends_a_reading_per_weighing_and_answers_power_status(
    serial_simulator: SimulatorFactory,
) -> None:
    simulator = serial_simulator(PROFILES["healthometer-pro-plus"], speed=8.0)
    with serial.Serial(simulator.port, 9600, timeout=0.05) as port:
        packet = read_until(port, b"\x1bE")
        port.reset_input_buffer()
        port.write(b"\x1bJ\x1bE")  # <ESC>J: "requests the power status of the scale" (p. 33)
        deadline = time.monotonic() + 3
        answer = b""
        while b"\x1bO\x1bE" not in answer and time.monotonic() < deadline:
            answer += port.read(max(1, port.in_waiting))
    assert packet.startswith(b"\x1bR\x1bW") and packet.endswith(b"\x1bNm\x1bE")
    [reading] = decode("serial:healthometer-esc", packet)
    assert isinstance(reading, BodyWeight)
    # One of the weighings the simulator made (opening the port may drop an earlier one).
    assert {
        "weight_kg": reading.weight_kg,
        "height_cm": reading.height_cm,
        "bmi_kg_m2": reading.bmi_kg_m2,
    } in simulator.sent
    assert b"\x1bO\x1bE" in answer


@pytest.mark.serial
def test_healthometer_simulator_with_nobody_on_the_scale_sends_nothing(
    serial_simulator: SimulatorFactory,
) -> None:
    simulator = serial_simulator(
        PROFILES["healthometer-pro-plus"], scenario="sensor_off", speed=8.0
    )
    with serial.Serial(simulator.port, 9600, timeout=0.6) as port:
        assert port.read(64) == b""
    assert simulator.sent == []


@pytest.mark.serial
@pytest.mark.parametrize(
    ("profile_id", "request_bytes", "until", "codec"),
    [
        ("detecto-758c", b"\nW\r", b"\r", "serial:sma"),
        ("healthometer-pro-plus", b"", b"\x1bE", "serial:healthometer-esc"),
    ],
)
def test_station_simulate_serves_each_new_scale(
    profile_id: str, request_bytes: bytes, until: bytes, codec: str
) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "station", "simulate", profile_id, "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            path = process.stdout.readline().strip()
            assert path.startswith("/dev/pts/")
            with serial.Serial(path, 9600, timeout=0.05) as port:
                port.write(request_bytes)
                data = read_until(port, until, timeout=6.0)
            [reading] = decode(codec, data)
            assert isinstance(reading, BodyWeight) and reading.weight_kg is not None
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=5)
    assert process.returncode == 130
