"""`station demo --gateway`: the real gateway between the demo's broker and a stand-in EHR.

The EHR is python-hl7's MLLP server (PyPI `hl7`, hl7.mllp; installed by `make venv`) on
loopback: it parses each message, hands its text to the demo to print, and answers with an
original-mode ACK (MSA-1 AA, MSA-2 the message's MSH-10) built by python-hl7. The gateway is
`station gateway run` as a process of its own, with a settings file written for the demo.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEMO_GATEWAY_ID = "practice-gateway-1"


class DemoEhr:
    """A stand-in EHR: an MLLP listener on 127.0.0.1 (a free port) that ACKs AA every message
    and gives `on_message` the message's ER7 text (segments separated by CR)."""

    def __init__(self, on_message: Callable[[str], None]) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.received = 0
        self._on_message = on_message
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        try:
            import hl7.mllp  # noqa: F401 - a clear error now rather than in the thread
        except ImportError as exc:
            raise RuntimeError(
                "the demo's EHR needs python-hl7 (PyPI `hl7`; `make venv` installs it)"
            ) from exc
        self._thread = threading.Thread(target=self._run, name="demo-ehr", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._error is not None:
            raise RuntimeError(f"the demo's EHR (MLLP listener) did not start: {self._error}")

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start(); nothing else may see the thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        from hl7.mllp import start_hl7_server

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await start_hl7_server(self._client, self.host, 0, encoding="utf-8")
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _client(self, reader: Any, writer: Any) -> None:
        try:
            while True:
                try:
                    message = await reader.readmessage()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.received += 1
                self._on_message(str(message))
                writer.writemessage(message.create_ack("AA"))
                await writer.drain()
        finally:
            writer.close()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)


def readable(er7: str) -> str:
    """An HL7 message for a person: one segment per line."""
    return "\n".join(segment for segment in er7.replace("\r\n", "\r").split("\r") if segment)


def gateway_toml(broker: tuple[str, int], ehr: DemoEhr, store: Path) -> str:
    host, port = broker
    return (
        "# The demo's gateway: plain TCP to the demo's own broker on loopback only.\n"
        f"[broker]\nhost = '{host}'\nport = {port}\nrequire_tls = false\n"
        f"client_id = '{DEMO_GATEWAY_ID}'\nsession_expiry_s = 3600\n"
        f"[mllp]\nhost = '{ehr.host}'\nport = {ehr.port}\nconnection = 'persistent'\n"
        "ack_timeout_s = 10\nretry_min_s = 0.5\nretry_max_s = 5\n"
        "[hl7]\nreceiving_application = 'DEMO-EHR'\n"
        f"[store]\npath = '{store}'\n"
    )


class DemoGateway:
    """`station gateway run` as a process, between the demo's broker and the DemoEhr."""

    def __init__(self, directory: Path, broker: tuple[str, int], ehr: DemoEhr) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.config = directory / "gateway.toml"
        self.config.write_text(gateway_toml(broker, ehr, directory / "gateway.sqlite3"))
        self.log = directory / "gateway.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "station", "gateway", "run", "--config", str(self.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # Ctrl-C stops the demo, which then stops the gateway
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"station gateway exited: {self.log_tail()}")
            if "station gateway: subscribed" in self.log.read_text(errors="replace"):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"station gateway did not subscribe: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None
