"""`station gateway run|status|sample`: the practice-side gateway from MQTT into the EHR."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

from station.cli.common import add_command, fail
from station.errors import ConfigError
from station.gateway.config import (
    SAMPLE_GATEWAY_CONFIG,
    gateway_config_path,
    load_gateway_settings,
)

EXAMPLES = """\
  station gateway run                 # /etc/station/gateway.toml or $STATION_GATEWAY_CONFIG
  station gateway run --config ./gateway.toml
  station gateway status                        # queue, lag, last downstream error
  station gateway status --json
  station gateway status --prometheus > /var/lib/node_exporter/textfile/rooming_gateway.prom
  station gateway sample > gateway.toml         # a commented starting point
  station config check --gateway ./gateway.toml"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "gateway",
        summary="the practice side: stations' vitals and check-ins into the EHR over HL7 v2",
        description="Runs on the practice's server, not on a station. Takes every station's "
        "vitals, checkin and alert messages from the broker (an MQTT 5 shared subscription: "
        "replicas split the load), keeps each once by message_id in a durable store, sends "
        "them to the EHR or interface engine as HL7 v2.5.1 (ORU^R01 per IHE PCD-01, ADT^A04) "
        "over MLLP, and publishes the station's ack: received on AA, rejected with the EHR's "
        "reason on AE/AR. A message the EHR does not answer is sent again, in order, never "
        "dropped. See docs/deploy-practice.md.",
        examples=EXAMPLES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run_p = actions.add_parser("run", help="run the gateway (what rooming-gateway.service runs)")
    run_p.add_argument("--config", metavar="FILE", help="default: " + str(gateway_config_path()))
    run_p.set_defaults(func=run)
    status = actions.add_parser("status", help="queue depth, lag, outcomes, last EHR error")
    status.add_argument("--config", metavar="FILE", help="default: " + str(gateway_config_path()))
    shape = status.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="one JSON object")
    shape.add_argument(
        "--prometheus",
        action="store_true",
        help="Prometheus text (format 0.0.4), e.g. for node_exporter's textfile collector",
    )
    status.set_defaults(func=run_status)
    sample = actions.add_parser("sample", help="print a commented sample gateway.toml")
    sample.set_defaults(func=lambda args: print(SAMPLE_GATEWAY_CONFIG, end="") or 0)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_gateway_settings(args.config)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        print("station: refusing to start the gateway with a bad settings file",
              file=sys.stderr)
        return 2
    import logging

    from station.gateway.service import Gateway
    from station.sdnotify import Notifier

    # The gateway logs message ids, topics and transport errors, never a payload.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    gateway = Gateway(settings)
    gateway.start()
    notifier = Notifier.from_environment()
    subscribed = gateway.wait_subscribed(30)
    notifier.ready("subscribed" if subscribed else "waiting for the broker")
    print(f"station gateway: {'subscribed' if subscribed else 'waiting for the broker'} "
          f"({settings.broker.host}:{settings.broker.port}, group "
          f"{settings.broker.share_group}) -> MLLP {settings.mllp.host}:{settings.mllp.port}",
          file=sys.stderr, flush=True)
    while not stop.wait(5):
        notifier.watchdog()
    gateway.stop()
    return 0


def run_status(args: argparse.Namespace) -> int:
    try:
        settings = load_gateway_settings(args.config)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        return 2
    path = settings.store.path
    if settings.store.kind == "sqlite" and not path.exists():
        return fail(f"no gateway store at {path} (has the gateway run yet?)")
    from station.gateway.store import open_store

    try:
        store = open_store(settings.store)
    except Exception as exc:  # psycopg's errors: the shared database is not reachable
        return fail(f"cannot open the gateway store: {exc}")
    try:
        stats = store.stats()
    finally:
        store.close()
    now = time.time()
    if args.prometheus:
        from station.gateway.metrics import prometheus_text

        print(prometheus_text(stats, now), end="")
        return 0
    lag = stats.lag_s(now)
    report = {
        "queued": stats.queued,
        "lag_s": None if lag is None else round(lag, 1),
        "head_attempts": stats.head_attempts,
        "filed": stats.filed,
        "rejected": stats.rejected,
        "acks_unpublished": stats.acks_unpublished,
        "last_downstream_error": stats.last_error,
        "last_downstream_error_age_s": None if stats.last_error_at is None
        else round(now - stats.last_error_at, 1),
        "sender": stats.sender,
    }
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"queued for the EHR: {stats.queued}"
          + ("" if lag is None else f" (oldest waiting {lag:.0f} s, "
             f"tried {stats.head_attempts} time(s))"))
    print(f"filed: {stats.filed}   rejected: {stats.rejected}   "
          f"acks not yet published: {stats.acks_unpublished}")
    if stats.last_error:
        print(f"last downstream error ({report['last_downstream_error_age_s']} s ago): "
              f"{stats.last_error}")
    else:
        print("last downstream error: none")
    print(f"sending replica: {stats.sender or 'none'}")
    return 0
