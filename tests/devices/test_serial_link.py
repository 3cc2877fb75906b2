"""Real pyserial on pseudo-terminals: the serial link against each simulator."""

from __future__ import annotations

import os
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from station.devices.codecs.base import BadFrame
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.devices.profiles import BUNDLED_DIR, FirmwareProfile, Transport, load_profiles
from station.devices.serial_link import (
    LinkState,
    LinkStatus,
    PortSeen,
    SerialLink,
    SerialLinkError,
    find_port,
    scan_ports,
)
from station.devices.simulators import frames
from station.models import AnyReading, Flag, Kind, Mode
from tests.fixtures.serial import Collector, SimulatorFactory

pytestmark = pytest.mark.serial

PROFILES = load_profiles([BUNDLED_DIR])
SERIAL_PROFILES = sorted(p.id for p in PROFILES.values() if p.transport == Transport.SERIAL)
# Speed up the once-a-second devices so the suite stays fast (values and bytes are unchanged).
SPEED = {
    "masimo-rad-8": 8.0,
    "masimo-radical-7": 8.0,
    "nonin-oem-iii-df8": 8.0,
    "healthometer-pro-plus": 8.0,
}


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def start_link(by_id_dir: Path) -> Iterator[Callable[..., SerialLink]]:
    links: list[SerialLink] = []

    def start(profile: FirmwareProfile, on_event: Collector, **kwargs: object) -> SerialLink:
        kwargs.setdefault("by_id_dir", by_id_dir)
        kwargs.setdefault("list_ports_fn", list)  # no USB here: only the by-id folder
        link = SerialLink(profile, on_event, **kwargs)  # type: ignore[arg-type]
        link.start()
        links.append(link)
        return link

    yield start
    for link in links:
        link.stop()


def values(reading: AnyReading, keys: Iterator[str] | list[str]) -> dict[str, float | None]:
    return {key: getattr(reading, key) for key in keys}


def assert_run_of_sent(received: list[AnyReading], sent: list[dict[str, float | None]]) -> None:
    """The received readings carry exactly the values of a contiguous run of what was sent."""
    assert received, "no readings received"
    keys = list(sent[0])
    got = [values(r, keys) for r in received]
    starts = [i for i, v in enumerate(sent) if v == got[0]]
    assert any(sent[i : i + len(got)] == got for i in starts), (got, sent)


@pytest.mark.parametrize("profile_id", SERIAL_PROFILES)
def test_link_receives_the_simulators_readings_with_the_profiles_line_settings(
    profile_id: str,
    serial_simulator: SimulatorFactory,
    start_link: Callable[..., SerialLink],
    collector: Collector,
) -> None:
    profile = PROFILES[profile_id]
    assert profile.serial is not None
    simulator = serial_simulator(profile, speed=SPEED.get(profile_id, 1.0))
    link = start_link(profile, collector)
    collector.wait(lambda: link.state == LinkState.CONNECTED)

    # The line settings reached the port: pyserial's view and the pty's own termios.
    line = profile.serial.line
    settings = link.line_settings
    assert (settings["baudrate"], settings["bytesize"], settings["stopbits"]) == (
        line.baud,
        line.data_bits,
        line.stop_bits,
    )
    fd = os.open(simulator.port, os.O_RDONLY | os.O_NOCTTY)
    try:
        assert termios.tcgetattr(fd)[4] == getattr(termios, f"B{line.baud}")  # ispeed
    finally:
        os.close(fd)

    wanted = Kind.BLOOD_PRESSURE if profile.kinds[0] == Kind.BLOOD_PRESSURE else profile.kinds[0]
    if "start" in profile.serial.commands:  # cuffs and monitors measure when told to
        link.send_command("start")
    collector.wait(
        lambda: (
            len(collector.readings(wanted)) >= 2
            or (wanted == Kind.BLOOD_PRESSURE and len(collector.readings(wanted)) >= 1)
        )
    )
    assert_run_of_sent(collector.readings(wanted), simulator.sent)
    assert not [e for e in collector.events if isinstance(e, BadFrame)]
    if profile.serial.init_commands:  # the Nonin format selection was acknowledged
        assert DeviceEvent(codec=profile.codecs[0], code=DeviceEventCode.ACK, raw_hex="06") in (
            collector.events
        )
    # Init and poll commands went out exactly as the profile says.
    for command in profile.serial.init_commands:
        assert bytes(simulator.received).startswith(command)
    if profile.serial.poll is not None:
        assert profile.serial.poll.command in bytes(simulator.received)


def test_suntech_polls_cuff_pressure_and_fetches_bp_on_measurement_complete(
    serial_simulator: SimulatorFactory, start_link: Callable[..., SerialLink], collector: Collector
) -> None:
    profile = PROFILES["suntech-advantage"]
    simulator = serial_simulator(profile)
    link = start_link(profile, collector)
    collector.wait(lambda: link.state == LinkState.CONNECTED)
    link.send_command("start")
    collector.wait(lambda: bool(collector.readings(Kind.BLOOD_PRESSURE)))
    cuff = [r.cuff_pressure_mmhg for r in collector.readings(Kind.CUFF_PRESSURE)]  # type: ignore[union-attr]
    assert any(0 < p <= 160 for p in cuff if p is not None)  # polled during the deflation
    assert frames.suntech_status("K") == bytes.fromhex("3e044b73")
    assert bytes.fromhex("3A7903004A") in bytes(simulator.received)  # the on_event reply
    [bp] = collector.readings(Kind.BLOOD_PRESSURE)
    assert values(bp, list(simulator.sent[0])) == simulator.sent[0]


def test_unplug_and_replug_reconnects_and_keeps_reading(
    serial_simulator: SimulatorFactory, start_link: Callable[..., SerialLink], collector: Collector
) -> None:
    profile = PROFILES["nonin-xpod-3012lp"]
    simulator = serial_simulator(profile, scenario="unplug")
    start_link(profile, collector, backoff_initial_s=0.05, backoff_max_s=0.2)
    collector.wait(
        lambda: (
            collector.states().count(LinkState.CONNECTED) >= 2 and len(collector.readings()) > 8
        ),
        timeout=10,
    )
    states = collector.states()
    first_drop = states.index(LinkState.DISCONNECTED)
    assert LinkState.CONNECTED in states[first_drop:]
    drop = next(
        e
        for e in collector.events
        if isinstance(e, LinkStatus) and e.state == LinkState.DISCONNECTED
    )
    assert "unplugged" in drop.detail or "no port found" in drop.detail
    # Readings before and after the replug are the simulator's, in order, none invented.
    readings = collector.readings()
    keys = list(simulator.sent[0])
    got = [values(r, keys) for r in readings]
    it = iter(simulator.sent)
    assert all(any(g == s for s in it) for g in got), "readings are not a subsequence of sent"


def test_garbage_between_frames_loses_no_reading(
    serial_simulator: SimulatorFactory, start_link: Callable[..., SerialLink], collector: Collector
) -> None:
    profile = PROFILES["suntech-advantage"]
    simulator = serial_simulator(profile, scenario="noise", seed=3)
    link = start_link(profile, collector)
    collector.wait(lambda: link.state == LinkState.CONNECTED)
    link.send_command("start")
    collector.wait(lambda: bool(collector.readings(Kind.BLOOD_PRESSURE)))
    assert any(isinstance(e, BadFrame) for e in collector.events)  # the noise was reported
    [bp] = collector.readings(Kind.BLOOD_PRESSURE)
    assert values(bp, list(simulator.sent[0])) == simulator.sent[0]


def test_a_demo_link_marks_every_reading_demo(
    serial_simulator: SimulatorFactory, start_link: Callable[..., SerialLink], collector: Collector
) -> None:
    profile = PROFILES["nonin-xpod-3012lp"]
    serial_simulator(profile)
    start_link(profile, collector, reading_mode=Mode.DEMO)
    collector.wait(lambda: len(collector.readings()) >= 2)
    assert {r.mode for r in collector.readings()} == {Mode.DEMO}


def test_babbling_masimo_still_delivers_every_record(
    serial_simulator: SimulatorFactory, start_link: Callable[..., SerialLink], collector: Collector
) -> None:
    profile = PROFILES["masimo-rad-8"]
    simulator = serial_simulator(profile, scenario="noise", speed=8.0)
    start_link(profile, collector)
    collector.wait(lambda: len(collector.readings()) >= 4)
    assert_run_of_sent(collector.readings()[1:], simulator.sent)


def test_partial_frames_written_byte_by_byte_decode_exactly(
    pty_pair: tuple[int, str], start_link: Callable[..., SerialLink], collector: Collector
) -> None:
    master, path = pty_pair
    profile = PROFILES["nonin-oem-iii-df8"]
    link = start_link(profile, collector, port=path)
    collector.wait(lambda: link.state == LinkState.CONNECTED)
    data = frames.nonin8_frame(72, 97) + frames.nonin8_frame(130, 95, 0x10)
    for i in range(len(data)):
        os.write(master, data[i : i + 1])
        time.sleep(0.03)  # longer than the link's read timeout: every byte is its own read
    collector.wait(lambda: len(collector.readings()) == 2)
    assert [(r.pulse_rate_bpm, r.spo2_percent, r.flags) for r in collector.readings()] == [  # type: ignore[union-attr]
        (72.0, 97.0, ()),
        (130.0, 95.0, (Flag.LOW_PERFUSION,)),
    ]


def test_baud_mismatch_is_reported_as_garbled_and_yields_no_reading(
    serial_simulator: SimulatorFactory, start_link: Callable[..., SerialLink], collector: Collector
) -> None:
    # A pty ignores the baud rate, so the simulator sends what a UART at the profile's baud
    # would read from a device set to twice that (station.devices.simulators.uart).
    profile = PROFILES["nonin-xpod-3012lp"]
    serial_simulator(profile, scenario="baud_mismatch", speed=4.0)
    start_link(profile, collector)
    collector.wait(lambda: LinkState.GARBLED in collector.states())
    garbled = next(
        e for e in collector.events if isinstance(e, LinkStatus) and e.state == LinkState.GARBLED
    )
    assert "check the baud rate (9600)" in garbled.detail
    assert collector.readings() == []


def test_link_waits_for_a_device_that_is_not_there_yet(
    serial_simulator: SimulatorFactory, start_link: Callable[..., SerialLink], collector: Collector
) -> None:
    profile = PROFILES["nonin-xpod-3012lp"]
    link = start_link(profile, collector, backoff_initial_s=0.05, backoff_max_s=0.2)
    collector.wait(lambda: LinkState.DISCONNECTED in collector.states())
    status = collector.events[0]
    assert isinstance(status, LinkStatus)
    assert status.detail.startswith("no port found for nonin-xpod-3012lp: looked for ")
    simulator = serial_simulator(profile)
    collector.wait(lambda: len(collector.readings()) >= 2)
    assert link.state == LinkState.CONNECTED
    assert_run_of_sent(collector.readings(), simulator.sent)


def test_find_port_by_usb_vendor_and_product(tmp_path: Path) -> None:
    # USB enumeration cannot run here: the lowest seam, the port lister, is handed fake ports.
    profile = PROFILES["nonin-oem-iii-df7"]
    ports = [
        SimpleNamespace(device="/dev/ttyUSB1", vid=0x10C4, pid=0xEA60),
        SimpleNamespace(device="/dev/ttyUSB0", vid=0x0403, pid=0x6001),
    ]
    assert find_port(profile, by_id_dir=tmp_path, list_ports_fn=lambda: ports) == "/dev/ttyUSB0"
    with pytest.raises(SerialLinkError) as raised:
        find_port(profile, by_id_dir=tmp_path, list_ports_fn=lambda: ports[:1])
    assert str(raised.value) == (
        f"no port found for nonin-oem-iii-df7: looked for {tmp_path}/usb-FTDI_*; USB 0403:6001"
    )


def test_scan_ports_names_the_matching_profiles_by_by_id_glob_and_usb_id(
    by_id_dir: Path, pty_pair: tuple[int, str]
) -> None:
    # A by-id name on a real pty, and a USB port without one (its vid:pid from the lister:
    # USB enumeration cannot run here, so the lowest seam is handed the port's ids).
    _master, slave = pty_pair
    (by_id_dir / "usb-Acme_Nonin_Xpod_0001-if00-port0").symlink_to(slave)
    (by_id_dir / "usb-FTDI_gone-if00-port0").symlink_to(by_id_dir / "unplugged")  # dangling
    usb = SimpleNamespace(device="/dev/ttyUSB7", vid=0x067B, pid=0x2303, description="PL2303")
    seen = scan_ports(PROFILES.values(), by_id_dir=by_id_dir, list_ports_fn=lambda: [usb])
    assert seen == [
        PortSeen(
            path=str(by_id_dir / "usb-Acme_Nonin_Xpod_0001-if00-port0"),
            device=str(Path(slave).resolve()),
            profiles=(
                "nonin-xpod-3012lp",
                "detecto-758c",
                "ge-dinamap-pro",
                "healthometer-pro-plus",
                "mettler-toledo-mt-sics",
                "sma-scale",
            ),
        ),
        PortSeen(
            path="/dev/ttyUSB7",
            device="/dev/ttyUSB7",
            usb="067b:2303",
            description="PL2303",
            profiles=(
                "detecto-758c",
                "ge-dinamap-pro",
                "healthometer-pro-plus",
                "sma-scale",
            ),
        ),
    ]


def test_dinamap_polls_each_parameter_in_turn_and_reads_spo2_and_temperature(
    serial_simulator: SimulatorFactory, start_link: Callable[..., SerialLink], collector: Collector
) -> None:
    # The monitor's commands (tnez/TK-BP; the Carescape V100 program GeV100SerialConn.cs) go
    # out one at a time, each once per poll interval, never all in one write.
    profile = PROFILES["ge-dinamap-pro"]
    assert profile.serial is not None and profile.serial.poll is not None
    simulator = serial_simulator(profile, scenario="steady")
    link = start_link(profile, collector)
    collector.wait(lambda: link.state == LinkState.CONNECTED)
    link.send_command("start")
    collector.wait(
        lambda: (
            bool(collector.readings(Kind.BLOOD_PRESSURE))
            and bool(collector.readings(Kind.TEMPERATURE))
            and any(r.spo2_percent for r in collector.readings(Kind.PULSE_OXIMETRY))  # type: ignore[union-attr]
        ),
        timeout=15,
    )
    received = bytes(simulator.received)
    polls = received.replace(b" NC0!E\r", b"").replace(b" RC!8\r", b"")
    assert polls.startswith(b" NA!2\r RA!6\r OA!3\r TC!:\r NA!2\r")  # in turn
    assert b" NC0!E\r" in received and b" RC!8\r" in received  # start; its rate when done
    model = simulator.model
    [temperature] = collector.readings(Kind.TEMPERATURE)
    [sent_temperature] = model.sent_temperature  # type: ignore[attr-defined]
    # The monitor sends tenths of degrees F; the reading is Celsius, (F - 32) x 5 / 9.
    expected_c = round((sent_temperature["tenths_f"] / 10 - 32) * 5 / 9, 2)
    assert temperature.temperature_c == expected_c  # type: ignore[union-attr]
    oximetry = [r for r in collector.readings(Kind.PULSE_OXIMETRY) if r.spo2_percent]  # type: ignore[union-attr]
    keys = ["spo2_percent", "pulse_rate_bpm"]
    assert [values(r, keys) for r in oximetry] == model.sent_spo2[: len(oximetry)]  # type: ignore[attr-defined]
    [bp] = collector.readings(Kind.BLOOD_PRESSURE)
    assert values(bp, list(simulator.sent[0])) == simulator.sent[0]
    assert not [e for e in collector.events if isinstance(e, BadFrame)]
