"""Payloads match the published JSON Schemas; inbound messages are checked; schemas not stale."""

from __future__ import annotations

import json
import uuid
from datetime import date

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
    Appointment,
    Channel,
    ConfigPayload,
    LookupKind,
    LookupResponse,
    Presence,
    SchedulePayload,
    StationConfigPush,
    to_json,
)
from station.sync.inbound import InboundError, channel_of, parse
from tests.sync.samples import AT, MESSAGE_ID, PATIENT, submission

SITE, STATION = "clinic-north", "exam-3"
COMMON = {"message_id": MESSAGE_ID, "site": SITE, "station_id": STATION, "sent_at": AT}


def schema(name: str) -> dict[str, object]:
    return json.loads((schemas.SCHEMA_DIR / name).read_text())


def check(name: str, body: bytes) -> None:
    jsonschema.Draft202012Validator(schema(name)).validate(json.loads(body))


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


def test_other_outbound_payloads_match_their_schemas() -> None:
    check("status.schema.json", to_json(payloads.status(Presence.ONLINE, outbox_depth=3,
                                                        oldest_undelivered_age_s=12.5,
                                                        **COMMON)))
    check("status.schema.json", to_json(payloads.status(Presence.OFFLINE, **COMMON)))
    check("device-status.schema.json", to_json(payloads.device_status(
        "cuff", Presence.ONLINE, profile="and-ua-651ble", **COMMON)))
    check("checkin.schema.json", to_json(payloads.checkin(
        appointment_id="APT-0001", patient=PATIENT, contact_details_confirmed=True,
        contact_update_requested=False, reason_for_visit="follow-up", checked_in_at=AT,
        **COMMON)))
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


