"""Payloads match the published JSON Schemas; inbound messages are checked; schemas not stale."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import jsonschema
import pytest
from pydantic import ValidationError

from station import schemas
from station.submission import (
    CriticalAcknowledgement,
    PatientIdentifiers,
    Submission,
)
from station.sync import payloads
from station.sync.contract import (
    AckPayload,
    AlertPayload,
    Appointment,
    Channel,
    ConfigPayload,
    ContactUpdate,
    LookupKind,
    LookupResponse,
    Presence,
    SchedulePayload,
    StationConfigPush,
    to_json,
)
from station.sync.inbound import InboundError, channel_of, parse
from station.sync.outbox import OutboxStats
from tests.sync.samples import AT, MESSAGE_ID, PATIENT, submission

SITE, STATION = "clinic-north", "exam-3"
COMMON = {"message_id": MESSAGE_ID, "site": SITE, "station_id": STATION, "sent_at": AT}


def schema(name: str) -> dict[str, object]:
    return json.loads((schemas.SCHEMA_DIR / name).read_text())


# Formats on (RFC 3339 date-time needs rfc3339-validator, installed with the dev extras): a
# schema that says `format: date-time` must hold for every message we send.
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def check(name: str, body: bytes) -> None:
    jsonschema.Draft202012Validator(schema(name), format_checker=FORMATS).validate(
        json.loads(body)
    )


def test_the_format_checker_is_really_checking_date_times() -> None:
    # RFC 3339 §5.6: a date-time needs a time-offset ("Z" or +hh:mm); issue 14 found device
    # clock times sent without one.
    assert "date-time" in FORMATS.checkers
    assert FORMATS.conforms("2026-03-02T09:02:00-06:00", "date-time")
    assert not FORMATS.conforms("2026-03-02T09:02:00", "date-time")


def test_device_clock_times_get_the_sites_offset_and_pass_with_formats_on() -> None:
    from zoneinfo import ZoneInfo

    from station.models import PulseOximetry
    from station.sync.fhir import SiteRecords
    from station.units import Unit
    from tests.sync.samples import item

    spo2 = PulseOximetry(spo2_percent=86.0, pulse_rate_bpm=70.0, unit_as_sent=Unit.PERCENT,
                         codec="serial:masimo", codec_version="1",
                         measured_at=datetime(2026, 3, 2, 9, 2))  # Masimo: local, no zone
    base = submission()
    sub = base.model_copy(update={
        "readings": (*base.readings, item(spo2, "oximeter")),
        "critical_acknowledgements": (CriticalAcknowledgement(
            code="hypoxaemia", kind=spo2.kind, acknowledged_by="MA042", acknowledged_at=AT),),
    })
    records = SiteRecords(zone=ZoneInfo("America/Chicago"))
    body = to_json(payloads.vitals(sub, records=records, **COMMON))
    check("vitals.schema.json", body)
    # 2 March 2026 in Chicago is CST: UTC-6 (US DST begins on the second Sunday of March).
    assert json.loads(body)["readings"][-1]["reading"]["measured_at"] == (
        "2026-03-02T09:02:00-06:00")
    [alert] = payloads.alerts(sub, message_ids=[MESSAGE_ID], site=SITE, station_id=STATION,
                              sent_at=AT, records=records)
    check("alert.schema.json", to_json(alert))
    assert alert.reading.reading.measured_at == datetime(2026, 3, 2, 15, 2, tzinfo=UTC)


def test_checked_in_schemas_match_the_models() -> None:
    assert schemas.stale() == []


def test_vitals_payload_matches_its_schema_and_round_trips() -> None:
    payload = payloads.vitals(submission(systolic=186), **COMMON)
    body = to_json(payload)
    check("vitals.schema.json", body)
    # Compared as dumps: ClinicalFlag.retake is excluded from JSON by the foundation, so it
    # reads back False; everything on the wire round-trips exactly.
    assert type(payload).model_validate_json(body).model_dump() == payload.model_dump()
    assert json.loads(body)["schema"] == "rooming.vitals/1"
    # Every number traces to its bytes: the canonical readings keep raw frame and codec.
    first = json.loads(body)["readings"][0]["reading"]
    assert (first["raw_hex"], first["codec"], first["codec_version"]) == (
        "1e8000520061000000", "ble:2a35", "1")


def test_alerts_one_per_acknowledged_critical_value_match_their_schema() -> None:
    sub = submission(systolic=186)
    alerts = payloads.alerts(sub, message_ids=[MESSAGE_ID], site=SITE, station_id=STATION,
                             sent_at=AT)
    assert payloads.critical_count(sub) == 1
    assert [(a.code, a.severity, a.acknowledged_by) for a in alerts] == [
        ("hypertensive_crisis", "critical", "MA042")]
    check("alert.schema.json", to_json(alerts[0]))


def test_a_critical_point_of_care_result_is_alerted_too_and_matches_the_schema() -> None:
    # design.md: possible-but-alarming values raise an alert message. A fingerstick glucose of
    # 52 mg/dL is below 54 mg/dL, ADA level 2 hypoglycaemia (Standards of Care, section 6).
    from tests.sync.test_lists_fhir import lists_submission

    sub = lists_submission()
    glucose = [p for p in sub.poc_results if p.result.test == "glucose_capillary"]
    assert [p.result.value for p in glucose] == [52.0]
    alerts = payloads.alerts(sub, message_ids=[MESSAGE_ID], site=SITE, station_id=STATION,
                             sent_at=AT)
    assert payloads.critical_count(sub) == 1
    [alert] = alerts
    assert (alert.code, alert.severity, alert.reading) == (
        "hypoglycaemia_level_2", "critical", None)
    assert alert.poc_result == glucose[0]
    assert alert.acknowledged_by == glucose[0].acknowledged_by
    check("alert.schema.json", to_json(alert))
    with pytest.raises(ValidationError, match="exactly one of reading and poc_result"):
        AlertPayload.model_validate(alert.model_dump() | {"poc_result": None})


def test_other_outbound_payloads_match_their_schemas() -> None:
    stats = OutboxStats(depth=3, oldest_enqueued_at=AT - timedelta(seconds=12.5),
                        delivered_awaiting_ack=2, unacknowledged_overdue=1,
                        oldest_unacknowledged_at=AT - timedelta(minutes=20), quarantined=1)
    online = payloads.status(Presence.ONLINE, sequence=8, stats=stats, **COMMON)
    assert (online.outbox_depth, online.oldest_undelivered_age_s, online.awaiting_ack,
            online.awaiting_ack_overdue, online.oldest_awaiting_ack_age_s) == (3, 12.5, 2, 1,
                                                                               1200.0)
    check("status.schema.json", to_json(online))
    check("status.schema.json", to_json(payloads.status(Presence.OFFLINE, sequence=9,
                                                        **COMMON)))
    check("device-status.schema.json", to_json(payloads.device_status(
        "cuff", Presence.ONLINE, profile="and-ua-651ble", **COMMON)))
    check("checkin.schema.json", to_json(payloads.checkin(
        appointment_id="APT-0001", patient=PATIENT, contact_details_confirmed=True,
        contact_update_requested=False, reason_for_visit="follow-up", checked_in_at=AT,
        **COMMON)))
    changed = payloads.checkin(
        appointment_id="APT-0001", patient=PATIENT, contact_details_confirmed=False,
        contact_update_requested=True, reason_for_visit="dolor de garganta", checked_in_at=AT,
        language="es", contact_update=ContactUpdate(phone="555-0100"), **COMMON)
    check("checkin.schema.json", to_json(changed))
    wire = json.loads(to_json(changed))
    assert (wire["language"], wire["contact_update"]) == ("es", {"phone": "555-0100",
                                                                 "email": ""})
    check("help-request.schema.json", to_json(payloads.help_request(
        screen="find", language="es", requested_at=AT, **COMMON)))
    check("device-status.schema.json", to_json(payloads.device_status(
        "cuff", Presence.OFFLINE, profile="", **COMMON)))
    check("lookup-request.schema.json", to_json(payloads.lookup_request(
        "TEST100001", LookupKind.WRISTBAND, reply_to="rooming/v1/clinic-north/exam-3/lookup/"
        "response", correlation_id=uuid.UUID(int=7), **COMMON)))


def test_inbound_payloads_match_their_schemas_and_parse() -> None:
    appointment = Appointment(appointment_id="APT-0001", patient=PATIENT, starts_at=AT,
                              medications_to_review=("lisinopril 10 mg",))
    cases = [
        (Channel.SCHEDULE, "schedule.schema.json",
         SchedulePayload(schedule_date=date(2026, 3, 2), appointments=(appointment,), **COMMON)),
        (Channel.CONFIG, "config.schema.json",
         ConfigPayload(settings=StationConfigPush(), **COMMON)),
        (Channel.ACK, "ack.schema.json", AckPayload(message_id=MESSAGE_ID, acked_at=AT)),
        (Channel.LOOKUP_RESPONSE, "lookup-response.schema.json",
         LookupResponse(correlation_id=MESSAGE_ID, found=True, appointment=appointment)),
    ]
    for channel, name, payload in cases:
        body = to_json(payload)
        check(name, body)
        assert parse(channel, body, site=SITE, station_id=STATION) == payload


def test_a_bad_inbound_message_is_refused_naming_fields_but_not_values() -> None:
    body = json.dumps({"schema": "rooming.ack/1", "message_id": "not-a-uuid",
                       "acked_at": AT.isoformat(), "colour": "ZZTEST"}).encode()
    with pytest.raises(InboundError) as info:
        parse(Channel.ACK, body, site=SITE, station_id=STATION)
    assert info.value.problems == [
        "message_id: Input should be a valid UUID, invalid character: found `n` at 0",
        "colour: unknown key (a typo?); see docs/configuration.md for the keys",
    ]
    assert "ZZTEST" not in str(info.value)


def test_a_schedule_for_another_station_is_refused() -> None:
    other = SchedulePayload(schedule_date=date(2026, 3, 2), appointments=(),
                            **{**COMMON, "station_id": "exam-4"})
    with pytest.raises(InboundError, match="addressed to clinic-north/exam-4, expected "
                                           "clinic-north/exam-3"):
        parse(Channel.SCHEDULE, to_json(other), site=SITE, station_id=STATION)


def test_channel_of_topic() -> None:
    assert channel_of("rooming/v1/clinic-north/exam-3/lookup/response", SITE, STATION) == (
        Channel.LOOKUP_RESPONSE)
    assert channel_of("rooming/v1/clinic-north/exam-4/ack", SITE, STATION) is None
    assert channel_of("rooming/v1/clinic-north/exam-3/vitals", SITE, STATION) is None


def test_a_critical_value_cannot_be_sent_unacknowledged() -> None:
    sub = submission(systolic=186)
    with pytest.raises(ValidationError, match="not acknowledged: blood_pressure:"
                                              "hypertensive_crisis"):
        Submission.model_validate({**sub.model_dump(), "critical_acknowledgements": ()})
    assert sub.critical_acknowledgements == (CriticalAcknowledgement(
        code="hypertensive_crisis", kind=sub.readings[0].reading.kind, acknowledged_by="MA042",
        acknowledged_at=AT),)


def test_patient_identifiers_are_checked() -> None:
    with pytest.raises(ValidationError, match="mrn"):
        PatientIdentifiers(mrn="TEST 1/2", family_name="ZZTEST", given_name="Alpha",
                           birth_date=date(1970, 1, 2))


