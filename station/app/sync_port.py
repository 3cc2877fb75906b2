"""The screens' outbox port over the real sync layer (durable Outbox + MqttLink).

`SyncOutbox` is what the composition root plugs into the presenters instead of the in-memory
twin: Send stores the vitals payload (and one `alert` per acknowledged critical value)
durably and returns; the practice system's ack later turns "saved" into "received". The
schedule converters turn the retained `schedule` message into the workflows' models;
`SyncLookup` sends a scanned barcode as a lookup request and `lookup_answer` turns the answer
into the exam presenter's `LookupAnswer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from station.checkin import Appointment, CheckinRecord, HelpRequest
from station.config import Settings
from station.devices.profiles import FirmwareProfile, load_profiles
from station.errors import StationError
from station.names import clean_name
from station.questionnaires import StaffAlert
from station.rooming_data import (
    AlertRequest,
    Allergy,
    AllergySeverity,
    Medication,
    ScheduledPatient,
)
from station.submission import PatientIdentifiers, Submission
from station.sync import payloads
from station.sync.contract import Appointment as ContractAppointment
from station.sync.contract import (
    Channel,
    ContactUpdate,
    LookupKind,
    SchedulePayload,
    to_json,
)
from station.sync.fhir import DeviceModel, SiteRecords
from station.sync.inbound import LookupResult
from station.sync.mqtt import MqttLink
from station.sync.outbox import DeliveryState, Outbox, OutboxError
from station.ui.ports import LookupAnswer, LookupOutcome, SendState


def _utc_now() -> datetime:
    return datetime.now(UTC)


def site_records(
    settings: Settings, profiles: Mapping[str, FirmwareProfile] | None = None
) -> SiteRecords:
    """The `[records]` settings as the FHIR builder takes them, with each bound device's make
    from its firmware profile (the installed profiles when none are given)."""
    records = settings.records
    if profiles is None and settings.devices:
        try:
            profiles = load_profiles()
        except StationError:
            profiles = {}  # `station config check` reports it; the Device just has no make
    makes = {
        device.id: DeviceModel(profile.vendor, profile.model)
        for device in settings.devices
        if (profile := (profiles or {}).get(device.profile)) is not None
    }
    return SiteRecords(
        zone=ZoneInfo(records.timezone),
        mrn_system=records.mrn_system,
        appointment_system=records.appointment_system,
        staff_system=records.staff_system,
        devices=makes,
    )


class SyncOutbox:
    """VitalsOutbox and AlertSink for the exam station, over the sync layer."""

    def __init__(
        self,
        link: MqttLink,
        outbox: Outbox,
        *,
        site: str,
        station_id: str,
        clock: Callable[[], datetime] = _utc_now,
        records: SiteRecords | None = None,
    ) -> None:
        self._link = link
        self._outbox = outbox
        self._site = site
        self._station_id = station_id
        self._clock = clock
        self._records = records or SiteRecords()

    def submit(self, submission: Submission) -> UUID:
        now = self._clock()
        message_id = uuid4()
        vitals = payloads.vitals(
            submission,
            message_id=message_id,
            site=self._site,
            station_id=self._station_id,
            sent_at=now,
            records=self._records,
        )
        self._link.submit(Channel.VITALS, to_json(vitals), message_id)
        alert_ids = [uuid4() for _ in range(payloads.critical_count(submission))]
        for alert in payloads.alerts(
            submission,
            message_ids=alert_ids,
            site=self._site,
            station_id=self._station_id,
            sent_at=now,
            records=self._records,
        ):
            self._link.submit(Channel.ALERT, to_json(alert), alert.message_id)
        return message_id

    def send_state(self, message_id: UUID) -> SendState:
        # The outbox is the one record: it keeps an ack that overtakes the PUBACK record, and
        # only a `received` ack marks a message received.
        try:
            state = self._outbox.state(message_id)
        except OutboxError:
            return SendState.SAVED  # the station is stopping; what was saved stays saved
        if state == DeliveryState.REJECTED:
            return SendState.REJECTED
        return SendState.RECEIVED if state == DeliveryState.RECEIVED else SendState.SAVED

    def rejection(self, message_id: UUID) -> str | None:
        try:
            return self._outbox.rejection(message_id)
        except OutboxError:
            return None

    def queued(self) -> int:
        try:
            return self._outbox.stats().depth
        except OutboxError:
            return 0

    def online(self) -> bool:
        return self._link.connected

    def alert(self, alert: AlertRequest) -> None:
        # The `alert` message carries the reading and the patient, so it is built from the
        # submission at Send (payloads.alerts); the acknowledgement itself is recorded there.
        del alert


class CheckinSendError(StationError):
    """A check-in that cannot be sent as it is; the message is for the patient's screen."""


class SyncCheckins:
    """LobbySink's check-in half over the sync layer: `checkin` messages, durably queued.

    The contract's check-in carries the patient's identifiers, so the lobby keeps today's
    schedule here (from the retained `schedule` message) to fill them in.
    """

    def __init__(
        self,
        link: MqttLink,
        *,
        site: str,
        station_id: str,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._link = link
        self._site = site
        self._station_id = station_id
        self._clock = clock
        self._patients: dict[str, PatientIdentifiers] = {}
        self._previous: dict[str, PatientIdentifiers] = {}

    def set_schedule(self, payload: SchedulePayload) -> None:
        # The list before this one is kept too: a patient half-way through checking in when
        # the practice re-publishes the schedule (a cancellation, a move) still checks in
        # (#20: the lobby died with KeyError: 'APT-1'). Two lists at most are held.
        self._previous = self._patients
        self._patients = {a.appointment_id: a.patient for a in payload.appointments}

    def _patient(self, appointment_id: str) -> PatientIdentifiers:
        patient = self._patients.get(appointment_id) or self._previous.get(appointment_id)
        if patient is None:
            raise CheckinSendError(
                "this appointment is no longer on the practice's list: please see the front desk"
            )
        return patient

    def checkin(self, record: CheckinRecord) -> UUID:
        message_id = uuid4()
        body = payloads.checkin(
            appointment_id=record.appointment_id,
            patient=self._patient(record.appointment_id),
            contact_details_confirmed=record.contact_change is None,
            contact_update_requested=record.contact_change is not None,
            # What the patient typed as new; staff confirm it with them before the record.
            contact_update=None
            if record.contact_change is None
            else ContactUpdate(
                phone=record.contact_change.phone, email=record.contact_change.email
            ),
            reason_for_visit=record.reason_for_visit,
            language=record.language,
            checked_in_at=record.checked_in_at,
            insurance_changed=record.insurance_changed,
            screenings=record.screenings,
            screenings_not_asked=record.screenings_not_asked,
            message_id=message_id,
            site=self._site,
            station_id=self._station_id,
            sent_at=self._clock(),
        )
        self._link.submit(Channel.CHECKIN, to_json(body), message_id)
        return message_id


class SyncLobby(SyncCheckins):
    """The lobby's LobbySink over the sync layer: check-ins, and "ask for help" as a
    `rooming.help_request/1` message on the `alert` topic for the front desk."""

    def help(self, request: HelpRequest) -> None:
        message_id = uuid4()
        body = payloads.help_request(
            screen=request.screen.value,
            language=request.language,
            requested_at=request.requested_at,
            message_id=message_id,
            site=self._site,
            station_id=self._station_id,
            sent_at=self._clock(),
        )
        self._link.submit(Channel.ALERT, to_json(body), message_id)

    def screening_alert(
        self, alert: StaffAlert, *, appointment_id: str, language: str, raised_at: datetime
    ) -> UUID:
        """A questionnaire answer staff must act on now (PHQ-9 item 9): on `alert` at once,
        durably queued like every station message."""
        message_id = uuid4()
        body = payloads.screening_alert(
            alert, appointment_id=appointment_id, patient=self._patient(appointment_id),
            language=language, raised_at=raised_at, message_id=message_id, site=self._site,
            station_id=self._station_id, sent_at=self._clock(),
        )
        self._link.submit(Channel.ALERT, to_json(body), message_id)
        return message_id


def appointment_to_patient(a: ContractAppointment) -> ScheduledPatient:
    """One appointment (schedule or barcode lookup), start time in the station's local time;
    the names normalised for display and comparison (station.names)."""
    family, given = clean_name(a.patient.family_name), clean_name(a.patient.given_name)
    return ScheduledPatient(
        appointment_id=a.appointment_id,
        mrn=a.patient.mrn,
        family_name=family.text,
        given_name=given.text,
        identity_notes=tuple(dict.fromkeys(family.notes + given.notes)),
        birth_date=a.patient.birth_date,
        start_time=a.starts_at.astimezone().strftime("%H:%M"),
        room=a.room,
        provider=a.provider,
        medications=tuple(Medication(name=m) for m in a.medications_to_review),
        allergies=tuple(
            Allergy(substance=x.substance, reaction=x.reaction,
                    severity=None if x.severity is None else AllergySeverity(x.severity))
            for x in a.allergies_to_review
        ),
        reason_for_visit=a.reason,
    )


def schedule_to_patients(payload: SchedulePayload) -> tuple[ScheduledPatient, ...]:
    """Today's list for the exam station."""
    return tuple(appointment_to_patient(a) for a in payload.appointments)


# Appointment slips print the appointment id (APT-...); anything else a reader types at the
# exam station is a wristband (the MRN). The practice system resolves either way: the kind
# only tells it where to look first.
APPOINTMENT_PREFIX = "APT"


class SyncLookup:
    """PatientLookup over the MQTT link: a scanned barcode becomes a `lookup` request (MQTT 5
    response topic + correlation data); the answer or the time-out comes to the link's
    `Inbound.on_lookup`, which the composition root turns into a `LookupAnswer`."""

    def __init__(self, link: MqttLink) -> None:
        self._link = link

    def request(self, barcode: str) -> UUID:
        kind = (
            LookupKind.APPOINTMENT
            if barcode.upper().startswith(APPOINTMENT_PREFIX)
            else LookupKind.WRISTBAND
        )
        return self._link.request_lookup(barcode, kind)


def lookup_answer(result: LookupResult) -> LookupAnswer:
    """The sync layer's lookup result as the exam presenter takes it."""
    patient = None if result.appointment is None else appointment_to_patient(result.appointment)
    return LookupAnswer(
        request_id=result.correlation_id,
        outcome=LookupOutcome(result.outcome.value),
        patient=patient,
    )


def schedule_to_appointments(payload: SchedulePayload) -> tuple[Appointment, ...]:
    """The lobby's lookup list. The schedule carries no contact details or QR tokens yet,
    so the contact screen says "none on file" and QR codes are not matched locally. When
    each questionnaire was last done goes to the rules ("not screened this year")."""
    return tuple(
        Appointment(
            appointment_id=a.appointment_id,
            family_name=clean_name(a.patient.family_name).text,
            given_name=clean_name(a.patient.given_name).text,
            birth_date=a.patient.birth_date,
            last_screened=tuple((s.instrument, s.screened_on) for s in a.last_screened),
        )
        for a in payload.appointments
    )
