"""Device events the serial decoders emit besides readings: acknowledgements, status, errors."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class DeviceEventCode(StrEnum):
    """Closed vocabulary of what a serial device says that is not a measurement."""

    ACK = "ack"
    NAK = "nak"
    BUSY = "busy"
    MEASUREMENT_COMPLETE = "measurement_complete"  # SunTech 'K': ask for the BP data now
    ABORTED = "aborted"
    SLEEPING = "sleeping"
    DEVICE_ERROR = "device_error"
    UNKNOWN_COMMAND = "unknown_command"  # SMA `?`
    COMMUNICATION_ERROR = "communication_error"  # SMA `!`
    NOT_EXECUTABLE = "not_executable"  # MT-SICS `S I`: busy, e.g. still zeroing
    SYNTAX_ERROR = "syntax_error"  # MT-SICS ES
    TRANSMISSION_ERROR = "transmission_error"  # MT-SICS ET (parity, overrun: check the baud)
    LOGICAL_ERROR = "logical_error"  # MT-SICS EL
    ZERO_DONE = "zero_done"
    ZERO_FAILED = "zero_failed"
    NO_STABLE_WEIGHT = "no_stable_weight"  # SMA P/Q: the scale did not settle in its timeout
    TARE_WEIGHT = "tare_weight"  # SMA `T` reply: the tare, not a patient's weight
    FIRMWARE_REVISION = "firmware_revision"
    REPLY = "reply"  # a valid frame of a kind this codec does not interpret; raw kept


class DeviceEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    event: Literal["device_event"] = "device_event"
    codec: str
    code: DeviceEventCode
    detail: str = ""
    raw_hex: str
