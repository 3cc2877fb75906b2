"""Pure envelope builders: a Submission (or an event) in, a contract payload out.

The message id and the send time are passed in, never made here, so a payload can be
rebuilt byte for byte and tests compare whole objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from station import __version__
from station.questionnaires import NotAsked, ScreeningResult, StaffAlert
from station.submission import PatientIdentifiers, Submission
from station.sync.contract import (
    AlertPayload,
    CheckinPayload,
    ContactUpdate,
    DeviceStatusPayload,
    HelpRequestPayload,
    LookupKind,
    LookupRequest,
    Presence,
    ScreeningAlertPayload,
    ScreeningNotAsked,
    ScreeningSummary,
    StatusPayload,
    VitalsPayload,
)
from station.sync.fhir import SiteRecords, build_bundle, localized, screening_bundle
from station.validation import ClinicalFlag, Severity

if TYPE_CHECKING:
    from station.sync.outbox import OutboxStats


def vitals(
    submission: Submission,
    *,
    message_id: UUID,
    site: str,
    station_id: str,
    sent_at: datetime,
    records: SiteRecords | None = None,
) -> VitalsPayload:
    """The vitals message; device-local times get the site's offset (`records.zone`)."""
    records = records or SiteRecords()
    bundle = build_bundle(
        submission, message_id=message_id, station_id=station_id, sent_at=sent_at,
        records=records,
    )
    return VitalsPayload(
        message_id=message_id,
        station_id=station_id,
        site=site,
        sent_at=sent_at,
        appointment_id=submission.appointment_id,
        patient=submission.patient,
        ma_id=submission.ma_id,
        readings=tuple(localized(item, records.zone) for item in submission.readings),
        chief_complaint=submission.chief_complaint,
        reason_for_visit=submission.reason_for_visit,
        onset=submission.onset,
        medication_review=submission.medication_review,
        critical_acknowledgements=submission.critical_acknowledgements,
        completed_at=submission.completed_at,
        fhir_bundle=bundle,
        medications=submission.medications,
        no_medications=submission.no_medications,
        allergies=submission.allergies,
        no_known_allergies=submission.no_known_allergies,
        poc_results=submission.poc_results,
        identification=submission.identification,
    )


def alerts(
    submission: Submission,
    *,
    message_ids: list[UUID],
    site: str,
    station_id: str,
    sent_at: datetime,
    records: SiteRecords | None = None,
) -> list[AlertPayload]:
    """One alert per acknowledged critical value; needs as many message ids as it returns
    (count them first with `critical_count`)."""
    zone = (records or SiteRecords()).zone
    out: list[AlertPayload] = []

    def alert(flag: ClinicalFlag, acknowledged_by: str, **value: Any) -> None:
        out.append(
            AlertPayload(
                message_id=message_ids[len(out)],
                station_id=station_id,
                site=site,
                sent_at=sent_at,
                appointment_id=submission.appointment_id,
                patient=submission.patient,
                code=flag.code,
                severity=flag.severity,
                message=flag.message,
                acknowledged_by=acknowledged_by,
                identification=submission.identification,
                **value,
            )
        )

    acks = {(a.kind, a.code): a for a in submission.critical_acknowledgements}
    for item in submission.readings:
        for flag in item.verdict.flags:
            if flag.severity == Severity.CRITICAL:
                ack = acks[(item.reading.kind, flag.code)]  # Submission guarantees it exists
                alert(flag, ack.acknowledged_by, reading=localized(item, zone))
    for poc in submission.poc_results:
        for flag in poc.result.flags:
            if flag.severity == Severity.CRITICAL:
                assert poc.acknowledged_by is not None  # Submission guarantees it
                alert(flag, poc.acknowledged_by, poc_result=poc)
    return out


def critical_count(submission: Submission) -> int:
    return sum(
        1
        for item in submission.readings
        for flag in item.verdict.flags
        if flag.severity == Severity.CRITICAL
    ) + sum(
        1
        for poc in submission.poc_results
        for flag in poc.result.flags
        if flag.severity == Severity.CRITICAL
    )


def checkin(
    *,
    appointment_id: str,
    patient: PatientIdentifiers,
    contact_details_confirmed: bool,
    contact_update_requested: bool,
    reason_for_visit: str,
    checked_in_at: datetime,
    message_id: UUID,
    language: str = "en",
    contact_update: ContactUpdate | None = None,
    site: str,
    station_id: str,
    sent_at: datetime,
    insurance_changed: bool | None = None,
    screenings: tuple[ScreeningResult, ...] = (),
    screenings_not_asked: tuple[NotAsked, ...] = (),
    records: SiteRecords | None = None,
) -> CheckinPayload:
    """The check-in; answered questionnaires add their summaries and a FHIR Bundle."""
    bundle = None if not screenings else screening_bundle(
        screenings, patient, appointment_id=appointment_id, authored_at=checked_in_at,
        message_id=message_id, sent_at=sent_at, records=records)
    return CheckinPayload(
        message_id=message_id,
        station_id=station_id,
        site=site,
        sent_at=sent_at,
        appointment_id=appointment_id,
        patient=patient,
        contact_details_confirmed=contact_details_confirmed,
        contact_update_requested=contact_update_requested,
        contact_update=contact_update,
        reason_for_visit=reason_for_visit,
        language=language,
        checked_in_at=checked_in_at,
        insurance_changed=insurance_changed,
        screenings=tuple(
            ScreeningSummary(instrument=r.instrument, title=r.title, score=r.score,
                             score_loinc=r.score_loinc, positive=r.positive)
            for r in screenings
        ),
        screenings_not_asked=tuple(
            ScreeningNotAsked(instrument=n.instrument, title=n.title, reason="no_translation",
                              language=n.language)
            for n in screenings_not_asked
        ),
        fhir_bundle=bundle,
    )


def screening_alert(
    alert: StaffAlert,
    *,
    appointment_id: str,
    patient: PatientIdentifiers,
    language: str,
    raised_at: datetime,
    message_id: UUID,
    site: str,
    station_id: str,
    sent_at: datetime,
) -> ScreeningAlertPayload:
    return ScreeningAlertPayload(
        message_id=message_id, station_id=station_id, site=site, sent_at=sent_at,
        appointment_id=appointment_id, patient=patient, instrument=alert.instrument,
        item_loinc=alert.loinc, answer_code=alert.answer_code,
        answer_display=alert.answer_display, message=alert.message, language=language,
        raised_at=raised_at,
    )


def help_request(
    *,
    screen: str,
    language: str,
    requested_at: datetime,
    message_id: UUID,
    site: str,
    station_id: str,
    sent_at: datetime,
) -> HelpRequestPayload:
    return HelpRequestPayload(
        message_id=message_id,
        station_id=station_id,
        site=site,
        sent_at=sent_at,
        screen=screen,
        language=language,
        requested_at=requested_at,
    )


def status(
    presence: Presence,
    *,
    message_id: UUID,
    site: str,
    station_id: str,
    sent_at: datetime,
    sequence: int,
    stats: OutboxStats | None = None,
    problem: str = "",
) -> StatusPayload:
    """`stats` in the birth and the regular updates; None in the last will and the goodbye."""
    queue: dict[str, object] = {}
    if stats is not None:
        queue = {
            "outbox_depth": stats.depth,
            "oldest_undelivered_age_s": stats.oldest_age_s(sent_at),
            "awaiting_ack": stats.delivered_awaiting_ack,
            "awaiting_ack_overdue": stats.unacknowledged_overdue,
            "oldest_awaiting_ack_age_s": stats.oldest_unacknowledged_age_s(sent_at),
            "rejected": stats.rejected,
            "quarantined": stats.quarantined,
        }
    return StatusPayload.model_validate({
        "message_id": message_id,
        "station_id": station_id,
        "site": site,
        "sent_at": sent_at,
        "presence": presence,
        "software_version": __version__,
        "sequence": sequence,
        "problem": problem,
        **queue,
    })


def device_status(
    device_id: str,
    presence: Presence,
    *,
    profile: str,
    message_id: UUID,
    site: str,
    station_id: str,
    sent_at: datetime,
) -> DeviceStatusPayload:
    return DeviceStatusPayload(
        message_id=message_id,
        station_id=station_id,
        site=site,
        sent_at=sent_at,
        device_id=device_id,
        presence=presence,
        profile=profile,
    )


def lookup_request(
    barcode: str,
    kind: LookupKind,
    *,
    reply_to: str,
    correlation_id: UUID,
    message_id: UUID,
    site: str,
    station_id: str,
    sent_at: datetime,
) -> LookupRequest:
    return LookupRequest(
        message_id=message_id,
        station_id=station_id,
        site=site,
        sent_at=sent_at,
        lookup_kind=kind,
        barcode=barcode,
        reply_to=reply_to,
        correlation_id=correlation_id,
    )

