"""MLLP (HL7 v2 Minimal Lower Layer Protocol) client: one message out, its ACK back.

Framing per HL7 v2 Appendix C (MLLP release 2): <VT> message <FS><CR>, VT = 0x0B, FS = 0x1C,
CR = 0x0D; the reply (the ACK) comes framed the same way on the same connection. Any socket
error, a timeout or a reply that is no frame raises MllpError and closes the connection: the
caller sends the same message again later (same MSH-10), never a different one in between.
"""

from __future__ import annotations

import select
import socket

from station.errors import StationError

START = b"\x0b"
END = b"\x1c\x0d"
MAX_REPLY = 1 << 20  # an ACK is a few hundred bytes; a megabyte is no ACK


class MllpError(StationError):
    """The EHR's MLLP listener could not be reached or gave no ACK in time."""


def frame(message: str) -> bytes:
    return START + message.encode("utf-8") + END


class MllpClient:
    def __init__(self, host: str, port: int, *, connect_timeout_s: float = 10.0,
                 ack_timeout_s: float = 30.0, persistent: bool = False) -> None:
        self.host, self.port = host, port
        self.persistent = persistent
        self.connect_timeout_s, self.ack_timeout_s = connect_timeout_s, ack_timeout_s
        self._sock: socket.socket | None = None
        self._buffer = b""
        self.connections_opened = 0  # how often a connection was opened (status, tests)

    def _connect(self) -> socket.socket:
        if self._sock is not None and _peer_closed(self._sock):
            # A kept connection the listener closed while idle (its idle timeout, a restart):
            # open a new one now rather than lose the message's round trip to a dead socket.
            self.close()
        if self._sock is None:
            try:
                self._sock = socket.create_connection((self.host, self.port),
                                                      timeout=self.connect_timeout_s)
            except OSError as exc:
                raise MllpError(f"cannot connect to the EHR's MLLP listener "
                                f"{self.host}:{self.port}: {exc}") from exc
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buffer = b""
            self.connections_opened += 1
        return self._sock

    def send(self, message: str) -> str:
        """Send one ER7 message and return the reply's ER7 (the ACK), unframed."""
        sock = self._connect()
        try:
            sock.settimeout(self.ack_timeout_s)
            sock.sendall(frame(message))
            reply = self._read_frame(sock)
        except TimeoutError as exc:
            self.close()
            raise MllpError(f"no ACK from {self.host}:{self.port} within "
                            f"{self.ack_timeout_s:g} s") from exc
        except OSError as exc:
            self.close()
            raise MllpError(f"connection to {self.host}:{self.port} lost: {exc}") from exc
        if not self.persistent:
            self.close()
        return reply

    def _read_frame(self, sock: socket.socket) -> str:
        while END not in self._buffer:
            chunk = sock.recv(65536)
            if not chunk:
                self.close()
                raise MllpError(f"{self.host}:{self.port} closed the connection before "
                                "its ACK")
            self._buffer += chunk
            if len(self._buffer) > MAX_REPLY:
                self.close()
                raise MllpError(f"{self.host}:{self.port} sent over {MAX_REPLY} bytes "
                                "without an MLLP end block (0x1C 0x0D)")
        reply, _, self._buffer = self._buffer.partition(END)
        start = reply.find(START)
        if start < 0:
            self.close()
            raise MllpError(f"the reply from {self.host}:{self.port} has no MLLP start block "
                            f"(0x0B): {reply[:40]!r}")
        return reply[start + 1:].decode("utf-8", errors="replace")

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._buffer = b""


def _peer_closed(sock: socket.socket) -> bool:
    """True when the other end has closed (readable, and reading would give end of file)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        # Between messages a listener sends nothing: readable here means closed (or reset).
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True
