"""Record Access Control Point 0x2A52: requests we write and the responses devices indicate."""

from __future__ import annotations

from datetime import datetime
from enum import IntEnum
from typing import Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from station.devices.codecs.gatt._frame import FrameReader
from station.devices.codecs.ieee11073 import DATE_TIME_SIZE, encode_date_time

CODEC: Final = "ble:2a52"
VERSION: Final = "1.1"


class OpCode(IntEnum):
    REPORT_RECORDS = 1
    DELETE_RECORDS = 2
    ABORT = 3
    REPORT_COUNT = 4
    COUNT_RESPONSE = 5
    RESPONSE_CODE = 6


class Operator(IntEnum):
    NULL = 0
    ALL = 1
    LESS_OR_EQUAL = 2
    GREATER_OR_EQUAL = 3
    RANGE = 4
    FIRST = 5
    LAST = 6


class FilterType(IntEnum):
    SEQUENCE_NUMBER = 1  # uint16
    USER_FACING_TIME = 2  # Date Time, 7 bytes


class ResponseCode(IntEnum):
    SUCCESS = 1
    OP_CODE_NOT_SUPPORTED = 2
    INVALID_OPERATOR = 3
    OPERATOR_NOT_SUPPORTED = 4
    INVALID_OPERAND = 5
    NO_RECORDS_FOUND = 6
    ABORT_UNSUCCESSFUL = 7
    PROCEDURE_NOT_COMPLETED = 8
    OPERAND_NOT_SUPPORTED = 9


REQUEST_OPS: Final = (
    OpCode.REPORT_RECORDS,
    OpCode.DELETE_RECORDS,
    OpCode.ABORT,
    OpCode.REPORT_COUNT,
)
# How many operands each operator takes (each one filter-typed value).
OPERAND_COUNT: Final[dict[Operator, int]] = {
    Operator.NULL: 0,
    Operator.ALL: 0,
    Operator.LESS_OR_EQUAL: 1,
    Operator.GREATER_OR_EQUAL: 1,
    Operator.RANGE: 2,
    Operator.FIRST: 0,
    Operator.LAST: 0,
}

Operand = int | datetime | None
E = TypeVar("E", bound=IntEnum)


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    codec: str = CODEC
    codec_version: str = VERSION
    raw_hex: str = ""


class RacpRequest(_Message):
    """Report / delete / count stored records, or abort (written by the collector)."""

    message: Literal["request"] = "request"
    op_code: OpCode
    operator: Operator
    filter_type: FilterType | None = None
    low: Operand = None  # the operand for <=, >= and the first one of a range
    high: Operand = None  # the end of a range


class RacpCountResponse(_Message):
    message: Literal["count_response"] = "count_response"
    record_count: int


class RacpResponse(_Message):
    """The server's answer to a request.

    `request_op_code` is echoed as the server received it: GLS 1.0.1 and PLXP 1.0.1 (RACP
    error handling) make a server answer an op code it does not support with exactly that
    echo and "op code not supported", so any value is accepted here. A response code the
    specification does not define (some stacks send 0x0A for "busy") is reported as
    `unknown`, not refused: the exchange is over either way and the collector must know.
    """

    message: Literal["response_code"] = "response_code"
    request_op_code: int  # as echoed; 1–4 are the requests a collector sends
    response_code: int  # as sent
    request: str  # the op code's name, or "undefined" (e.g. 12 in "op code not supported")
    response: str  # the response code's name, or "unknown"


RacpMessage = RacpRequest | RacpCountResponse | RacpResponse


def _enum(reader: FrameReader, kind: type[E], value: int, label: str) -> E:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(f"{m.value} {m.name.lower()}" for m in kind)
        raise reader.fail(f"{label} {value} is not defined", expected=known) from None


def _name(kind: type[IntEnum], value: int, otherwise: str) -> str:
    try:
        return kind(value).name.lower()
    except ValueError:
        return otherwise


def decode(raw: bytes) -> RacpMessage:
    reader = FrameReader(raw, CODEC)
    op_code = _enum(reader, OpCode, reader.u8("op code"), "op code")
    operator = _enum(reader, Operator, reader.u8("operator"), "operator")
    no_operator = (OpCode.COUNT_RESPONSE, OpCode.RESPONSE_CODE, OpCode.ABORT)
    if op_code in no_operator and operator != Operator.NULL:
        raise reader.fail(
            f"op code {op_code.value} ({op_code.name.lower()}) with operator {operator.value}",
            expected="operator 0 (null)",
        )
    if op_code == OpCode.COUNT_RESPONSE:
        count = reader.u16("number of records (uint16)")
        reader.finish("a count response")
        return RacpCountResponse(record_count=count, raw_hex=raw.hex())
    if op_code == OpCode.RESPONSE_CODE:
        request = reader.u8("request op code")
        code = reader.u8("response code")
        reader.finish("a response code")
        return RacpResponse(
            request_op_code=request,
            response_code=code,
            request=_name(OpCode, request, "undefined"),
            response=_name(ResponseCode, code, "unknown"),
            raw_hex=raw.hex(),
        )
    if op_code != OpCode.ABORT and operator == Operator.NULL:
        raise reader.fail(
            f"op code {op_code.value} ({op_code.name.lower()}) with the null operator",
            expected="operator 1–6",
        )
    operands = OPERAND_COUNT[operator]
    filter_type: FilterType | None = None
    values: list[Operand] = []
    if operands:
        filter_type = _enum(
            reader,
            FilterType,
            reader.u8(f"operator {operator.value} needs a filter type"),
            "filter type",
        )
        for _ in range(operands):
            if filter_type == FilterType.SEQUENCE_NUMBER:
                values.append(reader.u16(f"operator {operator.value} needs a sequence number"))
            else:
                values.append(reader.date_time(f"operator {operator.value} needs a date time"))
    reader.finish(f"op code {op_code.value} with operator {operator.value}")
    return RacpRequest(
        op_code=op_code,
        operator=operator,
        filter_type=filter_type,
        low=values[0] if values else None,
        high=values[1] if len(values) > 1 else None,
        raw_hex=raw.hex(),
    )


def _operand(filter_type: FilterType, value: Operand) -> bytes:
    if filter_type == FilterType.SEQUENCE_NUMBER:
        if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise ValueError(f"sequence number {value!r}: expected an integer 0–65535")
        return value.to_bytes(2, "little")
    if not isinstance(value, datetime):
        raise ValueError(f"user facing time {value!r}: expected a datetime")
    encoded = encode_date_time(value)
    assert len(encoded) == DATE_TIME_SIZE
    return encoded


def encode_request(
    op_code: OpCode,
    operator: Operator = Operator.ALL,
    *,
    filter_type: FilterType | None = None,
    low: Operand = None,
    high: Operand = None,
) -> bytes:
    """A request to write: e.g. `encode_request(OpCode.REPORT_RECORDS)` = report all records."""
    if op_code not in REQUEST_OPS:
        raise ValueError(f"op code {op_code!r} is not a request: expected one of {REQUEST_OPS}")
    if op_code == OpCode.ABORT:
        operator = Operator.NULL
    elif operator == Operator.NULL:
        raise ValueError(f"{op_code.name.lower()} needs an operator other than null")
    given = [v for v in (low, high) if v is not None]
    needed = OPERAND_COUNT[operator]
    if len(given) != needed or (needed and filter_type is None):
        raise ValueError(
            f"operator {operator.name.lower()} takes {needed} operand(s) and "
            f"{'a' if needed else 'no'} filter type; got {len(given)}"
        )
    frame = bytes((op_code, operator))
    if needed and filter_type is not None:
        frame += bytes((filter_type,)) + b"".join(_operand(filter_type, v) for v in given)
    return frame


def encode_count_response(record_count: int) -> bytes:
    """What a device indicates in answer to "report number of stored records"."""
    if not 0 <= record_count <= 0xFFFF:
        raise ValueError(f"record count {record_count}: expected 0–65535")
    return bytes((OpCode.COUNT_RESPONSE, Operator.NULL)) + record_count.to_bytes(2, "little")


def encode_response(request_op_code: int, response_code: int) -> bytes:
    """What a device indicates when a request is done (or refused): any echo, any code 0–255."""
    for label, value in (("request op code", request_op_code), ("response code", response_code)):
        if not 0 <= value <= 0xFF:
            raise ValueError(f"{label} {value}: expected 0–255")
    return bytes((OpCode.RESPONSE_CODE, Operator.NULL, request_op_code, response_code))
