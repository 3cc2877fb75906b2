"""`station profiles list|check [FILE...]`: the firmware profiles the station knows, checked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from station.cli.common import add_command, fail
from station.devices.profiles import check_profile_files, load_profile, profile_dirs, profile_files
from station.errors import ConfigError

EXAMPLES = """\
  station profiles list
  station profiles check                          # every file in the profile directories
  station profiles check /etc/station/firmware_profiles/acme-scale.toml
A problem prints `FILE: KEY: what is wrong (expected ...)` and exits 2."""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "profiles",
        summary="list or check the firmware profiles (one TOML file per device model)",
        description="Firmware profiles say how to recognise and read each device model. "
        f"They are read from: {', '.join(str(d) for d in profile_dirs())} "
        "(set STATION_PROFILE_DIRS to change).",
        examples=EXAMPLES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="one line per profile")
    listing.set_defaults(func=run_list)
    check = actions.add_parser("check", help="check profile files (default: all of them)")
    check.add_argument("files", nargs="*", metavar="FILE", type=Path)
    check.set_defaults(func=run_check)


def run_list(args: argparse.Namespace) -> int:
    files = profile_files()
    errors = check_profile_files(files)
    if errors:
        for error in errors:
            print(error.describe(), file=sys.stderr)
        return 2
    for path in files:
        profile = load_profile(path)
        kinds = ",".join(k.value for k in profile.kinds)
        print(
            f"{profile.id:<28} {profile.transport.value:<6} {kinds:<30} "
            f"{profile.vendor} {profile.model}  [{' '.join(profile.codecs)}]"
        )
    return 0


def run_check(args: argparse.Namespace) -> int:
    files: list[Path] = list(args.files) or profile_files()
    if not files:
        return fail("no profile files found in " + ", ".join(str(d) for d in profile_dirs()))
    errors: list[ConfigError] = check_profile_files(files)
    for error in errors:
        print(error.describe(), file=sys.stderr)
    bad = {error.path for error in errors}
    print(f"{len(files) - len(bad)} of {len(files)} profile file(s) OK")
    return 2 if errors else 0
