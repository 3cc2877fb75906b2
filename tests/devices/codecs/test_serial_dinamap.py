"""GE DINAMAP host communications, held to the one public program that drove a DINAMAP PRO 200:
tnez/TK-BP (University of Kentucky, 2010).

* Commands and their checksums: TKBPController.h, "Command Definitions For Dinamap BP":
  `" NC0!E"` start determination, `" ND!5"` cancel, `" NA!2"` read NIBP status, `" RC!8"`
  read heart rate; each sent with CR (TKBPController.m, `prepareStringForDinamap:`). The
  checksum rule is TKDinamapBPController.m's `prepareStringForDinamap:`; the constants are
  what it produces, so our implementation of the rule must give exactly them.
* Reply offsets: TKBPController.h "Ranges For Data Extraction": status (3,1), heart rate
  (4,3) of the RC reply, time counter (6,4), systolic (10,3), diastolic (13,3), MAP (16,3);
  BP_READING_MIN_LENGTH 20.
* Results: TKBPController.m, `NIBPReadingIsFinished` (the time counter drops, or status > 2)
  and `NIBPReadingIsValid` (status == 1).

The reply bytes below are laid out by hand at those offsets; TK-BP publishes no capture, so
the values are the test's own, placed where TK-BP reads them.
"""

from __future__ import annotations

import pytest

from station.devices.codecs.base import BadFrame, StreamCodec, StreamEvent
from station.devices.codecs.registry import get_codec
from station.devices.codecs.serial import dinamap
from station.devices.codecs.serial.events import DeviceEvent, DeviceEventCode
from station.models import BloodPressure, Flag

# TKBPController.h, verbatim (without the CR that prepareStringForDinamap: appends).
TK_BP_COMMANDS = {
    b" NC0": b" NC0!E",
    b" ND": b" ND!5",
    b" NA": b" NA!2",
    b" RC": b" RC!8",
}


def decoder() -> dinamap.DinamapDecoder:
    spec = get_codec("serial:dinamap-host")
    assert isinstance(spec, StreamCodec)
    made = spec.new_decoder()
    assert isinstance(made, dinamap.DinamapDecoder)
    return made


def na(status: str, counter: str, systolic: str, diastolic: str, mean: str) -> bytes:
    # offsets 0-2 " NA", 3 status, 4-5 not read by TK-BP, 6-9 counter, 10-12 sys, 13-15 dia,
    # 16-18 MAP; then CR.
    text = f" NA{status}00{counter}{systolic}{diastolic}{mean}".encode("ascii")
    assert len(text) == 19
    return text + b"\r"


def rc(rate: str) -> bytes:
    return f" RC0{rate}".encode("ascii") + b"\r"  # rate at offsets 4-6


def events(decoder: dinamap.DinamapDecoder, *replies: bytes) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for reply in replies:
        out += decoder.feed(reply)
    return out


@pytest.mark.parametrize(("text", "sent"), TK_BP_COMMANDS.items())
def test_commands_carry_the_checksums_tk_bp_sends(text: bytes, sent: bytes) -> None:
    assert dinamap.command(text) == sent + b"\r"


def test_profile_commands_are_tk_bps() -> None:
    from station.devices.profiles import BUNDLED_DIR, load_profiles

    serial = load_profiles([BUNDLED_DIR])["ge-dinamap-pro"].serial
    assert serial is not None and serial.poll is not None
    assert serial.poll.command == b" NA!2\r"
    assert serial.command("start") == b" NC0!E\r"
    assert serial.command("abort") == b" ND!5\r"
    assert serial.event_reply(DeviceEventCode.MEASUREMENT_COMPLETE) == b" RC!8\r"


def test_the_first_status_is_a_baseline_never_a_reading() -> None:
    # The monitor still holds a result from before the station connected: maybe the previous
    # patient's. TK-BP reads a status before starting and takes only a later, newer result.
    got = events(decoder(), na("1", "0042", "132", "084", "100"), rc("071"))
    assert not [e for e in got if isinstance(e, BloodPressure)]


def test_a_new_result_is_taken_when_the_time_counter_drops() -> None:
    d = decoder()
    baseline = events(d, na("1", "0900", "132", "084", "100"), na("2", "0901", "000", "000", "000"))
    assert not [e for e in baseline if isinstance(e, BloodPressure)]
    done = events(d, na("1", "0000", "121", "079", "093"))
    assert [e.code for e in done if isinstance(e, DeviceEvent)] == [
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


def test_the_same_result_polled_again_is_not_taken_twice() -> None:
    d = decoder()
    events(d, na("2", "0500", "000", "000", "000"), na("1", "0000", "121", "079", "093"))
    events(d, rc("068"))
    again = events(d, na("1", "0001", "121", "079", "093"), na("1", "0002", "121", "079", "093"))
    assert again == []


def test_a_failed_determination_is_an_error_not_a_reading() -> None:
    d = decoder()
    got = events(d, na("2", "0300", "000", "000", "000"), na("3", "0000", "000", "000", "000"))
    assert [e.code for e in got if isinstance(e, DeviceEvent)][-1] == DeviceEventCode.DEVICE_ERROR
    assert not [e for e in got if isinstance(e, BloodPressure)]


def test_a_result_whose_pulse_reply_never_comes_keeps_its_pressures() -> None:
    d = decoder()
    events(d, na("2", "0300", "000", "000", "000"), na("1", "0000", "121", "079", "093"))
    [bp] = [
        e for e in events(d, na("1", "0001", "121", "079", "093")) if isinstance(e, BloodPressure)
    ]
    assert (bp.systolic_mmhg, bp.diastolic_mmhg, bp.pulse_rate_bpm) == (121.0, 79.0, None)


def test_a_non_digit_in_a_value_is_reported_not_guessed() -> None:
    d = decoder()
    got = events(d, na("2", "0300", "000", "000", "000"), na("1", "0000", "1?1", "079", "093"))
    [bad] = [e for e in got if isinstance(e, BadFrame)]
    assert "systolic" in bad.problem and "3 digits" in bad.expected
    assert not [e for e in got if isinstance(e, BloodPressure)]


def test_a_short_status_reply_is_damage() -> None:
    [bad] = decoder().feed(b" NA1000000121\r")
    assert isinstance(bad, BadFrame) and "13 characters" in bad.problem


def test_implausible_values_are_flagged() -> None:
    d = decoder()
    events(d, na("2", "0300", "000", "000", "000"), na("1", "0000", "400", "079", "093"))
    [bp] = events(d, rc("068"))
    assert isinstance(bp, BloodPressure) and Flag.IMPLAUSIBLE in bp.flags


def test_noise_before_a_reply_is_reported_and_the_reply_kept() -> None:
    d = decoder()
    d.feed(na("2", "0300", "000", "000", "000"))
    got = d.feed(b"\x00\xff zz" + na("1", "0000", "121", "079", "093") + rc("068"))
    assert any(isinstance(e, BadFrame) for e in got)
    [bp] = [e for e in got if isinstance(e, BloodPressure)]
    assert bp.systolic_mmhg == 121.0


def test_byte_by_byte_is_the_same_as_whole() -> None:
    data = (
        na("2", "0300", "000", "000", "000")
        + b"\x13noise"
        + na("1", "0000", "121", "079", "093")
        + rc("068")
    )
    whole = decoder().feed(data)
    d = decoder()
    by_byte: list[StreamEvent] = []
    for i in range(len(data)):
        by_byte += d.feed(data[i : i + 1])
    assert by_byte == whole
