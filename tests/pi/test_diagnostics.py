"""The diagnostics bundle: exact contents, secrets removed, failing providers recorded — and a full
rooming of a fake patient whose data appears in no log line and nowhere in the bundle."""

from __future__ import annotations

import argparse
import io
import json
import logging
import tarfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from station.cli import diagnostics as diagnostics_cli
from station.config import Settings, parse_settings
from station.diagnostics import (
    DeviceState,
    HealthSnapshot,
    OutboxDepth,
    build_bundle,
    write_health_snapshot,
)
from station.errors import ConfigError
from station.logs import RecentErrors, Redacted, Redactor, setup_logging
from station.models import BloodPressure
from station.rooming import Rooming
from station.rooming_data import RoomingEvent, ScheduledPatient
from station.rooming_record import record_to_submission
from station.units import Unit

CREATED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
SETTINGS = parse_settings(
    {
        "station": {"site": "clinic-test", "station_id": "exam-9"},
        "broker": {
            "host": "broker.test",
            "username": "exam-9",
            "password_file": "/run/credentials/station.service/station_broker.password",
            "cert_file": "/etc/station/tls/station.crt",
            "key_file": "/run/credentials/station.service/station_tls.key",
        },
        "devices": [{"id": "cuff", "profile": "test-cuff", "address": "AA:BB:CC:DD:EE:01"}],
    },
    "test",
)
PATIENT = ScheduledPatient(
    appointment_id="APT-DIAG-0001",
    mrn="TEST100077",
    family_name="ZZTEST",
    given_name="Quebec",
    birth_date=date(1958, 7, 23),
    start_time="09:00",
    reason_for_visit="dizzy spells after lunch",
)
COMPLAINT = "numbness in the left hand since Sunday"
# Everything that would identify the fake patient, in the spellings a leak would take.
PATIENT_STRINGS = ("ZZTEST", "Quebec", "TEST100077", "1958-07-23", "7/23/1958", "07/23/1958",
                   "19580723", "dizzy spells", "numbness in the left hand")  # fmt: skip


def unpack(data: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {
            m.name.removeprefix("station-diagnostics/"): tar.extractfile(m).read().decode()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


def bundle(settings: Settings | ConfigError, **providers: object) -> tuple[dict[str, str], object]:
    out = io.BytesIO()
    defaults: dict[str, object] = {
        "devices": lambda: [],
        "outbox": lambda: None,
        "recent_errors": lambda: [],
    }
    defaults.update(providers)
    summary = build_bundle(
        out, created_at=CREATED, versions={"station": "0.1.0"}, settings=settings,
        redactor=Redactor(), **defaults,  # type: ignore[arg-type]
    )  # fmt: skip
    return unpack(out.getvalue()), summary


def test_bundle_contents_with_secrets_removed() -> None:
    states = [DeviceState(id="cuff", profile="test-cuff", transport="ble", state="connected",
                          last_frame_age_s=12.5)]  # fmt: skip
    files, summary = bundle(
        SETTINGS,
        devices=lambda: states,
        outbox=lambda: OutboxDepth(pending=4, oldest_pending_age_s=310.0),
        recent_errors=lambda: ["2026-03-02T09:00:00Z p4 broker refused: not authorised"],
    )
    assert list(files) == ["manifest.json", "versions.json", "config.json", "devices.json",
                           "outbox.json", "errors.log"]  # fmt: skip
    assert json.loads(files["manifest.json"])["problems"] == []
    assert json.loads(files["versions.json"]) == {"station": "0.1.0"}
    config = json.loads(files["config.json"])
    assert config["ok"] is True
    assert config["settings"]["broker"] == {
        "host": "broker.test", "port": 8883, "require_tls": True, "ca_file": None,
        "cert_file": "/etc/station/tls/station.crt", "key_file": "[removed]",
        "username": "[removed]", "password_file": "[removed]", "keepalive_s": 30,
        "protocol": "auto", "ack_resend_after_s": 120.0, "ack_overdue_after_s": 900.0,
    }  # fmt: skip
    assert config["settings"]["storage"]["outbox_key_file"] is None
    assert json.loads(files["devices.json"]) == [
        {"id": "cuff", "profile": "test-cuff", "transport": "ble", "state": "connected",
         "detail": "", "last_frame_age_s": 12.5, "frames_rejected": 0,
         "battery_percent": None, "firmware_revision": None}
    ]  # fmt: skip
    assert json.loads(files["outbox.json"]) == {
        "pending": 4, "oldest_pending_age_s": 310.0, "awaiting_ack": 0, "awaiting_ack_overdue": 0,
        "rejected": 0, "quarantined": 0, "disk_full": False, "broker_problem": ""}
    # The journal's own timestamp is kept; only the message is redacted.
    assert files["errors.log"] == "2026-03-02T09:00:00Z p4 broker refused: not authorised\n"
    assert summary.model_dump() == {  # type: ignore[attr-defined]
        "path": "<stream>", "members": list(files), "devices": 1, "recent_errors": 1,
        "outbox_pending": 4, "config_ok": True,
    }  # fmt: skip


def test_a_failing_provider_and_a_bad_config_are_findings_not_crashes() -> None:
    def broken() -> list[DeviceState]:
        raise RuntimeError("link table locked while rooming MRN TEST100001")

    bad = ConfigError("/etc/station/station.toml", ["station.site: missing: this key is required"])
    files, _ = bundle(bad, devices=broken)
    assert json.loads(files["manifest.json"])["problems"] == [
        "device states: RuntimeError: link table locked while rooming MRN [redacted:mrn]"
    ]
    assert json.loads(files["config.json"]) == {
        "ok": False,
        "path": "/etc/station/station.toml",
        "problems": ["station.site: missing: this key is required"],
    }
    assert json.loads(files["devices.json"]) == []


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    diagnostics_cli.register(parser.add_subparsers())
    args = parser.parse_args(["diagnostics", *argv])
    code: int = args.func(args)
    return code


def test_cli_reads_the_health_snapshot_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "station.toml"
    config.write_text(
        f'[station]\nsite = "s"\nstation_id = "exam-1"\n[storage]\nstate_dir = "{tmp_path}"\n'
    )
    write_health_snapshot(
        tmp_path / "health.json",
        HealthSnapshot(taken_at=CREATED, outbox=OutboxDepth(pending=2),
                       devices=[DeviceState(id="ox", profile="p", transport="serial",
                                            state="no data", detail="port closed")]),
    )  # fmt: skip
    out = tmp_path / "bundle.tar.gz"
    assert run_cli("--config", str(config), "--no-journal", "--output", str(out)) == 0
    assert capsys.readouterr().err == (
        f"wrote {out}: config OK, 1 device(s), 0 recent error line(s), outbox 2 pending\n"
    )
    files = unpack(out.read_bytes())
    assert json.loads(files["devices.json"])[0]["detail"] == "port closed"
    assert run_cli("--config", str(config), "--no-journal", "--output", str(out)) == 2
    assert capsys.readouterr().err == f"station: {out} exists; give another --output\n"


def test_a_full_rooming_of_a_fake_patient_leaves_no_trace_in_logs_or_bundle(tmp_path: Path) -> None:
    stream = io.StringIO()
    redactor = Redactor()
    recent = RecentErrors()
    undo = setup_logging(redactor, level=logging.DEBUG, stream=stream, journal=True, recent=recent)
    log = logging.getLogger("station.rooming.test")
    try:
        # What the app does when the schedule arrives: every patient on it is patient data.
        redactor.remember(
            Redacted.NAME, PATIENT.display_name, f"{PATIENT.given_name} {PATIENT.family_name}"
        )
        redactor.remember(Redacted.MRN, PATIENT.mrn)
        redactor.remember(Redacted.DOB, PATIENT.birth_date)
        redactor.remember(Redacted.TEXT, PATIENT.reason_for_visit)

        now = [datetime(2026, 3, 2, 9, 0)]
        rooming = Rooming(
            clock=lambda: now[0], credentials={"BADGE-9": "ma-9"}, bound_devices=("cuff",)
        )
        rooming.set_schedule((PATIENT,))
        rooming.sign_in("BADGE-9")
        patient = rooming.pick_patient(PATIENT.appointment_id)
        # The mistakes a developer makes: the whole patient, the display name, an f-string.
        log.info("picked %r", patient)
        log.debug(f"confirming {patient.display_name} born {patient.birth_date}")  # noqa: G004
        rooming.confirm_identifiers()
        now[0] += timedelta(minutes=2)
        reading = BloodPressure(
            systolic_mmhg=128.0, diastolic_mmhg=82.0, pulse_rate_bpm=70.0, unit_as_sent=Unit.MMHG,
            codec="gatt:blood_pressure", codec_version="1", measured_at=now[0], raw_hex="1e8000",
        )  # fmt: skip
        log.info("reading for %s: %s", patient.mrn, reading)
        rooming.offer("cuff", reading)
        rooming.go(RoomingEvent.TO_COMPLAINT)
        redactor.remember(Redacted.TEXT, COMPLAINT)  # typed text is registered as it is entered
        rooming.set_complaint(free_text=COMPLAINT)
        log.warning("complaint saved: %s", rooming.complaint)
        rooming.go(RoomingEvent.TO_REVIEW)
        record = rooming.send()
        submission = record_to_submission(record, patient)
        log.info("submitting %s", submission)
        try:
            raise ValueError(
                f"broker rejected vitals for {patient.family_name}, {patient.given_name}"
            )
        except ValueError:
            log.exception("publish failed")
    finally:
        undo()

    lines = stream.getvalue().splitlines()
    assert len(lines) >= 8
    assert lines[0].startswith("<6>station.rooming.test: picked ScheduledPatient(")
    out = io.BytesIO()
    build_bundle(
        out, created_at=CREATED, versions={"station": "0.1.0"}, settings=SETTINGS,
        devices=lambda: [DeviceState(id="cuff", profile="test-cuff", transport="ble",
                                     state="connected", detail=f"last reading for {PATIENT.mrn}")],
        outbox=lambda: OutboxDepth(pending=1), recent_errors=lambda: list(recent.lines),
        redactor=redactor,
    )  # fmt: skip
    files = unpack(out.getvalue())
    assert files["errors.log"].count("publish failed") == 1
    haystack = {"log": "\n".join(lines), **files}
    found = {
        (where, needle)
        for where, text in haystack.items()
        for needle in PATIENT_STRINGS
        if needle.casefold() in text.casefold()
    }
    assert found == set()
