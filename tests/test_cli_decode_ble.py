"""`station decode` with the Bluetooth LE codecs: JSON lines, errors on stderr, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from station.cli import main
from station.devices.codecs.gatt import CODECS


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["decode", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_blood_pressure_frame_prints_the_canonical_reading(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines, err = run(capsys, "ble:2a35", "1E 7800 5000 5D00 E907 0B 17 09 1E 05 4800 03 0100")
    assert (code, err) == (0, "")
    assert [json.loads(line) for line in lines] == [
        {
            "kind": "blood_pressure",
            "systolic_mmhg": 120.0,
            "diastolic_mmhg": 80.0,
            "mean_arterial_mmhg": 93.0,
            "pulse_rate_bpm": 72.0,
            "measured_at": "2025-11-23T09:30:05",
            "unit_as_sent": "mm[Hg]",
            "flags": ["body_movement"],
            "user_id": 3,
            "codec": "ble:2a35",
            "codec_version": "1.0",
            "raw_hex": "1e780050005d00e9070b17091e05480003" + "0100",
            "method": "device",
            "mode": "real",
        }
    ]


def test_unavailable_values_print_as_null(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, "ble:2a1c", "00FFFF7F00")
    assert code == 0
    reading = json.loads(lines[0])
    assert (reading["temperature_c"], reading["measured_at"], reading["site"]) == (
        None,
        None,
        None,
    )


def test_continuous_oximetry_prints_one_line_per_pair(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, "ble:2a5f", "03 6100 4800 6000 4A00 6200 4700")
    assert code == 0
    decoded = [json.loads(line) for line in lines]
    assert [(r["spo2_percent"], r["pulse_rate_bpm"], r["flags"]) for r in decoded] == [
        (97.0, 72.0, []),
        (96.0, 74.0, ["fast_response"]),
        (98.0, 71.0, ["slow_response"]),
    ]


def test_feature_codec_prints_its_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, "ble:2a60", "A3 00 4010 800100")
    assert code == 0
    assert json.loads(lines[0]) == {
        "codec": "ble:2a60",
        "codec_version": "1.0",
        "raw_features": 0xA3,
        "measurement_status_supported": True,
        "device_status_supported": True,
        "spot_check_storage_supported": False,
        "spot_check_timestamp_supported": False,
        "fast_response_supported": False,
        "slow_response_supported": True,
        "pai_supported": False,
        "multiple_bonds_supported": True,
        "raw_measurement_status_support": 0x1040,
        "supported_measurement_status": ["early_estimate", "calibration_ongoing"],
        "raw_device_status_support": 0x180,
        "supported_device_status": ["non_pulsatile_signal", "questionable_pulse"],
        "raw_hex": "a3004010800100",
    }


def test_racp_response(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, "ble:2a52", "06 00 01 06")
    assert code == 0
    assert json.loads(lines[0]) == {
        "codec": "ble:2a52",
        "codec_version": "1.1",
        "message": "response_code",
        "request_op_code": 1,
        "response_code": 6,
        "request": "report_records",
        "response": "no_records_found",
        "raw_hex": "06000106",
    }


def test_malformed_frame_one_line_on_stderr_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, err = run(capsys, "ble:2a35", "02 7800 5000 5D00")
    assert (code, lines) == (2, [])
    assert err == (
        "station: ble:2a35: timestamp flag set: need 14 bytes, got 7; frame 02 78 00 50 00 5d 00\n"
    )


def test_reserved_flags_say_what_was_expected(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ble:2a1c", "08 6C01 00FF")
    assert code == 2
    assert err == (
        "station: ble:2a1c: flags 0x08 has reserved bits 0x08 set "
        "(expected only bits of mask 0x07); frame 08 6c 01 00 ff\n"
    )


def test_list_names_every_ble_codec_with_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = run(capsys, "--list")
    assert code == 0
    listed = {line.split()[0]: line.split()[1] for line in lines}
    for name in (
        "ble:2a35",
        "ble:2a36",
        "ble:2a1c",
        "ble:2a1d",
        "ble:2a9d",
        "ble:2a9e",
        "ble:2a5e",
        "ble:2a5f",
        "ble:2a60",
        "ble:nonin-3230",
        "ble:2a49",
    ):
        assert listed[name] == "1.0"
    # RACP and Current Time changed in issue 12 (unsupported op code echo, unknown codes,
    # a wrong day of week no longer refuses the frame).
    assert (listed["ble:2a52"], listed["ble:2a2b"]) == ("1.1", "1.1")
    assert {spec.name for spec in CODECS} <= set(listed)


def test_raw_bytes_on_stdin_through_the_real_command() -> None:
    frame = bytes.fromhex("0A 14 1D 013B 0007 62 0040")
    done = subprocess.run(
        [sys.executable, "-m", "station", "decode", "ble:nonin-3230", "-"],
        input=frame,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    reading = json.loads(done.stdout)
    assert (
        reading["spo2_percent"],
        reading["pulse_rate_bpm"],
        reading["perfusion_index_percent"],
        reading["flags"],
        reading["raw_hex"],
    ) == (98.0, 64.0, 3.15, ["validated"], frame.hex())


def test_malformed_frame_on_stdin_exits_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "station", "decode", "ble:2a9d", "-"],
        input=b"\x02\xa4\x38",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode() == (
        "station: ble:2a9d: timestamp flag set: need 10 bytes, got 3; frame 02 a4 38\n"
    )
