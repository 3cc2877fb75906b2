"""The gateway's health as Prometheus text (exposition format 0.0.4), for a node_exporter
textfile collector or any scraper: `station gateway status --prometheus`.

Numbers only. The last downstream error's text stays out (an EHR's words can name a patient;
`station gateway status` shows it to the person on the server), and so does anything with a
high cardinality: the sending replica is a label of an info metric, one series per replica.
"""

from __future__ import annotations

import math

from station.gateway.store import GatewayStats

PREFIX = "rooming_gateway"


def _label(value: str) -> str:
    """A label value, escaped as the exposition format says (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def prometheus_text(stats: GatewayStats, now: float) -> str:
    lag = stats.lag_s(now)
    error_age = math.nan if stats.last_error_at is None else max(0.0, now - stats.last_error_at)
    rows: list[tuple[str, str, str, float, str]] = [
        ("queued", "gauge", "Messages received from the broker and not yet filed in the EHR.",
         stats.queued, ""),
        ("lag_seconds", "gauge",
         "How long the oldest queued message has waited (0 when nothing waits).",
         0.0 if lag is None else lag, ""),
        ("head_attempts", "gauge", "How often the message at the head of the queue was tried.",
         stats.head_attempts, ""),
        ("filed_total", "counter", "Messages the EHR accepted (AA / 2xx).", stats.filed, ""),
        ("rejected_total", "counter",
         "Messages the EHR refused (AE / AR / 4xx); the station shows the reason.",
         stats.rejected, ""),
        ("acks_unpublished", "gauge",
         "Outcomes not yet published back to the stations.", stats.acks_unpublished, ""),
        ("last_downstream_error_age_seconds", "gauge",
         "Seconds since the last error sending to the EHR (NaN: none recorded).", error_age, ""),
    ]
    if stats.sender:
        rows.append(("sender_info", "gauge", "The replica holding the send lease.", 1,
                     f'{{replica="{_label(stats.sender)}"}}'))
    lines: list[str] = []
    for name, kind, help_text, value, labels in rows:
        full = f"{PREFIX}_{name}"
        lines += [f"# HELP {full} {help_text}", f"# TYPE {full} {kind}",
                  f"{full}{labels} {_number(value)}"]
    return "\n".join(lines) + "\n"
