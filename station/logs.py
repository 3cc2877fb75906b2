"""Journal-friendly structured logging, and the redaction that keeps patient data out of every line.

No patient data in logs, ever — including when a developer logs a patient object or a chief
complaint by mistake. Three nets, applied to the message, its arguments, exception text and the
structured fields of every record before any handler sees it:

1. values the running station knows are patient data (today's names, MRNs, dates of birth, the
   complaint typed for the open session) are registered and scrubbed wherever they appear;
2. anything labelled as patient data (`family=`, `"birthDate": ...`, `complaint: ...`) loses its
   value, whatever the value is;
3. shapes that are patient data wherever they appear: dates (a date of birth is a date; the
   journal stamps every line, so logs never need dates), record numbers, phone numbers, email
   addresses, and quoted text of two or more words (free text).

Over-redaction is the accepted cost: a scrubbed timestamp is a nuisance, a leaked name is a breach.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from enum import StrEnum
from typing import Any, TextIO

FIELDS_ATTR = "fields"  # structured fields: log.info("sent", extra={"fields": {"depth": 3}})


class Redacted(StrEnum):
    NAME = "name"
    DOB = "dob"
    DATE = "date"
    MRN = "mrn"
    PHONE = "phone"
    EMAIL = "email"
    TEXT = "text"
    ADDRESS = "address"
    VALUE = "value"  # a registered patient value whose kind the caller did not say


def marker(kind: Redacted) -> str:
    return f"[redacted:{kind}]"


# Keys whose value is patient data whatever it looks like, by what the value is.
LABELLED_KEYS: Mapping[Redacted, tuple[str, ...]] = {
    Redacted.NAME: (
        "name", "names", "family", "family_name", "familyname", "given", "given_name",
        "givenname", "first_name", "firstname", "last_name", "lastname", "full_name",
        "fullname", "middle_name", "patient", "patient_name", "display_name",
    ),
    Redacted.DOB: ("dob", "birth_date", "birthdate", "date_of_birth", "born"),
    Redacted.MRN: (
        "mrn", "medical_record_number", "patient_id", "ssn", "identifier", "insurance_id",
    ),
    Redacted.PHONE: ("phone", "telephone", "mobile", "telecom"),
    Redacted.EMAIL: ("email", "e_mail"),
    # Not bare `address`: that is how a Bluetooth address is logged, and biomed needs it.
    Redacted.ADDRESS: (
        "home_address", "patient_address", "street", "postal_code", "postalcode", "zip",
    ),
    Redacted.TEXT: (
        "complaint", "chief_complaint", "chiefcomplaint", "reason", "reason_for_visit",
        "reasonforvisit", "note", "notes", "comment", "comments", "free_text", "freetext",
        "text", "answer", "answers", "symptoms", "history", "allergies", "medications",
    ),
}  # fmt: skip

_KEY_KIND = {key: kind for kind, keys in LABELLED_KEYS.items() for key in keys}
_KEY_ALTERNATION = "|".join(sorted(_KEY_KIND, key=len, reverse=True))
# A label, optionally quoted (JSON, reprs), then '=' or ':', then a call as reprs print it
# (`datetime.date(1961, 4, 12)`), a quoted string, a bracketed list (FHIR `given` is a list),
# or bare words up to the next `key=`, punctuation or line end.
_LABELLED = re.compile(
    rf"""(?P<key>["']?\b(?:{_KEY_ALTERNATION})\b["']?)(?P<sep>\s*[=:]\s*)"""
    r"""(?P<value>[\w.]+\([^)]*\)|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\[[^\]]*\]|\([^)]*\)"""
    r"""|[^,;)}\]\n]*?(?=\s+["']?\w+["']?\s*[=:]|[,;)}\]\n]|$))""",
    re.IGNORECASE,
)

# Shapes that are patient data wherever they appear, with why each is broad.
SHAPES: tuple[tuple[Redacted, re.Pattern[str]], ...] = (
    # Before the date shapes: an address is user@host and hosts can hold digits.
    (Redacted.EMAIL, re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    # ISO, US, European and HL7 (YYYYMMDD) dates: any of them can be a date of birth.
    (Redacted.DATE, re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}(?:[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)?")),
    (Redacted.DATE, re.compile(r"\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b")),
    (Redacted.DATE, re.compile(
        r"(?<![\w-])(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?![\w-])"
    )),
    # North American phone numbers, with or without the country code and punctuation.
    (Redacted.PHONE, re.compile(
        r"(?<![\w-])(?:\+?1[-.\s]?)?\(?\d{3}\)?[-.\s]\d{3}[-.\s]\d{4}(?![\w-])"
    )),
    # Record numbers: letters then five or more digits (TEST100001, MRN-004512), or six or
    # more bare digits. Hyphenated runs are left alone so UUID message ids survive.
    (Redacted.MRN, re.compile(r"(?<![\w-])[A-Za-z]{1,6}-?\d{5,}(?![\w-])")),
    (Redacted.MRN, re.compile(r"(?<![\w.-])\d{6,}(?![\w.-])")),
    # Quoted text of two or more words is what a person typed: a complaint, a note, an answer.
    (Redacted.TEXT, re.compile(
        r"""(?P<q>["'])(?:(?!(?P=q)).)*?\w[ \t]+\w(?:(?!(?P=q)).)*(?P=q)"""
    )),
)  # fmt: skip

# Name parts shorter than this are not scrubbed on their own ("Al" would blank every "also"),
# only as part of the full registered name.
MIN_TOKEN_CHARS = 3


def date_spellings(day: date) -> tuple[str, ...]:
    """The ways a date of birth gets written, so a registered DOB is caught in any of them."""
    return (
        day.isoformat(),
        day.strftime("%Y%m%d"),
        f"{day.month}/{day.day}/{day.year}",
        day.strftime("%m/%d/%Y"),
        day.strftime("%d.%m.%Y"),
        day.strftime("%B %-d, %Y"),
        day.strftime("%-d %B %Y"),
    )


class Redactor:
    """Scrubs patient data out of text. Thread-safe: paho and BLE threads log too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[str, Redacted] = {}
        self._known_re: re.Pattern[str] | None = None

    def remember(self, kind: Redacted, *values: str | date | None) -> None:
        """Register values of the open session or today's schedule as patient data."""
        with self._lock:
            for value in values:
                if value is None:
                    continue
                spellings: Iterable[str]
                if isinstance(value, date):
                    spellings = date_spellings(value)
                else:
                    text = " ".join(str(value).split())
                    spellings = [text]
                    if kind is Redacted.NAME:
                        spellings += [
                            t for t in re.split(r"[\s,]+", text) if len(t) >= MIN_TOKEN_CHARS
                        ]
                for s in spellings:
                    if s:
                        self._known[s.casefold()] = kind
            self._compile()

    def forget_all(self) -> None:
        """The session closed and the schedule rolled over: nothing left to remember."""
        with self._lock:
            self._known.clear()
            self._known_re = None

    @property
    def known_count(self) -> int:
        return len(self._known)

    def _compile(self) -> None:
        if not self._known:
            self._known_re = None
            return
        # Longest first so "Alpha ZZTEST" wins over "Alpha"; flexible whitespace inside values.
        alternatives = [
            r"\s+".join(re.escape(part) for part in value.split())
            for value in sorted(self._known, key=len, reverse=True)
        ]
        self._known_re = re.compile(
            r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE
        )

    def redact(self, text: str) -> str:
        known_re, known = self._known_re, self._known
        if known_re is not None:
            text = known_re.sub(
                lambda m: marker(
                    known.get(" ".join(m.group(0).split()).casefold(), Redacted.VALUE)
                ),
                text,
            )
        text = _LABELLED.sub(self._labelled, text)
        for kind, pattern in SHAPES:
            text = pattern.sub(marker(kind), text)
        return text

    @staticmethod
    def _labelled(match: re.Match[str]) -> str:
        value = match.group("value")
        if not value.strip() or value.strip().startswith("[redacted:"):
            return match.group(0)
        key = match.group("key").strip("\"'").lower()
        return f"{match.group('key')}{match.group('sep')}{marker(_KEY_KIND[key])}"

    def redact_value(self, key: str, value: Any) -> Any:
        """A structured field: a labelled key loses its value; text is scrubbed; numbers pass."""
        kind = _KEY_KIND.get(key.lower())
        if kind is not None and value is not None:
            return marker(kind)
        if isinstance(value, bool | int | float) or value is None:
            return value
        if isinstance(value, StrEnum):
            return str(value)
        return self.redact(str(value))


def redact_record(record: logging.LogRecord, redactor: Redactor) -> None:
    """Scrub one record in place: message with its arguments, exception, stack, fields."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        # Wrong arguments for the format: still log something, and lose nothing sensitive.
        message = f"{record.msg} (log arguments did not fit the message)"
    record.msg = redactor.redact(str(message))
    record.args = None
    if record.exc_info:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None  # the formatted, scrubbed text stands in for the live traceback
    if record.exc_text:
        record.exc_text = redactor.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redactor.redact(record.stack_info)
    fields = getattr(record, FIELDS_ATTR, None)
    if isinstance(fields, Mapping):
        setattr(
            record,
            FIELDS_ATTR,
            {str(k): redactor.redact_value(str(k), v) for k, v in fields.items()},
        )
    elif fields is not None:
        setattr(record, FIELDS_ATTR, {"fields": redactor.redact(str(fields))})


class RedactionFilter(logging.Filter):
    """A handler filter: every record through this handler is scrubbed, never dropped."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record, self.redactor)
        return True


def install_record_redaction(redactor: Redactor) -> Callable[[], None]:
    """Scrub every record as it is created, so no handler (ours or a library's) sees raw text.

    Returns a function that restores the previous record factory.
    """
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record, redactor)
        return record

    # `extra` is applied after the factory runs, so the fields are scrubbed again by the filter.
    logging.setLogRecordFactory(factory)
    return lambda: logging.setLogRecordFactory(previous)


# syslog priorities journald reads from a `<N>` line prefix (SyslogLevelPrefix=yes, the default).
PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def syslog_priority(levelno: int) -> int:
    for level in sorted(PRIORITY, reverse=True):
        if levelno >= level:
            return PRIORITY[level]
    return 7


def format_fields(fields: Mapping[str, Any]) -> str:
    parts = []
    for key, value in fields.items():
        text = (
            "null"
            if value is None
            else str(value).lower()
            if isinstance(value, bool)
            else str(value)
        )
        if not text or any(c.isspace() or c in '"=' for c in text):
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)


class JournalFormatter(logging.Formatter):
    """`<prio>logger: message key=value ...`; each traceback line carries the priority too."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        line = f"{record.name}: {record.getMessage()}"
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, Mapping) and fields:
            line += " " + format_fields(fields)
        extra = [record.exc_text or "", record.stack_info or ""]
        lines = [line] + [x for block in extra if block for x in block.splitlines()]
        return "\n".join(prefix + x for x in lines)


class ConsoleFormatter(JournalFormatter):
    """For a terminal (`station run` by hand): level names instead of syslog prefixes."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(
            f"{record.levelname:<7} {x.removeprefix(prefix)}" for x in text.splitlines()
        )


def under_journal(env: Mapping[str, str] | None = None) -> bool:
    """systemd sets JOURNAL_STREAM when stderr is connected to the journal."""
    return bool((os.environ if env is None else env).get("JOURNAL_STREAM"))


class RecentErrors(logging.Handler):
    """Keeps the last warnings and errors (already scrubbed) for the diagnostics bundle."""

    def __init__(self, capacity: int = 200) -> None:
        super().__init__(logging.WARNING)
        self.lines: deque[str] = deque(maxlen=capacity)
        self.setFormatter(ConsoleFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def setup_logging(
    redactor: Redactor,
    *,
    level: int = logging.INFO,
    stream: TextIO | None = None,
    journal: bool | None = None,
    recent: RecentErrors | None = None,
) -> Callable[[], None]:
    """Root logging for the station: scrubbed, journal-formatted on stderr. Returns an undo."""
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(
        JournalFormatter()
        if (under_journal() if journal is None else journal)
        else ConsoleFormatter()
    )
    handler.addFilter(RedactionFilter(redactor))
    handlers: list[logging.Handler] = [handler]
    if recent is not None:
        recent.addFilter(RedactionFilter(redactor))
        handlers.append(recent)
    for h in handlers:
        root.addHandler(h)
    previous_level = root.level
    root.setLevel(level)
    restore_factory = install_record_redaction(redactor)

    def undo() -> None:
        restore_factory()
        for h in handlers:
            root.removeHandler(h)
        root.setLevel(previous_level)

    return undo
