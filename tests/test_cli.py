"""The `station` command: help, validate verdicts and exit codes, demo, schemas."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from station import schemas
from station.cli import COMMAND_MODULES, build_parser, main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_subcommand_and_each_has_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    names = sorted(sub.choices)  # type: ignore[arg-type]
    assert len(names) == len(COMMAND_MODULES)
    for name in names:
        assert re.search(rf"^ {{4}}{re.escape(name)}\b", out, re.MULTILINE), name
        code, help_text, _ = run(capsys, name, "--help")
        examples = help_text.partition("\nexamples:\n")[2]
        assert code == 0 and f"station {name}" in examples, name


def test_validate_crisis_is_accepted_and_flagged(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "validate", "blood_pressure", "systolic_mmhg=185",
                         "diastolic_mmhg=95")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"status": "accepted", "reasons": [], "flags": [{
        "code": "hypertensive_crisis", "severity": "critical",
        "message": "systolic 180 or above: hypertensive crisis — retake now and tell the "
                   "clinician"}]}


def test_validate_impossible_is_rejected_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "temperature", "temperature_c=47.5")
    assert code == 1
    assert json.loads(out) == {"status": "rejected", "flags": [], "reasons": [
        "temperature 47.5 °C is not possible: expected 25–45 °C"]}


def test_validate_age_selects_paediatric_limits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "pulse_oximetry", "spo2_percent=98",
                       "pulse_rate_bpm=150", "--age", "4")
    assert code == 0
    assert [f["code"] for f in json.loads(out)["flags"]] == ["tachycardia"]
    code, out, _ = run(capsys, "validate", "pulse_oximetry", "spo2_percent=98",
                       "pulse_rate_bpm=150", "--age", "0.5")
    assert code == 0 and json.loads(out)["flags"] == []


@pytest.mark.parametrize(("argv", "message"), [
    (["validate", "blood_presure", "systolic_mmhg=1"],
     "station: unknown kind 'blood_presure'; expected one of: blood_pressure, pulse_oximetry, "
     "temperature, body_weight, body_height, respiratory_rate, pain_severity, "
     "head_circumference\n"),
    (["validate", "blood_pressure", "sys=120"],
     "station: unknown field 'sys' for blood_pressure; expected one of: systolic_mmhg, "
     "diastolic_mmhg, mean_arterial_mmhg, pulse_rate_bpm\n"),
    (["validate", "blood_pressure", "systolic_mmhg=high"],
     "station: systolic_mmhg='high' is not a number\n"),
    (["validate", "blood_pressure", "systolic_mmhg=nan"],
     "station: systolic_mmhg='nan' is not a finite number\n"),
    (["validate", "blood_pressure", "systolic_mmhg"],
     "station: 'systolic_mmhg' is not FIELD=VALUE (e.g. systolic_mmhg=120)\n"),
    (["validate", "temperature", "temperature_c=37", "site=armpitt"],
     "station: site 'armpitt' is not a temperature site; expected one of: armpit, body, ear, "
     "finger, gi_tract, mouth, rectum, toe, tympanum\n"),
    (["validate", "pulse_oximetry", "spo2_percent=97", "--age", "-3"],
     "station: --age -3 is not an age: expected 0–130 years\n"),
    (["demo", "--patients", "0"], "station: --patients 0 must be at least 1\n"),
    (["decode", "ble:nope", "00"], None),
])
def test_bad_usage_exits_2_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str | None,
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    if message is not None:
        assert err == message
    else:
        assert err.startswith("station: unknown codec 'ble:nope'; known codecs: ")


def test_argparse_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "validate")
    assert code == 2 and "the following arguments are required: KIND, FIELD=VALUE" in err
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and "invalid choice: 'frobnicate'" in err


def test_ten_thousand_characters_of_garbage_are_refused_cleanly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "validate", "blood_pressure", "systolic_mmhg=" + "9" * 10_000)
    # 1e10000 parses as infinity: refused as not finite, with no traceback.
    assert code == 2 and out == ""
    assert err.startswith("station: systolic_mmhg='999") and err.endswith(
        "' is not a finite number\n")


def test_checked_in_schemas_match_the_models() -> None:
    assert schemas.stale() == [], "run `station schemas write` and commit docs/schemas/"


def test_schema_check_fails_when_a_schema_drifts(tmp_path: Path) -> None:
    schemas.write_all(tmp_path)
    assert schemas.stale(tmp_path) == []
    reading = tmp_path / "reading.schema.json"
    reading.write_text(reading.read_text().replace("systolic_mmhg", "systolic"))
    assert schemas.stale(tmp_path) == ["reading.schema.json"]
    assert main(["schemas", "check", "--dir", str(tmp_path)]) == 1


def test_console_entry_point_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "station", "--version"], capture_output=True,
                          text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "station 0.1.0\n")
