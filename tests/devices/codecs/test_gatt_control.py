"""Record Access Control Point 0x2A52 and Current Time 0x2A2B: requests, responses, clocks."""

from __future__ import annotations

from datetime import datetime

import pytest

from station.devices.codecs.gatt import current_time as ct
from station.devices.codecs.gatt import racp
from station.errors import FrameError

# ---- RACP ----------------------------------------------------------------------------------


NORDIC_RACP = (
    "NordicSemiconductor/Android-BLE-Common-Library@c078e2579fe5c0b6d29d70cd9fc9614ac7c0d355 "
    "ble-common/src/test/java/no/nordicsemi/android/ble/common/callback/"
    "RecordAccessControlPointDataCallbackTest.java"
)


def test_reference_example_no_records_found() -> None:
    assert racp.decode(bytes.fromhex("06 00 01 06")) == racp.RacpResponse(
        request_op_code=1,
        response_code=6,
        request="report_records",
        response="no_records_found",
        raw_hex="06000106",
    )


def test_op_code_not_supported_echoes_the_unsupported_op_code() -> None:
    """GLS/PLXP RACP error handling: an unsupported op code comes back echoed with code 2.

    Regression (issue 12): `06 00 0C 02` was refused because 12 is no RACP op code. Bytes and
    assertion (error 2, request code 12) from NORDIC_RACP
    onRecordAccessOperationError_opCodeNotSupported.
    """
    assert racp.decode(bytes.fromhex("06 00 0C 02")) == racp.RacpResponse(
        request_op_code=12,
        response_code=2,
        request="undefined",
        response="op_code_not_supported",
        raw_hex="06000c02",
    )


def test_unknown_response_code_is_reported_not_refused() -> None:
    """NORDIC_RACP onRecordAccessOperationError_unknownErrorCode: `06 00 01 0A` -> error 10."""
    message = racp.decode(bytes.fromhex("06 00 01 0A"))
    assert isinstance(message, racp.RacpResponse)
    assert (message.request_op_code, message.request) == (1, "report_records")
    assert (message.response_code, message.response) == (10, "unknown")


def test_count_response() -> None:
    assert racp.decode(bytes.fromhex("05 00 2A00")) == racp.RacpCountResponse(
        record_count=42, raw_hex="05002a00"
    )
    assert racp.encode_count_response(42) == bytes.fromhex("05 00 2A00")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "01 01",
            racp.RacpRequest(op_code=racp.OpCode.REPORT_RECORDS, operator=racp.Operator.ALL),
        ),
        (
            "02 05",
            racp.RacpRequest(op_code=racp.OpCode.DELETE_RECORDS, operator=racp.Operator.FIRST),
        ),
        ("03 00", racp.RacpRequest(op_code=racp.OpCode.ABORT, operator=racp.Operator.NULL)),
        (
            "04 06",
            racp.RacpRequest(op_code=racp.OpCode.REPORT_COUNT, operator=racp.Operator.LAST),
        ),
        (
            "01 03 01 0A00",
            racp.RacpRequest(
                op_code=racp.OpCode.REPORT_RECORDS,
                operator=racp.Operator.GREATER_OR_EQUAL,
                filter_type=racp.FilterType.SEQUENCE_NUMBER,
                low=10,
            ),
        ),
        (
            "02 04 01 0A00 1400",
            racp.RacpRequest(
                op_code=racp.OpCode.DELETE_RECORDS,
                operator=racp.Operator.RANGE,
                filter_type=racp.FilterType.SEQUENCE_NUMBER,
                low=10,
                high=20,
            ),
        ),
        (
            "01 02 02 E907 0B 17 08 00 00",
            racp.RacpRequest(
                op_code=racp.OpCode.REPORT_RECORDS,
                operator=racp.Operator.LESS_OR_EQUAL,
                filter_type=racp.FilterType.USER_FACING_TIME,
                low=datetime(2025, 11, 23, 8, 0, 0),
            ),
        ),
    ],
)
def test_requests_decode_and_encode(raw: str, message: racp.RacpRequest) -> None:
    frame = bytes.fromhex(raw)
    assert racp.decode(frame) == message.model_copy(update={"raw_hex": frame.hex()})
    assert (
        racp.encode_request(
            message.op_code,
            message.operator,
            filter_type=message.filter_type,
            low=message.low,
            high=message.high,
        )
        == frame
    )


def test_every_response_code() -> None:
    for code in racp.ResponseCode:
        frame = racp.encode_response(racp.OpCode.DELETE_RECORDS, code)
        assert frame == bytes((6, 0, 2, code.value))
        assert racp.decode(frame) == racp.RacpResponse(
            request_op_code=2,
            response_code=code.value,
            request="delete_records",
            response=code.name.lower(),
            raw_hex=frame.hex(),
        )


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "op code: need 1 bytes, got 0"),
        ("01", "operator: need 2 bytes, got 1"),
        ("07 00", "op code 7 is not defined"),
        ("01 07", "operator 7 is not defined"),
        ("01 00", "op code 1 (report_records) with the null operator"),
        ("03 01", "op code 3 (abort) with operator 1"),
        ("06 01 01 01", "op code 6 (response_code) with operator 1"),
        ("06 00 01", "response code: need 4 bytes, got 3"),
        ("06 00 01 0A 00", "1 byte(s) left over: a response code give 4 bytes, got 5"),
        ("05 00 01", "number of records (uint16): need 4 bytes, got 3"),
        ("05 00 0100 00", "1 byte(s) left over: a count response give 4 bytes, got 5"),
        ("01 03", "operator 3 needs a filter type: need 3 bytes, got 2"),
        ("01 03 03 0000", "filter type 3 is not defined"),
        ("01 04 01 0A00", "operator 4 needs a sequence number: need 7 bytes, got 5"),
        ("01 02 02 E907", "operator 2 needs a date time: need 10 bytes, got 5"),
        ("01 01 01", "1 byte(s) left over: op code 1 with operator 1 give 2 bytes, got 3"),
    ],
)
def test_racp_malformed(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        racp.decode(bytes.fromhex(raw))
    assert caught.value.problem == problem
    assert caught.value.codec == "ble:2a52"


def test_undefined_op_code_lists_what_is_expected() -> None:
    with pytest.raises(FrameError) as caught:
        racp.decode(bytes.fromhex("00 00"))
    assert caught.value.expected == (
        "1 report_records, 2 delete_records, 3 abort, 4 report_count, 5 count_response, "
        "6 response_code"
    )


def test_request_encoder_refuses_wrong_operands() -> None:
    assert racp.encode_request(racp.OpCode.ABORT) == bytes.fromhex("0300")
    with pytest.raises(ValueError, match="takes 1 operand"):
        racp.encode_request(racp.OpCode.REPORT_RECORDS, racp.Operator.LESS_OR_EQUAL)
    with pytest.raises(ValueError, match="is not a request"):
        racp.encode_request(racp.OpCode.RESPONSE_CODE)
    with pytest.raises(ValueError, match="sequence number"):
        racp.encode_request(
            racp.OpCode.REPORT_RECORDS,
            racp.Operator.GREATER_OR_EQUAL,
            filter_type=racp.FilterType.SEQUENCE_NUMBER,
            low=70000,
        )


# ---- Current Time ----------------------------------------------------------------------------


def test_current_time_decodes_every_field() -> None:
    raw = bytes.fromhex("E907 0B 17 0F 1E 2D 07 80 0F")  # Sunday 2025-11-23 15:30:45 + 0.5 s
    assert ct.decode(raw) == ct.CurrentTime(
        date_time=datetime(2025, 11, 23, 15, 30, 45),
        day_of_week=7,
        raw_day_of_week=7,
        fractions_256=128,
        manual_time_update=True,
        external_reference_time_update=True,
        time_zone_changed=True,
        dst_changed=True,
        raw_adjust_reason=0x0F,
        raw_hex=raw.hex(),
    )


def test_current_time_unknown() -> None:
    raw = bytes(10)
    assert ct.decode(raw) == ct.CurrentTime(
        date_time=None,
        day_of_week=None,
        raw_day_of_week=0,
        fractions_256=0,
        manual_time_update=False,
        external_reference_time_update=False,
        time_zone_changed=False,
        dst_changed=False,
        raw_adjust_reason=0,
        raw_hex="00" * 10,
    )


def test_current_time_encoder_sets_a_clock() -> None:
    when = datetime(2025, 11, 23, 15, 30, 45, 500000)
    frame = ct.encode(when, manual_time_update=True)
    assert frame == bytes.fromhex("E907 0B 17 0F 1E 2D 07 80 01")
    decoded = ct.decode(frame)
    assert decoded.date_time == when.replace(microsecond=0)
    assert decoded.fractions_256 == 128
    assert ct.encode("unknown") == bytes(10)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("E907 0B 17 0F 1E", "date time (7 bytes, always present): need 7 bytes, got 6"),
        ("E907 0B 17 0F 1E 2D 07 80", "adjust reason (always present): need 10 bytes, got 9"),
        (
            "E907 0B 17 0F 1E 2D 07 00 00 00",
            "1 byte(s) left over: the Current Time fields give 10 bytes, got 11",
        ),
        ("E907 0B 17 18 1E 2D 07 00 00", "date time hours 24: expected 0–23"),
    ],
)
def test_current_time_malformed(raw: str, problem: str) -> None:
    with pytest.raises(FrameError) as caught:
        ct.decode(bytes.fromhex(raw))
    assert caught.value.problem == problem
    assert caught.value.codec == "ble:2a2b"


@pytest.mark.parametrize(
    ("raw", "sent", "problem"),
    [
        # 2025-11-23 is a Sunday (ISO 7); Monday (1) does not match it.
        (
            "E907 0B 17 0F 1E 2D 01 00 00",
            1,
            "day of week 1 does not match 2025-11-23 (expected 7 or 0)",
        ),
        # CTS 1.1 §3.1 / GSS Day of Week: 8–255 reserved for future use.
        ("E907 0B 17 0F 1E 2D 08 00 00", 8, "day of week 8 is reserved (expected 0–7)"),
    ],
)
def test_current_time_keeps_the_time_when_the_day_of_week_is_wrong(
    raw: str, sent: int, problem: str
) -> None:
    """Regression (issue 12): a wrong or reserved day of week refused the whole frame.

    The time is what matters: it stays, the day is reported unknown with the reason.
    """
    decoded = ct.decode(bytes.fromhex(raw))
    assert decoded.date_time == datetime(2025, 11, 23, 15, 30, 45)
    assert decoded.day_of_week is None
    assert decoded.raw_day_of_week == sent
    assert decoded.day_of_week_problem == problem
