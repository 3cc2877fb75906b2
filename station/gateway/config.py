"""The gateway's settings: `/etc/station/gateway.toml` read with tomllib into strict pydantic."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from station.config import TOPIC_LEVEL, TomlError, describe_validation_error, parse_toml
from station.errors import ConfigError

GATEWAY_CONFIG_ENV = "STATION_GATEWAY_CONFIG"
DEFAULT_GATEWAY_CONFIG = Path("/etc/station/gateway.toml")
# HL7 v2 HD namespace ids and EI entity ids: no delimiters, short (ST in HD.1 is 20 long in
# v2.5.1), so they survive every interface engine unescaped.
HL7_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,19}$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GatewayBroker(_Strict):
    """Where the stations' messages are: the practice's (or the central) broker."""

    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 8883
    require_tls: bool = True
    ca_file: Path | None = None
    cert_file: Path | None = None  # this gateway's certificate; its CN is its MQTT identity
    key_file: Path | None = None
    # Unique per replica: with use_identity_as_username + use_username_as_clientid on the
    # shipped broker this is the certificate's CN anyway.
    client_id: Annotated[str, Field(pattern=TOPIC_LEVEL)] = "practice-gateway-1"
    # Replicas with the same group split the stations' messages between them
    # ($share/<group>/...): each message goes to one of them.
    share_group: Annotated[str, Field(pattern=TOPIC_LEVEL)] = "ehr-gateway"
    # How long the broker keeps this replica's session (and queues its share) while it is away.
    session_expiry_s: Annotated[int, Field(ge=60, le=30 * 86400)] = 7 * 86400
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    channels: tuple[Literal["vitals", "checkin", "alert"], ...] = ("vitals", "checkin", "alert")

    @model_validator(mode="after")
    def _tls(self) -> GatewayBroker:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        if self.require_tls and self.ca_file is None:
            raise ValueError("require_tls = true needs ca_file (and cert_file/key_file for "
                             "mutual TLS); set require_tls = false only for a test broker")
        if not self.channels:
            raise ValueError("channels is empty: expected some of vitals, checkin, alert")
        return self


class GatewayMllp(_Strict):
    """The EHR's (or interface engine's) MLLP listener."""

    host: str = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 2575
    # No ACK this long after a message is sent: the connection is dropped and the same
    # message sent again (same MSH-10), after the backoff.
    ack_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    connect_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    # "per_message" opens a connection for each message and closes it after the ACK, which
    # every listener takes (node-hl7-server 2.5.0 misreads a second message on one connection:
    # it never empties its read buffer); "persistent" keeps one open, as Mirth and most
    # interface engines expect for throughput.
    connection: Literal["per_message", "persistent"] = "per_message"
    retry_min_s: Annotated[float, Field(ge=0, le=600)] = 1.0
    retry_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0

    @model_validator(mode="after")
    def _backoff(self) -> GatewayMllp:
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        return self


class GatewayHl7(_Strict):
    """MSH identities and the message a lobby check-in becomes."""

    sending_application: Annotated[str, Field(pattern=HL7_ID)] = "ROOMING"
    sending_facility: Annotated[str, Field(pattern=HL7_ID)] = "CLINIC"
    receiving_application: Annotated[str, Field(pattern=HL7_ID)] = "EHR"
    receiving_facility: Annotated[str, Field(pattern=HL7_ID)] = "PRACTICE"
    processing_id: Literal["P", "T", "D"] = "P"  # production / training / debugging
    # The assigning authority of the MRN in PID-3 (the EHR's namespace for it).
    mrn_authority: Annotated[str, Field(pattern=HL7_ID)] = "EHR"
    # ADT^A04 "register a patient" (the arrival of an outpatient), the event the lobby
    # check-in is; "none" files nothing and acks it received.
    checkin_message: Literal["ADT^A04", "none"] = "ADT^A04"
    # The allergy review: ADT^A60 with IAM segments (station.gateway.hl7v2_intake says why
    # not AL1), or "none" to leave allergies out of HL7.
    allergies_message: Literal["ADT^A60", "none"] = "ADT^A60"


class GatewayStore(_Strict):
    """The dedupe store and queue: SQLite (replicas on one host may share the file) or one
    PostgreSQL database shared by replicas on several hosts."""

    kind: Literal["sqlite", "postgresql"] = "sqlite"
    path: Path = Path("/var/lib/station-gateway/gateway.sqlite3")
    # libpq connection string, e.g. "host=db.practice.example dbname=gateway user=gateway
    # sslmode=verify-full passfile=/etc/station-gateway/pgpass". No password in it: this file
    # is configuration, the password belongs in the passfile (or a client certificate).
    dsn: str = ""

    @model_validator(mode="after")
    def _postgresql(self) -> GatewayStore:
        if self.kind == "postgresql" and not self.dsn.strip():
            raise ValueError('kind = "postgresql" needs dsn (a libpq connection string, '
                             'e.g. "host=db.practice.example dbname=gateway user=gateway")')
        if "password" in self.dsn.lower().replace(" ", ""):
            raise ValueError("dsn carries a password: put it in a libpq passfile "
                             "(passfile=/etc/station-gateway/pgpass) and leave it out of dsn")
        return self


# Where each kind of station message goes: "ehr" the [mllp] listener, "fhir" the [fhir]
# endpoint, "alerts" the [alerts_mllp] listener (the interface engine's channel that pages
# staff), "ack" nowhere (acked received, logged by message id only).
class GatewayRoutes(_Strict):
    vitals: Literal["ehr", "fhir"] = "ehr"
    checkin: Literal["ehr", "fhir", "ack"] = "ehr"
    # Critical-value and screening alerts (PHQ-9 item 9) must reach a person: never "ack".
    alert: Literal["ehr", "alerts"] = "ehr"
    screening_alert: Literal["ehr", "alerts"] = "ehr"
    # A lobby help request names no patient; "ack" when the front desk sees the station's
    # `alert` topic itself, "alerts" to page through the alerts listener.
    help_request: Literal["ack", "alerts"] = "ack"


class GatewayFhir(_Strict):
    """A FHIR R4 server that takes transaction Bundles (POST [base]), for EHRs that take FHIR
    writes. Only used when a route names "fhir"."""

    base_url: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] = "https://ehr.example/fhir"
    # The bearer token, read from this file at start (systemd LoadCredential); none: no
    # Authorization header.
    token_file: Path | None = None
    ca_file: Path | None = None  # the server's CA when it is not in the system's store
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    retry_min_s: Annotated[float, Field(ge=0, le=600)] = 1.0
    retry_max_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    require_https: bool = True

    @model_validator(mode="after")
    def _checks(self) -> GatewayFhir:
        if self.require_https and not self.base_url.startswith("https://"):
            raise ValueError("base_url is not https: a bearer token and patient data would go "
                             "in clear text; set require_https = false only for a test server")
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s must not exceed retry_max_s")
        return self


class GatewaySettings(_Strict):
    broker: GatewayBroker = GatewayBroker(require_tls=False)
    mllp: GatewayMllp = GatewayMllp()
    hl7: GatewayHl7 = GatewayHl7()
    store: GatewayStore = GatewayStore()
    routes: GatewayRoutes = GatewayRoutes()
    # A second MLLP listener for alerts (routes = "alerts"); none: routes may not name it.
    alerts_mllp: GatewayMllp | None = None
    fhir: GatewayFhir | None = None

    @model_validator(mode="after")
    def _destinations(self) -> GatewaySettings:
        named = self.routes.model_dump()
        for channel, where in named.items():
            if where == "alerts" and self.alerts_mllp is None:
                raise ValueError(f'routes.{channel} = "alerts" needs an [alerts_mllp] section '
                                 "(host and port of the alerts listener)")
            if where == "fhir" and self.fhir is None:
                raise ValueError(f'routes.{channel} = "fhir" needs a [fhir] section (base_url, '
                                 "token_file)")
        return self


def gateway_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(GATEWAY_CONFIG_ENV) or DEFAULT_GATEWAY_CONFIG)


def load_gateway_settings(path: str | os.PathLike[str] | None = None) -> GatewaySettings:
    """Read and check the gateway's file; any problem raises ConfigError naming file and key."""
    file = gateway_config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(file), [
            f"file not found (set {GATEWAY_CONFIG_ENV} or pass a path)"]) from None
    except (PermissionError, IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(str(file), [f"cannot read: {exc}"]) from exc
    try:
        data = parse_toml(text)
    except TomlError as exc:
        raise ConfigError(str(file), [str(exc)]) from exc
    if "broker" not in data:
        raise ConfigError(str(file), ["[broker]: missing: the gateway needs its broker"])
    try:
        return GatewaySettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(file), describe_validation_error(exc)) from exc


SAMPLE_GATEWAY_CONFIG = """\
# /etc/station/gateway.toml — the practice-side gateway (MQTT -> HL7 v2 over MLLP).
# `station config check --gateway /etc/station/gateway.toml` checks it.
[broker]
host = "broker.practice.example"
port = 8883
require_tls = true
ca_file = "/etc/station-gateway/tls/ca.crt"
cert_file = "/etc/station-gateway/tls/gateway.crt"   # CN = client_id (an ACL user)
key_file = "/etc/station-gateway/tls/gateway.key"
client_id = "practice-gateway-1"    # unique per replica
share_group = "ehr-gateway"         # the same for every replica
session_expiry_s = 604800           # the broker keeps this replica's share for a week
channels = ["vitals", "checkin", "alert"]

[mllp]
host = "interface-engine.practice.example"
port = 2575
ack_timeout_s = 30
connection = "per_message"          # or "persistent" (one connection kept open)
retry_min_s = 1
retry_max_s = 60

[hl7]
sending_application = "ROOMING"
sending_facility = "CLINIC"
receiving_application = "EHR"
receiving_facility = "PRACTICE"
processing_id = "P"
mrn_authority = "EHR"
checkin_message = "ADT^A04"          # or "none"

allergies_message = "ADT^A60"        # or "none"

[store]
kind = "sqlite"                       # or "postgresql" for replicas on several hosts
path = "/var/lib/station-gateway/gateway.sqlite3"
# dsn = "host=db.practice.example dbname=gateway user=gateway sslmode=verify-full"
#        (the password in a libpq passfile: passfile=/etc/station-gateway/pgpass)

[routes]
vitals = "ehr"                        # or "fhir"
checkin = "ehr"                       # or "fhir" / "ack"
alert = "ehr"                         # or "alerts"
screening_alert = "ehr"               # or "alerts"; PHQ-9 item 9, sent ahead of the queue
help_request = "ack"                  # or "alerts"

# [alerts_mllp]                       # where routes = "alerts" go (e.g. a paging channel)
# host = "interface-engine.practice.example"
# port = 2576

# [fhir]                              # where routes = "fhir" go (transaction Bundles)
# base_url = "https://ehr.practice.example/fhir"
# token_file = "/run/credentials/rooming-gateway.service/fhir-token"
"""
