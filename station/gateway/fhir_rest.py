"""FHIR REST output: one transaction Bundle POSTed to the EHR's base URL, the answer judged.

As the FHIR R4 RESTful API says for a transaction (hl7.org/fhir/R4/http.html#transaction):
the server answers 200 with a transaction-response Bundle when every entry succeeded, and an
HTTP error, usually with an OperationOutcome, when the transaction failed as a whole. So a
2xx is "filed"; a 4xx is the server refusing this Bundle ("rejected", with the
OperationOutcome's diagnostics or details text for the MA), except 408 Request Timeout and
429 Too Many Requests, which say "later"; a 5xx, a timeout or a connection that fails is
retried with backoff, the same Bundle again (its entries are conditional creates, so nothing
is created twice). Stdlib urllib: the project has no HTTP library as a dependency.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from station.errors import ConfigError, StationError
from station.gateway.config import GatewayFhir

RETRY_LATER = frozenset({408, 429})
MAX_REPLY = 1 << 20  # enough for a transaction-response or an OperationOutcome


class FhirDeliveryError(StationError):
    """The FHIR server could not be reached, timed out, or answered 5xx / 408 / 429."""


@dataclass(frozen=True)
class FhirReply:
    accepted: bool
    status: int
    text: str  # for a refusal: what the server said (OperationOutcome), for the MA


def outcome_text(body: bytes) -> str:
    """The issues of an OperationOutcome as one line (diagnostics, else details.text)."""
    try:
        resource = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(resource, dict) or resource.get("resourceType") != "OperationOutcome":
        return ""
    said = []
    for issue in resource.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or ""
        if text:
            said.append(str(text))
    return "; ".join(said)


def read_token(settings: GatewayFhir) -> str:
    if settings.token_file is None:
        return ""
    try:
        token = settings.token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(str(settings.token_file), [f"cannot read the FHIR token: {exc}"]
                          ) from exc
    if not token or any(c.isspace() for c in token):
        raise ConfigError(str(settings.token_file), [
            "the FHIR bearer token is empty or has spaces in it (expected one token)"])
    return token


class FhirClient:
    def __init__(self, settings: GatewayFhir) -> None:
        self.settings = settings
        self._token = read_token(settings)
        self._context: ssl.SSLContext | None = None
        if settings.base_url.startswith("https://"):
            self._context = ssl.create_default_context(
                cafile=str(settings.ca_file) if settings.ca_file else None)

    def post_transaction(self, bundle: dict[str, Any]) -> FhirReply:
        """POST [base] the transaction; a reply to judge, or FhirDeliveryError to retry."""
        headers = {"Content-Type": "application/fhir+json; charset=utf-8",
                   "Accept": "application/fhir+json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(  # noqa: S310 - https (or a test's http) only
            self.settings.base_url, data=json.dumps(bundle).encode(), headers=headers,
            method="POST")
        where = self.settings.base_url
        try:
            with urllib.request.urlopen(  # noqa: S310
                    request, timeout=self.settings.timeout_s, context=self._context) as reply:
                reply.read(MAX_REPLY)
                return FhirReply(True, reply.status, "")
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in RETRY_LATER:
                # The status line only: a server's error text may name the patient, and this
                # one is logged.
                raise FhirDeliveryError(
                    f"the FHIR server {where} answered {exc.code} {exc.reason}") from exc
            body = exc.read(MAX_REPLY) if exc.fp is not None else b""
            said = outcome_text(body) or f"HTTP {exc.code} {exc.reason}"
            return FhirReply(False, exc.code, said)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FhirDeliveryError(f"cannot reach the FHIR server {where}: {reason}") from exc

    def close(self) -> None:
        """Nothing held open: urllib opens a connection per request."""
