"""A private system-like D-Bus (its own dbus-daemon) and a `bluetoothctl` stub for bleak."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

# Session-like policy on a bus of type "system": the fake org.bluez owns its name, bleak and
# the station's agent talk to it. Nothing else ever connects to this socket.
_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""

# bleak refuses BlueZ older than 5.55 and asks `bluetoothctl --version`.
BLUEZ_VERSION = "5.72"
_BLUETOOTHCTL = f"""#!/bin/sh
# Stub for bleak's BlueZ version check; the fake BlueZ speaks the 5.72 D-Bus API.
if [ "$1" = "--version" ]; then echo "bluetoothctl: {BLUEZ_VERSION}"; exit 0; fi
echo "bluetoothctl stub: only --version is supported" >&2
exit 1
"""


class PrivateBus:
    """`dbus-daemon --config-file=<generated> --print-address` in a work directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.address = ""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bin_dir(self) -> Path:
        return self.workdir / "bin"

    def start(self) -> str:
        daemon = shutil.which("dbus-daemon")
        if daemon is None:
            raise RuntimeError(
                "dbus-daemon not found: install the Debian package dbus-daemon "
                "(scripts/debian-deps does)"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "system-bus.conf"
        conf.write_text(_CONFIG.format(socket=self.workdir / "system_bus_socket"))
        self.bin_dir.mkdir(exist_ok=True)
        stub = self.bin_dir / "bluetoothctl"
        stub.write_text(_BLUETOOTHCTL)
        stub.chmod(stub.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        with (self.workdir / "dbus-daemon.log").open("wb") as daemon_log:
            self._proc = subprocess.Popen(
                [daemon, f"--config-file={conf}", "--nofork", "--nopidfile", "--print-address=1"],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                # it complains about fd limits it may not raise; keep that out of the output
                stderr=daemon_log,
            )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        if not line:
            self.stop()
            raise RuntimeError("dbus-daemon exited without printing its address")
        self.address = line
        return line

    def environment(self) -> dict[str, str]:
        """What a process needs so bleak and dbus-fast find this bus and the stub."""
        return {
            "DBUS_SYSTEM_BUS_ADDRESS": self.address,
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None
