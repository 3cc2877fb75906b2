"""`station gateway status --prometheus`: the text exposition format, held to the Prometheus
project's own parser (prometheus_client.parser), with the escapes its format page requires
(prometheus.io/docs/instrumenting/exposition_formats: label values escape backslash, double
quote and line feed; NaN is a valid sample value)."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families

from station.gateway.metrics import prometheus_text
from station.gateway.store import GatewayStats


def stats(**changes: object) -> GatewayStats:
    base = dict(queued=0, filed=12, rejected=1, acks_unpublished=0,
                oldest_queued_received_at=None, head_attempts=0, last_error="",
                last_error_at=None, sender="")
    base.update(changes)
    return GatewayStats(**base)  # type: ignore[arg-type]


def parsed(text: str) -> dict[str, tuple[str, dict[str, str], float]]:
    return {s.name: (f.type, s.labels, s.value)
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_an_idle_gateway_with_no_error_recorded() -> None:
    got = parsed(prometheus_text(stats(), now=1000.0))
    assert got["rooming_gateway_queued"] == ("gauge", {}, 0.0)
    assert got["rooming_gateway_lag_seconds"] == ("gauge", {}, 0.0)
    assert got["rooming_gateway_filed_total"] == ("counter", {}, 12.0)
    assert got["rooming_gateway_rejected_total"] == ("counter", {}, 1.0)
    assert math.isnan(got["rooming_gateway_last_downstream_error_age_seconds"][2])
    assert "rooming_gateway_sender_info" not in got


def test_a_waiting_queue_and_a_replica_name_that_needs_escaping() -> None:
    text = prometheus_text(
        stats(queued=3, oldest_queued_received_at=940.0, head_attempts=5,
              last_error='EHR said "no" about ZZTEST, Alpha', last_error_at=990.0,
              sender='gw "east"\\1'),
        now=1000.0,
    )
    got = parsed(text)
    assert got["rooming_gateway_queued"][2] == 3.0
    assert got["rooming_gateway_lag_seconds"][2] == 60.0
    assert got["rooming_gateway_head_attempts"][2] == 5.0
    assert got["rooming_gateway_last_downstream_error_age_seconds"][2] == 10.0
    assert got["rooming_gateway_sender_info"] == ("gauge", {"replica": 'gw "east"\\1'}, 1.0)
    # The EHR's words (which can name a patient) never reach the metrics.
    assert "ZZTEST" not in text and 'said \\"no\\"' not in text and 'said "no"' not in text
