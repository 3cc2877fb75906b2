"""The log redactor (issue 13, item 11): precise on real messages, bounded (it forgets with the
schedule), and still no remembered patient value in any log line.

Sources for the real messages:
- CPython Modules/_ssl.c (fill_and_set_sslerror) composes the verify message for a hostname
  mismatch as "Hostname mismatch, certificate is not valid for '%S'." and for an IP address as
  "IP address mismatch, certificate is not valid for '%S'."; the test below gets the first
  from a real handshake with a real Mosquitto, the second as the issue reported it
  ("TLS: the broker's certificate does not match hostname '127.0.0.1'." in the brief's words);
- the Masimo Rad-8 ASCII 1 record published in the yahnatan/pulseox README (also
  tests/captures/masimo-ascii/captured_rad8.hex): "02/22/16 22:47:45 SN=0000056661 SPO2=098%
  BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800" — a
  device serial number and an exception word of 6+ digits that are not record numbers;
- the spellings of a date of birth the redactor knows (station.logs.date_spellings: ISO 8601,
  HL7 v2 DT YYYYMMDD, US M/D/YYYY and MM/DD/YYYY, European DD.MM.YYYY, "April 12, 1961",
  "12 April 1961").
"""

from __future__ import annotations

import io
import logging
import random
import socket
import ssl
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from station.app.wiring import remember_appointment, remember_schedule
from station.logs import Redacted, Redactor, setup_logging
from station.sync.connection import describe_connect_error
from station.sync.contract import Appointment, PatientIdentifiers, SchedulePayload
from tests.fixtures.broker import Broker

AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
RAD8 = ("02/22/16 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-% "
        "DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800")


def real_tls_mismatch(broker: Broker) -> ssl.SSLCertVerificationError:
    """A real handshake with the broker's real certificate (issued for localhost and
    127.0.0.1), asking for another host name."""
    assert broker.pki is not None
    context = ssl.create_default_context(cafile=str(broker.pki.ca))
    with socket.create_connection((broker.host, broker.port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="broker.clinic.example"):
                pass
        except ssl.SSLCertVerificationError as exc:
            return exc
    raise AssertionError("the handshake was accepted")


def test_a_tls_hostname_error_comes_out_intact(tls_broker: Broker) -> None:
    redactor = Redactor()
    redactor.remember(Redacted.NAME, "Alpha ZZTEST")  # a schedule is known: nothing changes
    exc = real_tls_mismatch(tls_broker)
    assert exc.verify_message == (
        "Hostname mismatch, certificate is not valid for 'broker.clinic.example'.")
    line = f"MQTT broker.clinic.example:8883: cannot connect: {describe_connect_error(exc)}"
    assert line == (
        "MQTT broker.clinic.example:8883: cannot connect: TLS: the broker's certificate was not "
        "accepted (Hostname mismatch, certificate is not valid for 'broker.clinic.example'.)")
    assert redactor.redact(line) == line
    for reported in (
        "TLS: the broker's certificate does not match hostname '127.0.0.1'.",
        "TLS: the broker's certificate was not accepted (IP address mismatch, certificate is "
        "not valid for '127.0.0.1'.)",
    ):
        assert redactor.redact(reported) == reported


def test_numbers_that_are_not_remembered_record_numbers_pass() -> None:
    redactor = Redactor()
    redactor.remember(Redacted.MRN, "00451234")
    # The date field is a date (a DOB has that shape); the serial number and EXC word stay.
    assert redactor.redact(f"frame from oximeter: {RAD8}") == (
        "frame from oximeter: [redacted:date] 22:47:45 SN=0000056661 SPO2=098% BPM=097 "
        "PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800")
    assert redactor.redact("outbox row 1234567 quarantined; 20480000 bytes free") == (
        "outbox row 1234567 quarantined; 20480000 bytes free")
    # The remembered one goes wherever it appears; a labelled one goes whatever it is.
    assert redactor.redact("lookup 00451234 failed; MRN is 7654321; chart 99887766") == (
        "lookup [redacted:mrn] failed; MRN is [redacted:mrn]; chart [redacted:mrn]")
    assert redactor.redact("MRN lookup failed") == "MRN lookup failed"


def test_a_remembered_value_goes_in_any_case_spacing_and_punctuation() -> None:
    redactor = Redactor()
    redactor.remember(Redacted.NAME, "Alpha ZZTEST", "ZZTEST, Alpha")
    redactor.remember(Redacted.DOB, date(1961, 4, 12))
    assert redactor.redact("zztest,alpha / ALPHA\tzztest / Zztest") == (
        "[redacted:name] / [redacted:name] / [redacted:name]")
    assert redactor.redact(
        "born 1961-04-12, 19610412, 4/12/1961, 04/12/1961, 12.04.1961, April 12, 1961, "
        "12 April 1961") == (
        "born [redacted:dob], [redacted:dob], [redacted:dob], [redacted:dob], [redacted:dob], "
        "[redacted:dob], [redacted:dob]")
    # Inside a longer word it is not the value: "Alphabet" stays.
    assert redactor.redact("Alphabet soup") == "Alphabet soup"


def birth_date(i: int, seed: str) -> date:
    """Distinct per appointment and per schedule, with the day never the month, so the seven
    spellings are seven different word sequences (4/12 and 04/12 differ; 3/3 in MM/DD and
    DD.MM would not)."""
    return date(1000 + 400 * (ord(seed) - ord("A")) + i, 1 + i % 4, 5 + i % 4)


def appointment(i: int, seed: str) -> Appointment:
    return Appointment(
        appointment_id=f"APT-TEST-{seed}-{i:04d}",
        patient=PatientIdentifiers(
            mrn=f"TEST{seed}{i:05d}", family_name=f"ZZTEST{seed}{i:04d}",
            given_name=f"Given{seed}{i:04d}",
            birth_date=birth_date(i, seed),
        ),
        starts_at=AT + timedelta(minutes=5 * i),
        reason=f"reason {seed} number {i}",
    )  # fmt: skip


def schedule(seed: str, size: int) -> SchedulePayload:
    return SchedulePayload(
        message_id=uuid.uuid4(), site="clinic-north", station_id="exam-3", sent_at=AT,
        schedule_date=AT.date(), appointments=tuple(appointment(i, seed) for i in range(size)),
    )  # fmt: skip


# One appointment: family, given, "family, given" (3 name phrases; the parts are the same
# words), the 7 DOB spellings, the MRN and the reason.
PHRASES_PER_APPOINTMENT = 3 + 7 + 1 + 1


def test_a_new_schedule_replaces_the_one_before_last() -> None:
    redactor = Redactor()
    first, second, third = schedule("A", 50), schedule("B", 50), schedule("C", 50)
    remember_schedule(redactor, first)
    assert redactor.known_count == 50 * PHRASES_PER_APPOINTMENT
    remember_schedule(redactor, second)
    # The list just replaced stays one more turn (a patient being roomed as it changes).
    assert redactor.known_count == 2 * 50 * PHRASES_PER_APPOINTMENT
    assert redactor.redact("ZZTESTA0007") == "[redacted:name]"
    remember_schedule(redactor, third)
    assert redactor.known_count == 2 * 50 * PHRASES_PER_APPOINTMENT
    assert redactor.redact("ZZTESTA0007 TESTA00007") == "ZZTESTA0007 TESTA00007"  # forgotten
    assert redactor.redact("ZZTESTB0007 TESTC00007") == "[redacted:name] [redacted:mrn]"
    # The same list again (the retained copy on every reconnect) grows nothing.
    for _ in range(5):
        remember_schedule(redactor, third)
    assert redactor.known_count == 50 * PHRASES_PER_APPOINTMENT
    # A value in both a schedule and the recent ones stays until both forget it.
    remember_appointment(redactor, third.appointments[0])
    remember_schedule(redactor, schedule("D", 1))
    remember_schedule(redactor, schedule("E", 1))
    assert redactor.redact("ZZTESTC0000") == "[redacted:name]"
    assert redactor.redact("ZZTESTC0001") == "ZZTESTC0001"


def test_values_remembered_one_by_one_are_capped_oldest_first() -> None:
    redactor = Redactor(recent_cap=100)
    for i in range(250):
        redactor.remember(Redacted.MRN, f"TEST{i:06d}")
    assert redactor.known_count == 100
    assert redactor.redact("TEST000149 TEST000150 TEST000249") == (
        "TEST000149 [redacted:mrn] [redacted:mrn]")
    # Remembering one again makes it the newest.
    redactor.remember(Redacted.MRN, "TEST000150")
    redactor.remember(Redacted.MRN, "TEST000250")
    assert redactor.redact("TEST000150 TEST000151") == "[redacted:mrn] TEST000151"


def test_typed_text_replaces_itself_not_every_keystroke() -> None:
    redactor = Redactor()
    for typed in ("k", "kn", "knee", "knee h", "knee hurts"):
        redactor.replace("typed", [(Redacted.TEXT, [typed])])
    assert redactor.known_count == 1
    assert redactor.redact("ok: k then KNEE  hurts") == "ok: k then [redacted:text]"


@pytest.fixture
def journal() -> Iterator[tuple[io.StringIO, Redactor]]:
    stream = io.StringIO()
    redactor = Redactor()
    undo = setup_logging(redactor, level=logging.DEBUG, stream=stream, journal=True)
    yield stream, redactor
    undo()


def test_no_remembered_value_reaches_a_log_line(journal: tuple[io.StringIO, Redactor]) -> None:
    """Seeded: 300 fake appointments, then 2,000 log lines that carry one of them by mistake in
    the ways code does it (format args, a repr, an exception, a structured field), with its
    case, spacing and punctuation changed; plus the schedule it replaced."""
    stream, redactor = journal
    earlier, today = schedule("P", 300), schedule("Q", 300)
    remember_schedule(redactor, earlier)
    remember_schedule(redactor, today)
    rng = random.Random(13)
    log = logging.getLogger("station.leak-test")
    secrets: set[str] = set()
    for _ in range(2000):
        a = rng.choice(rng.choice((earlier, today)).appointments)
        p = a.patient
        dob = rng.choice([p.birth_date.isoformat(), p.birth_date.strftime("%Y%m%d"),
                          f"{p.birth_date.month}/{p.birth_date.day}/{p.birth_date.year}"])
        name = rng.choice([f"{p.given_name} {p.family_name}", f"{p.family_name},{p.given_name}",
                           f"{p.family_name.lower()}  {p.given_name.upper()}"])
        secrets.update({p.family_name.casefold(), p.given_name.casefold(), p.mrn.casefold(),
                        str(a.reason).casefold()})
        style = rng.randrange(4)
        if style == 0:
            log.info("picked %s (%s) born %s for %s", name, p.mrn, dob, a.reason)
        elif style == 1:
            log.warning("state %r", {"who": name, "chart": p.mrn, "why": a.reason})
        elif style == 2:
            try:
                raise KeyError(f"{p.mrn}/{name}")
            except KeyError:
                log.exception("lookup failed")
        else:
            log.info("row", extra={"fields": {"detail": f"{name} {p.mrn}", "why": a.reason}})
    text = stream.getvalue().casefold()
    assert text.count("[redacted:") >= 4000
    leaked = sorted(s for s in secrets if s in text)
    assert leaked == []
