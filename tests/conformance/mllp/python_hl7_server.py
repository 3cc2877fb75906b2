"""The EHR side where one connection carries many messages: python-hl7's MLLP server.

python-hl7 (PyPI `hl7`, hl7.mllp: asyncio MLLP streams, hl7.Message.create_ack) is another
project's MLLP listener and HL7 parser. node-hl7-server 2.5.0 (server.cjs beside this file)
cannot take a second message on one connection (it never empties its read buffer), so the
persistent-connection tests use this one.

    python python_hl7_server.py --port P --log FILE [--drop-after-ack N] [--drop-before-ack N]

FILE gets one JSON line per event, written before the ACK: {"event": "connect", "connection":
n} when a client connects, {"event": "message", "connection": n, "control_id", "type", "mrn",
"ack", "raw"} per message. --drop-after-ack N closes a connection after it has carried N
acknowledged messages (an engine's connection limit); --drop-before-ack N reads the Nth
message of the whole run and closes the connection without answering it (an engine that
crashes mid-message). Prints "listening <port>" once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path
from typing import Any

from hl7.mllp import start_hl7_server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--drop-after-ack", type=int, default=0)
    parser.add_argument("--drop-before-ack", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args))


async def serve(args: argparse.Namespace) -> None:
    connections = 0
    messages = 0

    def log(entry: dict[str, Any]) -> None:
        with args.log.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry) + "\n")

    async def client(reader: Any, writer: Any) -> None:
        nonlocal connections, messages
        connections += 1
        number = connections
        log({"event": "connect", "connection": number})
        carried = 0
        try:
            while True:
                try:
                    message = await reader.readmessage()
                except asyncio.IncompleteReadError:
                    return  # the client closed the connection
                messages += 1
                msh = message.segment("MSH")
                entry = {
                    "event": "message",
                    "connection": number,
                    "control_id": str(msh(10)),
                    "type": f"{msh(9)(1)(1)}^{msh(9)(1)(2)}",
                    "mrn": str(message.segment("PID")(3)(1)(1)),
                    "raw": str(message),
                }
                if messages == args.drop_before_ack:
                    log({**entry, "ack": "none"})
                    return
                log({**entry, "ack": "AA"})
                writer.writemessage(message.create_ack("AA"))
                await writer.drain()
                carried += 1
                if args.drop_after_ack and carried >= args.drop_after_ack:
                    return
        finally:
            writer.close()

    server = await start_hl7_server(client, "127.0.0.1", args.port, encoding="utf-8")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(f"listening {args.port}", flush=True)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    main()
