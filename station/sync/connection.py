"""The broker connection: paho-mqtt 2.x (callback API v2) with TLS (mutual when a client
certificate is configured), username/password, the retained last will, backoff, and the
words an operator can act on when connecting fails."""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from station.config import BrokerSection

QOS = 1  # a clinical record may arrive twice (dedup by message_id), never zero times
UNSUPPORTED_PROTOCOL = 132  # MQTT 5 CONNACK reason; a 3.1.1 broker answers return code 1


def describe_connect_error(exc: BaseException | None) -> str:
    """A connection failure in words a biomed or IT person can act on."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate was not accepted ({exc.verify_message})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed ({exc.reason or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the broker running on this port?)"
    if isinstance(exc, OSError):
        return f"network error ({exc.strerror or exc})"
    return "unknown error"


class _ClosingSSLSocket(ssl.SSLSocket):
    """paho leaves the socket open when the TLS handshake fails; over days of retries that
    leaks one file descriptor per attempt. Close it before the error propagates."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


class _StationTlsContext(ssl.SSLContext):
    sslsocket_class = _ClosingSSLSocket


def tls_context(broker: BrokerSection) -> ssl.SSLContext:
    """Verify the broker against the practice CA (hostname included); mutual TLS if a client
    certificate is configured."""
    context = _StationTlsContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(broker.ca_file))
    if broker.cert_file is not None and broker.key_file is not None:
        context.load_cert_chain(str(broker.cert_file), str(broker.key_file))
    return context


class ErrorLogger(logging.Logger):
    """paho's logger for one link: ERROR records go to `sink`, nothing else is formatted
    (debug lines stop at the level check) and nothing propagates to the station's logs."""

    def __init__(self, sink: Callable[[logging.LogRecord], None]) -> None:
        super().__init__("station.sync.mqtt.paho", logging.ERROR)
        self.propagate = False
        self._sink = sink

    def handle(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # never raise into paho's loop
            self._sink(record)


def make_client(
    broker: BrokerSection,
    *,
    client_id: str,
    protocol: MQTTProtocolVersion,
    will: tuple[str, bytes],
    inflight_window: int,
    reconnect: tuple[int, int],
    callbacks: dict[str, Any],
    errors: ErrorLogger,
) -> paho.Client:
    """A connecting paho client (connect_async + loop_start), its last will set.

    `callbacks` maps paho's attribute names (on_connect, on_publish, ...) to handlers."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if protocol == paho.MQTTv5 else True,
    )
    if broker.ca_file is not None:
        client.tls_set_context(tls_context(broker))
    if broker.username is not None:
        password = None
        if broker.password_file is not None:
            password = broker.password_file.read_text(encoding="utf-8").strip()
        client.username_pw_set(broker.username, password)
    will_topic, will_body = will
    client.will_set(will_topic, will_body, QOS, retain=True)
    client.max_inflight_messages_set(inflight_window)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(*reconnect)
    for name, handler in callbacks.items():
        setattr(client, name, handler)
    # paho's errors via a logger that stops at ERROR, not `on_log`: with `on_log` set, paho
    # formats a debug line for every PUBLISH and PUBACK (a string per message that bare
    # paho does not build).
    client.enable_logger(errors)
    client.connect_async(broker.host, broker.port, keepalive=broker.keepalive_s)
    client.loop_start()
    return client
