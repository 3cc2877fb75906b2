"""The practice-system contract: every MQTT payload as a frozen pydantic model, and its schema.

Topics live under `rooming/v1/{site}/{station_id}/`. Every payload is a JSON envelope with
`schema` (name/version), `message_id` (UUID, the idempotency key: QoS 1 may deliver twice),
`station_id`, `site` and `sent_at`. `SCHEMAS` is merged by station.schemas into docs/schemas/.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

from station.audit import AuditAction
from station.config import TOPIC_LEVEL, BoundDevice, DisplaySection, GuardSection
from station.submission import (
    IDENTIFIER,
    CriticalAcknowledgement,
    Identification,
    MedicationReview,
    PatientIdentifiers,
    SubmittedAllergy,
    SubmittedMedication,
    SubmittedPocResult,
    SubmittedReading,
    check_identification,
)
from station.validation import Severity

TOPIC_ROOT = "rooming/v1"


class Channel(StrEnum):
    """The last topic level(s) under rooming/v1/{site}/{station_id}/."""

    STATUS = "status"  # station -> practice, retained (birth / last will)
    VITALS = "vitals"
    CHECKIN = "checkin"
    ALERT = "alert"
    LOOKUP = "lookup"  # barcode patient lookup request
    AUDIT = "audit"  # the audit trail; read only by the practice's audit consumer
    SCHEDULE = "schedule"  # practice -> station, retained
    CONFIG = "config"  # biomed -> station, retained
    ACK = "ack"  # practice -> station
    LOOKUP_RESPONSE = "lookup/response"  # practice -> station (MQTT 5 response topic)


def topic(site: str, station_id: str, channel: Channel) -> str:
    return f"{TOPIC_ROOT}/{site}/{station_id}/{channel.value}"


def device_status_topic(site: str, station_id: str, device_id: str) -> str:
    """Per-device presence (the Sparkplug idea on a plain retained QoS 1 topic)."""
    return f"{TOPIC_ROOT}/{site}/{station_id}/device/{device_id}/status"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Envelope(_Payload):
    message_id: UUID
    station_id: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    site: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    sent_at: datetime  # station clock, UTC


# ---------------------------------------------------------------- station -> practice system


class VitalsPayload(_Envelope):
    """One rooming: identifiers, readings with raw frames, chief complaint, and a FHIR Bundle."""

    schema_: Literal["rooming.vitals/1"] = Field("rooming.vitals/1", alias="schema")
    appointment_id: Annotated[str, Field(pattern=IDENTIFIER)]
    patient: PatientIdentifiers
    ma_id: Annotated[str, Field(pattern=IDENTIFIER)]
    readings: tuple[SubmittedReading, ...]
    chief_complaint: str
    reason_for_visit: str
    onset: str
    medication_review: MedicationReview
    critical_acknowledgements: tuple[CriticalAcknowledgement, ...]
    completed_at: datetime
    # A FHIR R4 (R4B) Bundle of type collection: Patient, Device(s), vital-signs Observations,
    # the chief complaint; built and checked by station.sync.fhir.
    fhir_bundle: dict[str, JsonValue]
    # #18: the updated medication list (`no_medications`: the patient takes none), the allergy
    # review and point-of-care results; also in `fhir_bundle` as US Core resources.
    medications: tuple[SubmittedMedication, ...] = ()
    no_medications: bool = False
    allergies: tuple[SubmittedAllergy, ...] = ()
    no_known_allergies: bool = False
    poc_results: tuple[SubmittedPocResult, ...] = ()
    # "manual": the MA typed the identifiers (not on the schedule, or the station was
    # offline); `appointment_id` is then the station's own visit id and `patient.mrn` may be
    # null: the practice matches the patient by name and date of birth before filing.
    identification: Identification = Identification.SCHEDULE

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _identified(self) -> VitalsPayload:
        check_identification(self.patient, self.identification)
        return self


class ContactUpdate(_Payload):
    """Contact details the patient typed at the kiosk as new ("" = not changed). Staff confirm
    them with the patient before they touch the record."""

    phone: Annotated[str, Field(max_length=40)] = ""
    email: Annotated[str, Field(max_length=254)] = ""


class ScreeningSummary(_Payload):
    """One questionnaire answered at the kiosk, as the front desk reads it."""

    instrument: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}$")]  # questionnaires/ file
    title: str
    score: float | None = None  # None: not scored by a total (STEADI)
    score_loinc: str | None = None
    positive: bool  # at or above the follow-up cut-point; STEADI: at risk


class ScreeningNotAsked(_Payload):
    """A questionnaire the rules chose that the kiosk did not ask, and why: staff ask it in
    person. `no_translation`: the instrument has no text in the patient's language, and the
    kiosk never asks one half in another language."""

    instrument: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}$")]  # questionnaires/ file
    title: str
    reason: Literal["no_translation"]
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$")]


class CheckinPayload(_Envelope):
    """Lobby self check-in: the patient found their appointment and confirmed it."""

    schema_: Literal["rooming.checkin/1"] = Field("rooming.checkin/1", alias="schema")
    appointment_id: Annotated[str, Field(pattern=IDENTIFIER)]
    patient: PatientIdentifiers
    contact_details_confirmed: bool
    contact_update_requested: bool = False  # the front desk should update phone/address
    contact_update: ContactUpdate | None = None  # what the patient typed as new, if anything
    reason_for_visit: Annotated[str, Field(max_length=500)] = ""
    # The language the kiosk was in, so of the reason's text (BCP 47 primary tag: en, es).
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$")] = "en"
    checked_in_at: datetime
    # #18: "has your insurance changed since your last visit?" (null: not asked), the intake
    # questionnaires' scores, and a FHIR Bundle of their QuestionnaireResponses and score
    # Observations (US Core), when any was answered.
    insurance_changed: bool | None = None
    screenings: tuple[ScreeningSummary, ...] = ()
    screenings_not_asked: tuple[ScreeningNotAsked, ...] = ()
    fhir_bundle: dict[str, JsonValue] | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class AlertPayload(_Envelope):
    """A critical value the MA acknowledged: tells the clinician now, outside the chart. The
    value is a device or manual vital-sign `reading`, or a point-of-care `poc_result` (e.g. a
    fingerstick glucose below 54 mg/dL): exactly one of the two."""

    schema_: Literal["rooming.alert/1"] = Field("rooming.alert/1", alias="schema")
    appointment_id: Annotated[str, Field(pattern=IDENTIFIER)]
    patient: PatientIdentifiers
    code: str  # the clinical flag, e.g. hypertensive_crisis, hypoglycaemia_level_2
    severity: Severity
    message: str
    reading: SubmittedReading | None = None
    poc_result: SubmittedPocResult | None = None
    acknowledged_by: Annotated[str, Field(pattern=IDENTIFIER)]
    identification: Identification = Identification.SCHEDULE  # as on the vitals message

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_value(self) -> AlertPayload:
        if (self.reading is None) == (self.poc_result is None):
            raise ValueError("an alert carries exactly one of reading and poc_result")
        check_identification(self.patient, self.identification)
        return self


class HelpRequestPayload(_Envelope):
    """The lobby's "ask for help" button: someone at this kiosk needs the front desk now.

    On the `alert` topic (beside AlertPayload; tell them apart by `schema`): the front desk
    already watches it, and the deployment ACL lets a station write it. Never who asked:
    the screen and language only, so the desk knows what kind of help to bring.
    """

    schema_: Literal["rooming.help_request/1"] = Field("rooming.help_request/1", alias="schema")
    screen: Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]  # the check-in step, e.g. find
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$")]
    requested_at: datetime

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class AuditPayload(_Envelope):
    """One audit record on `audit`: who did what to which chart, hash-chained.

    `sequence` counts this station's records from 1 with no gap; `prev_hash` is the previous
    record's `hash` (64 zeros for the first); `hash` is SHA-256 (FIPS 180-4) over the record's
    canonical JSON without `hash` (RFC 8785: keys sorted, no whitespace; the record holds no
    numbers but `sequence`), in lower-case hex. An edited or removed record breaks the chain
    (`station audit verify`). The envelope's `message_id` is the record's own idempotency key;
    `related_message_id` the vitals/check-in/config message it is about.
    """

    schema_: Literal["rooming.audit/1"] = Field("rooming.audit/1", alias="schema")
    sequence: Annotated[int, Field(ge=1)]
    at: datetime
    actor: Annotated[str, Field(min_length=1, max_length=64)]
    action: AuditAction
    appointment_id: Annotated[str, Field(pattern=IDENTIFIER)] | None = None
    mrn: Annotated[str, Field(pattern=IDENTIFIER)] | None = None
    related_message_id: UUID | None = None
    detail: Annotated[str, Field(max_length=500)] = ""
    prev_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ScreeningAlertPayload(_Envelope):
    """An answer staff must act on now (PHQ-9 item 9 other than "Not at all"), published on
    `alert` the moment the patient answers, before the check-in is finished. Tell it apart
    from the other alerts by `schema`."""

    schema_: Literal["rooming.screening_alert/1"] = Field(
        "rooming.screening_alert/1", alias="schema")
    appointment_id: Annotated[str, Field(pattern=IDENTIFIER)]
    patient: PatientIdentifiers
    instrument: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}$")]
    item_loinc: str | None
    answer_code: str
    answer_display: str
    message: str
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$")]
    raised_at: datetime

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Presence(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"  # the last will, or a clean shutdown


class StatusPayload(_Envelope):
    """Retained on `status`: birth on connect, last will on loss. No patient data."""

    schema_: Literal["rooming.status/1"] = Field("rooming.status/1", alias="schema")
    presence: Presence
    software_version: str
    # Orders this station's status messages: larger is newer, across reconnects, restarts
    # and clock jumps. A connection's last will carries its birth's sequence + 1, so the will
    # (published by the broker later) never reads as older than the "online" it replaces.
    sequence: Annotated[int, Field(ge=0)]
    outbox_depth: Annotated[int, Field(ge=0)] | None = None  # None in the last will
    oldest_undelivered_age_s: Annotated[float, Field(ge=0)] | None = None
    # Delivered to the broker, not yet acknowledged by the practice system (end to end);
    # `..._overdue` of them for longer than the station's ack_overdue_after_s.
    awaiting_ack: Annotated[int, Field(ge=0)] | None = None
    awaiting_ack_overdue: Annotated[int, Field(ge=0)] | None = None
    oldest_awaiting_ack_age_s: Annotated[float, Field(ge=0)] | None = None
    # Messages the practice system rejected, and rows this station cannot read (kept).
    rejected: Annotated[int, Field(ge=0)] | None = None
    quarantined: Annotated[int, Field(ge=0)] | None = None
    # What stops this station's messages, for staff (e.g. the broker refuses them).
    problem: str = ""
    # A pushed `config` the station refused, and why (field names and rules, no values).
    config_rejected_message_id: UUID | None = None
    config_problems: tuple[str, ...] = ()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class DeviceStatusPayload(_Envelope):
    """Retained on `device/{device_id}/status`: one bound device's presence."""

    schema_: Literal["rooming.device_status/1"] = Field("rooming.device_status/1", alias="schema")
    device_id: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    presence: Presence
    profile: str = ""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class LookupKind(StrEnum):
    WRISTBAND = "wristband"  # patient wristband barcode (MRN)
    APPOINTMENT = "appointment"  # appointment slip / QR code


class LookupRequest(_Envelope):
    """A scanned barcode; answered on `lookup/response` (MQTT 5 response topic + correlation
    data; `reply_to` and `correlation_id` repeat them for MQTT 3.1.1 integrators)."""

    schema_: Literal["rooming.lookup_request/1"] = Field(
        "rooming.lookup_request/1", alias="schema"
    )
    lookup_kind: LookupKind
    barcode: Annotated[str, Field(min_length=1, max_length=200)]
    reply_to: str
    correlation_id: UUID

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# ---------------------------------------------------------------- practice system -> station


class AllergyToReview(_Payload):
    """One allergy on the practice's list (substance free text as the EHR shows it)."""

    substance: Annotated[str, Field(min_length=1, max_length=200)]
    reaction: Annotated[str, Field(max_length=200)] = ""
    severity: Literal["mild", "moderate", "severe"] | None = None


class LastScreening(_Payload):
    """When the practice last recorded an intake questionnaire for this patient: the lobby's
    rules skip one done within their interval ("PHQ-2 for adults not screened this year")."""

    # The questionnaires/ file name (phq-9) or the instrument's LOINC code (44249-1).
    instrument: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,40}$")]
    screened_on: date


class Appointment(_Payload):
    appointment_id: Annotated[str, Field(pattern=IDENTIFIER)]
    patient: PatientIdentifiers
    starts_at: datetime
    reason: Annotated[str, Field(max_length=500)] = ""
    room: str = ""
    provider: str = ""
    medications_to_review: tuple[Annotated[str, Field(max_length=200)], ...] = ()
    # The patient's allergy list for the MA to review at rooming (#18).
    allergies_to_review: tuple[AllergyToReview, ...] = ()
    # The last time each intake questionnaire was recorded (#18), for the lobby's rules.
    last_screened: tuple[LastScreening, ...] = ()

    @model_validator(mode="after")
    def _with_mrn(self) -> Appointment:
        if self.patient.mrn is None:
            raise ValueError(f"appointment {self.appointment_id}: patient.mrn is required")
        return self


class SchedulePayload(_Payload):
    """Retained on `schedule`: today's appointments for this room or provider."""

    schema_: Literal["rooming.schedule/1"] = Field("rooming.schedule/1", alias="schema")
    message_id: UUID
    site: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    station_id: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    sent_at: datetime
    schedule_date: date
    appointments: tuple[Appointment, ...]

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class StationConfigPush(_Payload):
    """The settings biomed may push; the rest (ids, broker, TLS) stays in the local file."""

    display: DisplaySection | None = None
    devices: tuple[BoundDevice, ...] | None = None
    guard: GuardSection | None = None


class ConfigPayload(_Payload):
    """Retained on `config`: validated; a bad one is refused with a `status` message."""

    schema_: Literal["rooming.config/1"] = Field("rooming.config/1", alias="schema")
    message_id: UUID
    site: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    station_id: Annotated[str, Field(pattern=TOPIC_LEVEL)]
    sent_at: datetime
    settings: StationConfigPush

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class AckStatus(StrEnum):
    RECEIVED = "received"  # filed in the practice system
    REJECTED = "rejected"  # the practice system could not file it; `reason` says why


class AckPayload(_Payload):
    """On `ack`: the practice system confirms one station message by its message_id."""

    schema_: Literal["rooming.ack/1"] = Field("rooming.ack/1", alias="schema")
    message_id: UUID  # the station message being acknowledged
    status: AckStatus = AckStatus.RECEIVED
    reason: str = ""
    acked_at: datetime

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class LookupResponse(_Payload):
    """On `lookup/response`: the appointment the barcode names, or found=false."""

    schema_: Literal["rooming.lookup_response/1"] = Field(
        "rooming.lookup_response/1", alias="schema"
    )
    correlation_id: UUID
    found: bool
    appointment: Appointment | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


OUTBOUND: dict[Channel, type[_Payload]] = {
    Channel.VITALS: VitalsPayload,
    Channel.CHECKIN: CheckinPayload,
    Channel.ALERT: AlertPayload,
    Channel.STATUS: StatusPayload,
    Channel.LOOKUP: LookupRequest,
    Channel.AUDIT: AuditPayload,
}
INBOUND: dict[Channel, type[_Payload]] = {
    Channel.SCHEDULE: SchedulePayload,
    Channel.CONFIG: ConfigPayload,
    Channel.ACK: AckPayload,
    Channel.LOOKUP_RESPONSE: LookupResponse,
}


def to_json(payload: _Payload) -> bytes:
    """The wire form: by alias (`schema`), compact UTF-8."""
    return payload.model_dump_json(by_alias=True).encode()


def _schema(model: type[_Payload]) -> Callable[[], dict[str, Any]]:
    return lambda: model.model_json_schema(by_alias=True, mode="serialization")


SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "vitals.schema.json": _schema(VitalsPayload),
    "checkin.schema.json": _schema(CheckinPayload),
    "alert.schema.json": _schema(AlertPayload),
    "help-request.schema.json": _schema(HelpRequestPayload),
    "audit.schema.json": _schema(AuditPayload),
    "screening-alert.schema.json": _schema(ScreeningAlertPayload),
    "status.schema.json": _schema(StatusPayload),
    "device-status.schema.json": _schema(DeviceStatusPayload),
    "lookup-request.schema.json": _schema(LookupRequest),
    "lookup-response.schema.json": _schema(LookupResponse),
    "schedule.schema.json": _schema(SchedulePayload),
    "config.schema.json": _schema(ConfigPayload),
    "ack.schema.json": _schema(AckPayload),
}
