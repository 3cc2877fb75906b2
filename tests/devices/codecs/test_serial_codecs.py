"""Serial codecs against frames written out by hand from the protocol documents."""

from __future__ import annotations

from datetime import datetime

from station.devices.codecs.serial.masimo import MasimoAsciiDecoder
from station.devices.codecs.serial.mt_sics import MtSicsDecoder
from station.devices.codecs.serial.sma import SmaDecoder
from station.devices.codecs.serial.suntech import (
    GET_BP_DATA,
    GET_CUFF_PRESSURE,
    START_ADULT_BP,
    SuntechDecoder,
)
from station.models import BloodPressure, BodyWeight, CuffPressure, Flag, PulseOximetry
from station.units import Unit

MASIMO = (
    b"02/22/16 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% "
    b"SPMET=--.-% DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800\r\n"
)


def test_masimo_captured_record() -> None:
    assert MasimoAsciiDecoder().feed(MASIMO) == [
        PulseOximetry(
            spo2_percent=98.0,
            pulse_rate_bpm=97.0,
            perfusion_index_percent=3.6,
            measured_at=datetime(2016, 2, 22, 22, 47, 45),
            unit_as_sent=Unit.PERCENT,
            codec="serial:masimo-ascii",
            codec_version="2",
            raw_hex=MASIMO.hex(),
        )
    ]


def test_masimo_dashes_are_null_and_exception_bits_are_flags() -> None:
    line = MASIMO.replace(b"SPO2=098%", b"SPO2=---%").replace(b"BPM=097", b"BPM=---")
    line = line.replace(b"PI=03.60%", b"PI=--.--%").replace(b"EXC=000800", b"EXC=000021")
    [reading] = MasimoAsciiDecoder().feed(line)
    assert isinstance(reading, PulseOximetry)
    assert (reading.spo2_percent, reading.pulse_rate_bpm, reading.perfusion_index_percent) == (
        None,
        None,
        None,
    )
    assert reading.flags == (Flag.SENSOR_DISCONNECTED, Flag.SENSOR_UNCONNECTED_TO_USER)


def test_sma_reference_example_5_025_lb_gross_stable() -> None:
    frame = b"\n 1G       5.025lb \r"
    assert frame[:5] == bytes.fromhex("0a20314720")
    assert SmaDecoder().feed(frame) == [
        BodyWeight(
            weight_kg=5.025 * 0.45359237,
            unit_as_sent=Unit.LB,
            codec="serial:sma",
            codec_version="2",
            raw_hex=frame.hex(),
        )
    ]


def test_sma_motion_and_over_range() -> None:
    events = SmaDecoder().feed(b"\n 1GM       72.4kg \r\nO1G  ----------kg \r")
    assert [(e.weight_kg, e.flags) for e in events] == [  # type: ignore[union-attr]
        (72.4, (Flag.IN_MOTION,)),
        (None, (Flag.OVER_RANGE,)),
    ]


def test_mt_sics_stable_dynamic_and_overload() -> None:
    events = MtSicsDecoder().feed(b"S S      81.35 kg\r\nS D      81.30 kg\r\nS +\r\n")
    assert events == [
        BodyWeight(
            weight_kg=81.35,
            unit_as_sent=Unit.KG,
            codec="serial:mt-sics",
            codec_version="1",
            raw_hex=b"S S      81.35 kg\r\n".hex(),
        ),
        BodyWeight(
            weight_kg=81.3,
            unit_as_sent=Unit.KG,
            flags=(Flag.IN_MOTION,),
            codec="serial:mt-sics",
            codec_version="1",
            raw_hex=b"S D      81.30 kg\r\n".hex(),
        ),
        BodyWeight(
            weight_kg=None,
            unit_as_sent=Unit.KG,
            flags=(Flag.OVER_RANGE,),
            codec="serial:mt-sics",
            codec_version="1",
            raw_hex=b"S +\r\n".hex(),
        ),
    ]


def test_suntech_host_commands_match_the_documented_bytes() -> None:
    assert bytes.fromhex("3A20A6") == START_ADULT_BP
    assert bytes.fromhex("3A7903004A") == GET_BP_DATA
    assert bytes.fromhex("3A79050048") == GET_CUFF_PRESSURE


def test_suntech_bp_data_and_cuff_pressure() -> None:
    bp = bytes.fromhex("3e18 7800 5000 00 00 0000000000000000 4800 5d00 00 0000")
    bp += bytes([(0x100 - sum(bp)) & 0xFF])
    cuff = bytes.fromhex("3e05 9800")
    cuff += bytes([(0x100 - sum(cuff)) & 0xFF])
    assert SuntechDecoder().feed(cuff + bp) == [
        CuffPressure(
            cuff_pressure_mmhg=152.0,
            unit_as_sent=Unit.MMHG,
            codec="serial:suntech-advantage",
            codec_version="1",
            raw_hex=cuff.hex(),
        ),
        BloodPressure(
            systolic_mmhg=120.0,
            diastolic_mmhg=80.0,
            mean_arterial_mmhg=93.0,
            pulse_rate_bpm=72.0,
            unit_as_sent=Unit.MMHG,
            codec="serial:suntech-advantage",
            codec_version="1",
            raw_hex=bp.hex(),
        ),
    ]


def test_station_decode_reads_a_raw_stream_on_stdin_and_reports_bad_frames() -> None:
    import json
    import subprocess
    import sys
    from pathlib import Path

    case = Path(__file__).resolve().parents[2] / "captures" / "suntech-advantage"
    data = bytes.fromhex(
        "".join(
            line.split("#")[0]
            for line in (case / "corrupted_checksum.hex").read_text().splitlines()
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "station", "decode", "serial:suntech-advantage", "-"],
        input=data,
        capture_output=True,
        timeout=30,
        check=False,
    )
    expected = json.loads((case / "corrupted_checksum.json").read_text())
    readings = [e for e in expected if "kind" in e]
    assert result.returncode == 0
    assert [json.loads(line) for line in result.stdout.splitlines()] == readings
    assert result.stderr.decode() == (
        "station: serial:suntech-advantage: checksum 37 does not match (expected 27 (0x100 "
        "minus the sum of the preceding bytes)); frame 3e 05 96 00 37\n"
    )
    garbage = subprocess.run(
        [sys.executable, "-m", "station", "decode", "serial:nonin-2", "-"],
        input=b"\x00" * 10,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert garbage.returncode == 2
    assert garbage.stderr.decode().endswith(
        "station: serial:nonin-2: nothing decodable found in the input\n"
    )
