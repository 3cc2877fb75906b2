"""GE DINAMAP host communications, held to two public programs that talk to the monitors.

* tnez/TK-BP (University of Kentucky, 2010; a DINAMAP PRO 200):
  - TKBPController.h, "Command Definitions For Dinamap BP": `" NC0!E"` start determination,
    `" ND!5"` cancel, `" NA!2"` read NIBP status, `" RC!8"` read heart rate, each sent with CR
    (TKBPController.m, `prepareStringForDinamap:`);
  - TKDinamapBPController.m, `prepareStringForDinamap:`: the checksum rule;
  - "Ranges For Data Extraction": status (3,1), heart rate (4,3), time counter (6,4),
    systolic (10,3), diastolic (13,3), MAP (16,3);
  - TKBPController.m: a result is new when the time counter drops, valid when status == 1.
* A Carescape V100 EMR integration in C# (namespace Emr.Devices.GeV100, GeV100SerialConn.cs),
  which sends `" OA!3"`, `" RA!6"`, `" TC!:"` and quotes the manual's reply definitions:
  `uNAabcddddeeefffggg` [HC_009], `uOAabbbcdd` [HC_020], `uRAabbb` [HC_023],
  `uTCabcdddddeeeef` [HC_028] (status codes, seconds since the last determination, the
  temperature in tenths of degrees F, the counter character that moves on at each start).

Replies are laid out by hand from those definitions; neither program publishes a capture, so
the values are the test's own, placed where the definitions put them.
"""

from __future__ import annotations

import pytest

from station.devices.codecs.base import BadFrame, StreamCodec, StreamEvent
from station.devices.codecs.registry import get_codec
from station.devices.codecs.serial import dinamap
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.models import BloodPressure, Flag, PulseOximetry, Temperature

# The programs' command strings, verbatim, without the CR that goes after each.
PUBLISHED_COMMANDS = {
    b" NC0": b" NC0!E",  # TK-BP
    b" ND": b" ND!5",  # TK-BP
    b" NA": b" NA!2",  # TK-BP and the V100 program
    b" RC": b" RC!8",  # TK-BP
    b" OA": b" OA!3",  # the V100 program
    b" RA": b" RA!6",  # the V100 program
    b" TC": b" TC!:",  # the V100 program
}


def decoder() -> dinamap.DinamapDecoder:
    spec = get_codec("serial:dinamap-host")
    assert isinstance(spec, StreamCodec)
    made = spec.new_decoder()
    assert isinstance(made, dinamap.DinamapDecoder)
    return made


def na(status: str, seconds: str, systolic: str, diastolic: str, mean: str) -> bytes:
    # u N A | a status | b adult (1) | c normal (0) | dddd | eee | fff | ggg
    text = f" NA{status}10{seconds}{systolic}{diastolic}{mean}".encode("ascii")
    assert len(text) == 19
    return text + b"\r"


def rc(rate: str) -> bytes:
    return f" RC0{rate}".encode("ascii") + b"\r"  # TK-BP reads the rate at 4-6


def ra(source: str, rate: str) -> bytes:
    return f" RA{source}{rate}".encode("ascii") + b"\r"  # a source, bbb rate


def oa(status: str, spo2: str) -> bytes:
    return f" OA{status}{spo2}708".encode("ascii") + b"\r"  # a, bbb, c strength, dd averaging


def tc(status: str, counter: str, seconds: str, tenths_f: str) -> bytes:
    # a status | b mode (0 predictive) | c counter | ddddd | eeee tenths °F | f display (0: F)
    text = f" TC{status}0{counter}{seconds}{tenths_f}0".encode("ascii")
    assert len(text) == 16
    return text + b"\r"


def events(d: dinamap.DinamapDecoder, *replies: bytes) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for reply in replies:
        out += d.feed(reply)
    return out


def of(kind: type, got: list[StreamEvent]) -> list[StreamEvent]:
    return [e for e in got if isinstance(e, kind)]


@pytest.mark.parametrize(("text", "sent"), PUBLISHED_COMMANDS.items())
def test_commands_carry_the_checksums_the_programs_send(text: bytes, sent: bytes) -> None:
    assert dinamap.command(text) == sent + b"\r"


def test_profile_commands_are_the_published_ones() -> None:
    from station.devices.profiles import BUNDLED_DIR, load_profiles

    serial = load_profiles([BUNDLED_DIR])["ge-dinamap-pro"].serial
    assert serial is not None and serial.poll is not None
    assert serial.poll.cycle == [b" NA!2\r", b" RA!6\r", b" OA!3\r", b" TC!:\r"]
    assert serial.command("start") == b" NC0!E\r"
    assert serial.command("abort") == b" ND!5\r"
    assert serial.event_reply(DeviceEventCode.MEASUREMENT_COMPLETE) == b" RC!8\r"


# -- NIBP ----------------------------------------------------------------------------------------


def test_the_first_nibp_status_is_a_baseline_never_a_reading() -> None:
    # The monitor still holds a result from before the station connected: maybe the previous
    # patient's. TK-BP reads a status before starting and takes only a later, newer result.
    got = events(decoder(), na("1", "0042", "132", "084", "100"), rc("071"))
    assert not of(BloodPressure, got)


def test_a_new_nibp_result_is_taken_when_the_seconds_since_the_last_drop() -> None:
    d = decoder()
    baseline = events(d, na("1", "0900", "132", "084", "100"), na("0", "0901", "132", "084", "100"))
    assert not of(BloodPressure, baseline)  # "0" busy: the determination runs
    done = events(d, na("1", "0000", "121", "079", "093"))
    assert [e.code for e in of(DeviceEvent, done)] == [  # type: ignore[attr-defined]
        DeviceEventCode.MEASUREMENT_COMPLETE
    ]  # the link answers with " RC!8" (the profile's on_event)
    [bp] = events(d, rc("068"))
    assert isinstance(bp, BloodPressure)
    assert (bp.systolic_mmhg, bp.diastolic_mmhg, bp.mean_arterial_mmhg, bp.pulse_rate_bpm) == (
        121.0,
        79.0,
        93.0,
        68.0,
    )
    # Both replies of the determination, byte for byte.
    assert bp.raw_hex == (na("1", "0000", "121", "079", "093") + rc("068")).hex()
    assert not bp.flags


def test_an_nibp_rate_from_ra_with_source_nibp_completes_the_result_too() -> None:
    d = decoder()
    events(d, na("0", "0300", "000", "000", "000"), na("1", "0000", "121", "079", "093"))
    [bp] = of(BloodPressure, events(d, ra("3", "066")))
    assert bp.pulse_rate_bpm == 66.0  # type: ignore[attr-defined]


def test_the_same_result_polled_again_is_not_taken_twice() -> None:
    d = decoder()
    events(d, na("0", "0500", "000", "000", "000"), na("1", "0000", "121", "079", "093"))
    events(d, rc("068"))
    again = events(d, na("1", "0001", "121", "079", "093"), na("1", "0002", "121", "079", "093"))
    assert again == []


@pytest.mark.parametrize(
    ("status", "said"),
    [
        ("3", "determination failed"),  # [HC_009c]
        ("4", "pump-up timeout"),  # [HC_009d]
        ("6", "total time timeout"),  # [HC_009e]
        ("7", "one-pressure timeout"),  # [HC_009f]
        ("8", "overpressure or excess air in the cuff"),  # [HC_009g]
    ],
)
def test_a_failed_determination_is_an_error_not_a_reading(status: str, said: str) -> None:
    d = decoder()
    got = events(d, na("0", "0300", "000", "000", "000"), na(status, "0000", "000", "000", "000"))
    [error] = [e for e in of(DeviceEvent, got) if e.code == DeviceEventCode.DEVICE_ERROR]  # type: ignore[attr-defined]
    assert error.detail == f"NIBP: {said}"  # type: ignore[attr-defined]
    assert not of(BloodPressure, got)


def test_a_result_whose_rate_reply_never_comes_keeps_its_pressures() -> None:
    d = decoder()
    events(d, na("0", "0300", "000", "000", "000"), na("1", "0000", "121", "079", "093"))
    [bp] = of(BloodPressure, events(d, na("1", "0001", "121", "079", "093")))
    values = (bp.systolic_mmhg, bp.diastolic_mmhg, bp.pulse_rate_bpm)  # type: ignore[attr-defined]
    assert values == (121.0, 79.0, None)


def test_a_non_digit_in_a_value_is_reported_not_guessed() -> None:
    d = decoder()
    got = events(d, na("0", "0300", "000", "000", "000"), na("1", "0000", "1?1", "079", "093"))
    [bad] = of(BadFrame, got)
    assert "systolic" in bad.problem and "3 digit" in bad.problem  # type: ignore[attr-defined]
    assert not of(BloodPressure, got)


def test_a_short_status_reply_is_damage() -> None:
    [bad] = decoder().feed(b" NA1000000121\r")
    assert isinstance(bad, BadFrame) and "13 characters" in bad.problem


def test_implausible_values_are_flagged() -> None:
    d = decoder()
    events(d, na("0", "0300", "000", "000", "000"), na("1", "0000", "400", "079", "093"))
    [bp] = events(d, rc("068"))
    assert isinstance(bp, BloodPressure) and Flag.IMPLAUSIBLE in bp.flags


# -- SpO2 and rate -------------------------------------------------------------------------------


def test_spo2_comes_with_the_oximeters_rate_polled_just_before() -> None:
    d = decoder()
    got = events(d, ra("2", "074"), oa("1", "097"))  # [HC_023a] source 2: pulse oximeter
    [ox] = of(PulseOximetry, got)
    assert (ox.spo2_percent, ox.pulse_rate_bpm) == (97.0, 74.0)  # type: ignore[attr-defined]
    assert ox.raw_hex == (ra("2", "074") + oa("1", "097")).hex()


def test_spo2_without_an_oximeter_rate_has_no_pulse() -> None:
    d = decoder()
    [ox] = of(PulseOximetry, events(d, ra("3", "070"), oa("1", "096")))
    assert (ox.spo2_percent, ox.pulse_rate_bpm) == (96.0, None)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "flag"),
    [("3", Flag.SENSOR_UNCONNECTED_TO_USER), ("6", Flag.SENSOR_DISCONNECTED)],  # [HC_020c/d]
)
def test_spo2_no_data_or_unplugged_is_a_sensor_off_reading_without_values(
    status: str, flag: Flag
) -> None:
    [ox] = of(PulseOximetry, decoder().feed(oa(status, "000")))
    assert ox.spo2_percent is None and flag in ox.flags  # type: ignore[attr-defined]


def test_spo2_standby_gives_no_reading() -> None:
    got = decoder().feed(oa("0", "000") + oa("0", "000"))  # [HC_020a]
    assert not of(PulseOximetry, got)
    assert len(of(DeviceEvent, got)) == 1  # said once, not every poll


# -- temperature ---------------------------------------------------------------------------------


def test_a_new_temperature_is_taken_once_in_celsius_from_tenths_of_degrees_f() -> None:
    d = decoder()
    first = events(d, tc("0", "A", "00420", "0991"))  # the last patient's, 420 s ago
    assert not of(Temperature, first)
    running = events(d, tc("1", "B", "00421", "0000"))  # [HC_028b] started: counter moved on
    assert not of(Temperature, running)
    [temp] = of(Temperature, events(d, tc("0", "B", "00002", "0986")))
    # 98.6 °F is 37.0 °C ((98.6 - 32) x 5 / 9).
    assert temp.temperature_c == 37.0  # type: ignore[attr-defined]
    assert temp.unit_as_sent == "[degF]"  # type: ignore[attr-defined]
    assert events(d, tc("0", "B", "00003", "0986")) == []  # polled again: not taken twice


def test_no_temperature_available_gives_no_reading() -> None:
    d = decoder()
    events(d, tc("0", "A", "99999", "0000"))
    assert not of(Temperature, events(d, tc("0", "B", "99999", "0000")))  # [HC_028i]


@pytest.mark.parametrize(
    ("status", "said"),
    [("2", "determination timeout"), ("4", "determination aborted, probe unplugged or bad probe")],
)
def test_a_failed_temperature_is_an_error_said_once(status: str, said: str) -> None:
    d = decoder()
    events(d, tc("0", "A", "00420", "0991"))
    got = events(d, tc(status, "B", "00000", "0000"), tc(status, "B", "00001", "0000"))
    [error] = of(DeviceEvent, got)
    assert error.detail == f"temperature: {said}"  # type: ignore[attr-defined]
    assert not of(Temperature, got)


# -- framing -------------------------------------------------------------------------------------


def test_noise_before_a_reply_is_reported_and_the_reply_kept() -> None:
    d = decoder()
    d.feed(na("0", "0300", "000", "000", "000"))
    got = d.feed(b"\x00\xff zz" + na("1", "0000", "121", "079", "093") + rc("068"))
    assert of(BadFrame, got)
    [bp] = of(BloodPressure, got)
    assert bp.systolic_mmhg == 121.0  # type: ignore[attr-defined]


def test_byte_by_byte_is_the_same_as_whole() -> None:
    data = (
        na("0", "0300", "000", "000", "000")
        + tc("0", "A", "00420", "0991")
        + b"\x13noise"
        + na("1", "0000", "121", "079", "093")
        + rc("068")
        + ra("2", "074")
        + oa("1", "097")
        + tc("0", "B", "00002", "0986")
    )
    whole = decoder().feed(data)
    d = decoder()
    by_byte: list[StreamEvent] = []
    for i in range(len(data)):
        by_byte += d.feed(data[i : i + 1])
    assert by_byte == whole
    assert len(of(BloodPressure, whole)) == len(of(PulseOximetry, whole)) == 1
    assert len(of(Temperature, whole)) == 1
