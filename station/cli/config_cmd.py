"""`station config check|sample`: check a settings file before the station refuses it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from station.cli.common import add_command
from station.config import SAMPLE_CONFIG, config_path, load_settings
from station.errors import ConfigError

EXAMPLES = """\
  station config check                       # /etc/station/station.toml (or $STATION_CONFIG)
  station config check ./station.toml
  station config sample > station.toml       # a commented starting point
  station config check --gateway /etc/station/gateway.toml   # the practice gateway's file"""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "config",
        summary="check the station's settings file, or print a sample",
        description="Settings live in /etc/station/station.toml (override with STATION_CONFIG "
        "or a path). A bad file names the file, the key and what was expected; the station "
        "refuses to start with it. Every bound device's profile must be installed "
        "(station profiles list).",
        examples=EXAMPLES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="check a settings file (exit 0 good, 2 bad)")
    check.add_argument("file", nargs="?", metavar="FILE", help="default: " + str(config_path()))
    check.add_argument("--gateway", metavar="GATEWAY_FILE",
                       help="check the practice gateway's settings file instead "
                       "(station gateway; docs/deploy-practice.md)")
    check.set_defaults(func=run_check)
    sample = actions.add_parser("sample", help="print a commented sample settings file")
    sample.set_defaults(func=run_sample)


def run_check(args: argparse.Namespace) -> int:
    if args.gateway:
        return _check_gateway(args.gateway)
    from station.devices.profiles import check_settings

    try:
        settings = load_settings(args.file)
        # What `station run` would refuse later: a device whose profile is not installed.
        check_settings(settings, str(config_path(args.file)))
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        return 2
    path = config_path(args.file)
    print(
        f"{path}: OK — site {settings.station.site}, station {settings.station.station_id} "
        f"({settings.station.mode}), broker {settings.broker.host}:{settings.broker.port}"
        f"{' with TLS' if settings.broker.require_tls else ' WITHOUT TLS'}, "
        f"{len(settings.devices)} bound device(s)"
    )
    return 0


def _check_gateway(file: str) -> int:
    from station.gateway.config import load_gateway_settings

    try:
        gateway = load_gateway_settings(file)
    except ConfigError as exc:
        print(exc.describe(), file=sys.stderr)
        return 2
    if gateway.fhir is not None and "fhir" in gateway.routes.model_dump().values():
        from station.gateway.fhir_rest import read_token

        try:
            read_token(gateway.fhir)  # readable, one token: found now, not at the first send
        except ConfigError as exc:
            print(exc.describe(), file=sys.stderr)
            return 2
    broker, mllp, store = gateway.broker, gateway.mllp, gateway.store
    extra = "".join((
        f", alerts MLLP {gateway.alerts_mllp.host}:{gateway.alerts_mllp.port}"
        if gateway.alerts_mllp else "",
        f", FHIR {gateway.fhir.base_url}" if gateway.fhir else ""))
    print(
        f"{file}: OK — broker {broker.host}:{broker.port}"
        f"{' with TLS' if broker.require_tls else ' WITHOUT TLS'} as {broker.client_id} "
        f"(group {broker.share_group}; {', '.join(broker.channels)}), "
        f"MLLP {mllp.host}:{mllp.port}{extra}, store "
        f"{store.path if store.kind == 'sqlite' else 'PostgreSQL ' + store.dsn}"
    )
    return 0


def run_sample(args: argparse.Namespace) -> int:
    print(SAMPLE_CONFIG, end="")
    return 0
