"""What one stored station message becomes downstream: the messages to send and where, or why
nothing is sent. Pure: the stored row, the settings and a clock reading in, a `Plan` out.

The routes ([routes] in gateway.toml) say where each kind goes: "ehr" (the [mllp] listener),
"alerts" (the [alerts_mllp] listener), "fhir" (the [fhir] endpoint, a transaction Bundle) or
"ack" (nothing sent; acked received). Alerts, screening alerts and help requests ride the
alert lane, which the gateway sends ahead of the chart queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, JsonValue, ValidationError

from station.gateway.config import GatewaySettings
from station.gateway.hl7v2 import Hl7BuildError, adt_a04, oru_r01, oru_r01_alert
from station.gateway.hl7v2_intake import (
    adt_a60,
    help_request_oru,
    screening_alert_oru,
    screening_oru,
    vitals_extra_orders,
)
from station.gateway.store import Lane, Row
from station.sync.contract import (
    TOPIC_ROOT,
    AlertPayload,
    Channel,
    CheckinPayload,
    HelpRequestPayload,
    ScreeningAlertPayload,
    VitalsPayload,
)

ALERT_SCHEMA = "rooming.alert/1"
SCREENING_ALERT_SCHEMA = "rooming.screening_alert/1"
HELP_REQUEST_SCHEMA = "rooming.help_request/1"


class Destination(StrEnum):
    EHR = "ehr"  # [mllp]
    ALERTS = "alerts"  # [alerts_mllp]
    FHIR = "fhir"  # [fhir]


@dataclass(frozen=True)
class Part:
    """One downstream message: HL7 ER7 for an MLLP destination, a Bundle for FHIR."""

    destination: Destination
    label: str  # what it is, for logs and status: "ORU^R01", "ADT^A60", "FHIR transaction"
    er7: str = ""
    bundle: dict[str, Any] | None = None


@dataclass(frozen=True)
class Plan:
    parts: tuple[Part, ...] = ()
    skip_reason: str = ""  # nothing to send: acked "received" (and logged, by message id)
    reject_reason: str = ""  # cannot be sent: acked "rejected" with this text for the MA


def parse_topic(name: str) -> tuple[str, str, str] | None:
    """(site, station_id, channel) of a station topic; None for anything else."""
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT:
        return None
    return parts[2], parts[3], parts[4]


def lane_for(topic_name: str) -> Lane:
    where = parse_topic(topic_name)
    return Lane.ALERT if where is not None and where[2] == Channel.ALERT else Lane.CHART


def schema_of(body: bytes) -> str:
    try:
        head = json.loads(body)
    except ValueError:
        return ""
    return str(head.get("schema", "")) if isinstance(head, dict) else ""


def transaction_bundle(bundle: dict[str, JsonValue]) -> dict[str, Any]:
    """The station's collection Bundle as a FHIR transaction (hl7.org/fhir/R4/http.html
    #transaction): every entry a conditional create (POST with ifNoneExist on its
    identifier), so a message sent again after a lost response creates nothing twice; the
    server resolves the urn:uuid references between entries."""
    entries = []
    listed = bundle.get("entry")
    for entry in listed if isinstance(listed, list) else []:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        request: dict[str, str] = {"method": "POST", "url": str(resource["resourceType"])}
        identifier = resource.get("identifier")
        first = identifier[0] if isinstance(identifier, list) and identifier else identifier
        if isinstance(first, dict) and first.get("value"):
            system = f"{first['system']}|" if first.get("system") else ""
            request["ifNoneExist"] = f"identifier={system}{first['value']}"
        entries.append({"fullUrl": entry.get("fullUrl"), "resource": resource,
                        "request": request})
    out: dict[str, Any] = {key: value for key, value in bundle.items()
                           if key not in ("entry", "type")}
    out["type"] = "transaction"
    out["entry"] = entries
    return out


def _read(model: type[BaseModel], row: Row, what: str) -> Any:
    try:
        return model.model_validate_json(row.body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise _UnreadableError(f"the practice gateway could not read this {what} "
                          f"({where}: {first['msg']})") from exc


class _UnreadableError(ValueError):
    pass


def _part(destination: str, label: str, er7: str) -> Part:
    return Part(Destination(destination), label, er7=er7)


def plan(row: Row, settings: GatewaySettings, now: datetime) -> Plan:
    """The downstream messages for a stored station message, or why none are sent."""
    where = parse_topic(row.topic)
    channel = where[2] if where else ""
    routes, hl7 = settings.routes, settings.hl7
    try:
        if channel == Channel.VITALS:
            vitals: VitalsPayload = _read(VitalsPayload, row, "vitals")
            if routes.vitals == "fhir":
                return Plan((Part(Destination.FHIR, "FHIR transaction",
                                  bundle=transaction_bundle(vitals.fhir_bundle)),))
            parts = [_part(routes.vitals, "ORU^R01", oru_r01(
                vitals, hl7, sent_at=now, extra_orders=vitals_extra_orders(vitals)))]
            allergies = None if hl7.allergies_message == "none" else adt_a60(
                vitals, hl7, sent_at=now, part=1)
            if allergies is not None:
                parts.append(_part(routes.vitals, "ADT^A60", allergies))
            return Plan(tuple(parts))
        if channel == Channel.CHECKIN:
            checkin: CheckinPayload = _read(CheckinPayload, row, "checkin")
            if routes.checkin == "ack" or (
                    routes.checkin == "ehr" and hl7.checkin_message == "none"
                    and not checkin.screenings):
                return Plan(skip_reason="check-ins are not sent to the EHR here")
            if routes.checkin == "fhir":
                if checkin.fhir_bundle is None:
                    return Plan(skip_reason="a check-in without questionnaires has no FHIR "
                                            "resources to write")
                return Plan((Part(Destination.FHIR, "FHIR transaction",
                                  bundle=transaction_bundle(checkin.fhir_bundle)),))
            parts = []
            if hl7.checkin_message != "none":
                parts.append(_part(routes.checkin, "ADT^A04", adt_a04(checkin, hl7, sent_at=now)))
            screenings = screening_oru(checkin, hl7, sent_at=now, part=len(parts))
            if screenings is not None:
                parts.append(_part(routes.checkin, "ORU^R01", screenings))
            return Plan(tuple(parts))
        if channel == Channel.ALERT:
            schema = schema_of(row.body)
            if schema == ALERT_SCHEMA:
                alert: AlertPayload = _read(AlertPayload, row, "alert")
                return Plan((_part(routes.alert, "ORU^R01",
                                   oru_r01_alert(alert, hl7, sent_at=now)),))
            if schema == SCREENING_ALERT_SCHEMA:
                screening: ScreeningAlertPayload = _read(ScreeningAlertPayload, row,
                                                         "screening alert")
                return Plan((_part(routes.screening_alert, "ORU^R01",
                                   screening_alert_oru(screening, hl7, sent_at=now)),))
            if schema == HELP_REQUEST_SCHEMA:
                help_request: HelpRequestPayload = _read(HelpRequestPayload, row,
                                                         "help request")
                if routes.help_request == "ack":
                    return Plan(skip_reason="help requests are acknowledged here, not "
                                            "forwarded (routes.help_request = \"ack\")")
                return Plan((_part(routes.help_request, "ORU^R01",
                                   help_request_oru(help_request, hl7, sent_at=now)),))
            return Plan(reject_reason=(
                f"the practice gateway takes no '{schema or 'unnamed'}' messages on alert "
                f"(expected {ALERT_SCHEMA}, {SCREENING_ALERT_SCHEMA} or {HELP_REQUEST_SCHEMA})"))
    except _UnreadableError as exc:
        return Plan(reject_reason=str(exc))
    except Hl7BuildError as exc:
        return Plan(reject_reason=f"could not be turned into HL7 v2: {exc}")
    except (LookupError, TypeError, ValueError) as exc:
        # Content the contract allows but the mapping did not expect: refused with what it
        # was, never retried forever at the head of the queue.
        return Plan(reject_reason=f"could not be turned into HL7 v2: unexpected content "
                                  f"({type(exc).__name__}: {exc})")
    return Plan(reject_reason=f"the practice gateway takes no '{channel}' messages")


def message_id_of(body: bytes) -> str | None:
    """The envelope's message_id as a canonical UUID, or None if it has none."""
    try:
        head = json.loads(body)
        return str(UUID(str(head["message_id"])))
    except (ValueError, KeyError, TypeError):
        return None
