"""The redaction filter and the journal formatter: exact output for what gets logged by mistake."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import date

import pytest

from station.logs import (
    ConsoleFormatter,
    JournalFormatter,
    RecentErrors,
    Redacted,
    Redactor,
    format_fields,
    setup_logging,
)


@pytest.mark.parametrize(
    ("logged", "expected"),
    [
        (
            "patient family=ZZTEST given=Alpha dob=1961-04-12 mrn=TEST100001",
            "patient family=[redacted:name] given=[redacted:name] dob=[redacted:dob] "
            "mrn=[redacted:mrn]",
        ),
        (
            "Patient(family='ZZTEST', given=['Alpha'], "
            "birth_date=datetime.date(1961, 4, 12), mrn='TEST100001')",
            "Patient(family=[redacted:name], given=[redacted:name], birth_date=[redacted:dob], "
            "mrn=[redacted:mrn])",
        ),
        (
            '{"family": "ZZTEST", "given": ["Alpha"], "birthDate": "1961-04-12"}',
            '{"family": [redacted:name], "given": [redacted:name], "birthDate": [redacted:dob]}',
        ),
        ("complaint: chest pain for three days", "complaint: [redacted:text]"),
        (
            "reason_for_visit=knee hurts, device=cuff",
            "reason_for_visit=[redacted:text], device=cuff",
        ),
        ("looking up MRN TEST100001 failed", "looking up MRN [redacted:mrn] failed"),
        ("chart 00451234 not found", "chart [redacted:mrn] not found"),
        ("got 'chest pain since Tuesday' from the form", "got [redacted:text] from the form"),
        ("call 555-123-4567 or +1 (555) 123-4567", "call [redacted:phone] or [redacted:phone]"),
        ("mail zz.test@example.org now", "mail [redacted:email] now"),
        (
            "measured 2024-05-01T10:00:00Z, 12/31/1961, 31.12.1961, 19611231",
            "measured [redacted:date], [redacted:date], [redacted:date], [redacted:date]",
        ),
    ],
)
def test_patient_data_is_scrubbed_by_label_and_by_shape(logged: str, expected: str) -> None:
    assert Redactor().redact(logged) == expected


@pytest.mark.parametrize(
    "operational",
    [
        "published message_id=3f2a1b6c-1234-4abc-8def-123456789012 depth=3 qos=1",
        "reading accepted: kind=blood_pressure device=cuff systolic_mmhg=120.0 flags=[]",
        "frame a1b2c3ff0d from port /dev/serial/by-id/usb-Nonin_Medical_Xpod-if00-port0",
        "connect address=AA:BB:CC:DD:EE:01 device_name=A&D_UA-651 rssi=-61 after 2.5 s",
        "outbox depth=12 oldest_age_s=340.5",
    ],
)
def test_operational_lines_pass_unchanged(operational: str) -> None:
    assert Redactor().redact(operational) == operational


def test_registered_patient_values_are_scrubbed_anywhere() -> None:
    redactor = Redactor()
    redactor.remember(Redacted.NAME, "Alpha ZZTEST", None)
    redactor.remember(Redacted.DOB, date(1961, 4, 12))
    redactor.remember(Redacted.TEXT, "knee hurts")
    redactor.remember(Redacted.MRN, "X7")
    line = "rooming Alpha  ZZTEST born April 12, 1961 (4/12/1961): KNEE hurts; zztest X7 ok"
    assert redactor.redact(line) == (
        "rooming [redacted:name] born [redacted:dob] ([redacted:dob]): [redacted:text]; "
        "[redacted:name] [redacted:mrn] ok"
    )
    # Name parts too short to scrub alone are only caught inside the full name.
    redactor.remember(Redacted.NAME, "Al Bo")
    assert redactor.redact("also Al Bo") == "also [redacted:name]"
    redactor.forget_all()
    assert redactor.known_count == 0
    assert redactor.redact("zztest X7") == "zztest X7"


def test_redaction_is_idempotent() -> None:
    redactor = Redactor()
    redactor.remember(Redacted.NAME, "Alpha ZZTEST")
    once = redactor.redact("Alpha ZZTEST family='ZZTEST' mrn=TEST100001 'a b' 1961-04-12")
    assert redactor.redact(once) == once


def test_structured_fields_lose_labelled_values_and_keep_numbers() -> None:
    redactor = Redactor()
    assert redactor.redact_value("family", "ZZTEST") == "[redacted:name]"
    assert redactor.redact_value("complaint", 3) == "[redacted:text]"
    assert redactor.redact_value("depth", 12) == 12
    assert redactor.redact_value("ok", True) is True
    assert redactor.redact_value("note_id", None) is None
    assert redactor.redact_value("detail", "for MRN TEST100001") == "for MRN [redacted:mrn]"


@pytest.fixture
def journal() -> Iterator[tuple[io.StringIO, Redactor, RecentErrors]]:
    stream = io.StringIO()
    redactor = Redactor()
    recent = RecentErrors(capacity=2)
    undo = setup_logging(redactor, level=logging.DEBUG, stream=stream, journal=True, recent=recent)
    yield stream, redactor, recent
    undo()


def test_every_path_into_a_log_line_is_scrubbed(
    journal: tuple[io.StringIO, Redactor, RecentErrors],
) -> None:
    stream, redactor, recent = journal
    redactor.remember(Redacted.NAME, "Bravo ZZTEST")
    redactor.remember(Redacted.MRN, "TEST100002")
    log = logging.getLogger("station.test")
    log.info("rooming %s (%s)", "Bravo ZZTEST", "TEST100002", extra={"fields": {"depth": 2}})
    log.warning("session", extra={"fields": {"given": "Bravo", "note": "x", "room": "Exam 3"}})
    try:
        raise ValueError("no schedule entry for Bravo ZZTEST dob 1970-01-02")
    except ValueError:
        log.exception("lookup failed")
    log.debug("bad args %s %s", "TEST100002")  # noqa: PLE1206 - the mistake under test
    assert stream.getvalue().splitlines() == [
        "<6>station.test: rooming [redacted:name] ([redacted:mrn]) depth=2",
        '<4>station.test: session given=[redacted:name] note=[redacted:text] room="Exam 3"',
        "<3>station.test: lookup failed",
        "<3>  | Traceback (most recent call last):",
        f'<3>  |   File "{__file__}", line {raise_line()}, '
        "in test_every_path_into_a_log_line_is_scrubbed",
        "<3>  |     raise ValueError([redacted:text])",
        "<3>  | ValueError: no schedule entry for [redacted:name] dob [redacted:date]",
        "<7>station.test: bad args %s %s (log arguments did not fit the message)",
    ]
    assert list(recent.lines) == [
        'WARNING station.test: session given=[redacted:name] note=[redacted:text] room="Exam 3"',
        "ERROR   station.test: lookup failed\n"
        "ERROR     | Traceback (most recent call last):\n"
        f'ERROR     |   File "{__file__}", line '
        f"{raise_line()}, "
        "in test_every_path_into_a_log_line_is_scrubbed\n"
        "ERROR     |     raise ValueError([redacted:text])\n"
        "ERROR     | ValueError: no schedule entry for [redacted:name] dob [redacted:date]",
    ]


def raise_line() -> int:
    """The line number of the `raise` above, found from the source so the test survives edits."""
    import inspect

    source, start = inspect.getsourcelines(test_every_path_into_a_log_line_is_scrubbed)
    return start + next(i for i, line in enumerate(source) if "raise ValueError" in line)


def test_other_handlers_see_scrubbed_records_too(
    journal: tuple[io.StringIO, Redactor, RecentErrors], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("station.other").info("MRN is TEST100003")
    assert [r.getMessage() for r in caplog.records] == ["MRN is [redacted:mrn]"]


def test_formatters_and_field_quoting() -> None:
    record = logging.LogRecord(
        "station.sync", logging.ERROR, __file__, 1, "broker down", None, None
    )
    record.fields = {"host": "broker.clinic", "detail": 'said "no"', "tls": True, "n": None}
    assert JournalFormatter().format(record) == (
        '<3>station.sync: broker down host=broker.clinic detail="said \\"no\\"" tls=true n=null'
    )
    assert ConsoleFormatter().format(record) == (
        "ERROR   station.sync: broker down "
        'host=broker.clinic detail="said \\"no\\"" tls=true n=null'
    )
    assert format_fields({"empty": ""}) == 'empty=""'
