"""Journal-friendly structured logging, and the redaction that keeps patient data out of every line.

No patient data in logs, ever — including when a developer logs a patient object or a chief
complaint by mistake. Three nets, applied to the message, its arguments, exception text and the
structured fields of every record before any handler sees it:

1. values the running station knows are patient data (today's schedule: names, MRNs, dates of
   birth, reasons; lookup answers; the complaint typed for the open session) are remembered and
   scrubbed wherever they appear, in any case and with any punctuation or spacing between their
   words. Looked up token by token in a table (no regex over the values), so remembering is
   O(size of the value) and scrubbing is linear in the line, however long the schedule;
2. anything labelled as patient data (`family=`, `"birthDate": ...`, `complaint: ...`,
   `MRN TEST100001`, `chart 00451234`) loses its value, whatever the value is;
3. shapes that are patient data wherever they appear and rarely anything else: dates (a date of
   birth is a date; the journal stamps every line, so logs never need dates), phone numbers,
   email addresses, and quoted text of two or more words (what a person typed).

A bare number is not redacted for its shape: device serial numbers (a Masimo record's
`SN=0000056661`), byte counts and ports are what biomed reads logs for; record numbers are caught
by being remembered (the schedule) or labelled. Memory is bounded: a new schedule replaces the
one before last (the previous one stays for a schedule's turn, so a patient being roomed when the
list changes stays covered), the typed complaint replaces the last one, and values remembered one
by one are kept up to `RECENT_CAP`, the oldest forgotten first.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from bisect import insort
from collections import OrderedDict, deque
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
# A record number named as one in prose: "MRN TEST100001", "MRN is 004512", "mrn #12345",
# "chart 00451234", "medical record number: X7". The value must hold a digit, so "MRN lookup
# failed" keeps its words.
_LABELLED_RECORD = re.compile(
    r"(?P<label>\b(?:mrn|chart|medical[ _]record(?:[ _]number)?)\b"
    r"(?:\s*(?:(?:is|no\.?|number)(?!\w)|[#:=]))*\s*)"
    r"(?P<value>(?<![\w-])[A-Za-z]{0,8}-?\d[\w-]*)",
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
    # Quoted text of two or more words is what a person typed: a complaint, a note, an answer.
    # A quote opens only where no letter is before it and closes only where none follows, so
    # an apostrophe ("the broker's certificate ... for '127.0.0.1'") never opens one.
    (Redacted.TEXT, re.compile(
        r"""(?<!\w)(?P<q>["'])(?:(?!(?P=q)).)*?\w[ \t]+\w(?:(?!(?P=q)).)*(?P=q)(?!\w)"""
    )),
)  # fmt: skip

# Name parts shorter than this are not scrubbed on their own ("Al" would blank every "also"),
# only as part of the full registered name.
MIN_TOKEN_CHARS = 3
# Values remembered one by one (lookup answers, `remember`) kept at most; the oldest go first.
RECENT_CAP = 20_000

# What a remembered value is compared by: its words, case-folded; punctuation and spacing
# between them do not matter ("ZZTEST,  Alpha" is "zztest alpha"). A marker already in the
# text is one token that nothing matches, so redaction is idempotent.
_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r"\[redacted:[a-z]+\]|\w+")

Phrase = tuple[str, ...]
Value = str | date | None


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


def phrases(kind: Redacted, value: Value) -> list[Phrase]:
    """The token sequences one remembered value is caught by (a date in every spelling; a name
    whole and each part of at least MIN_TOKEN_CHARS)."""
    if value is None:
        return []
    if isinstance(value, date):
        texts: list[str] = list(date_spellings(value))
    else:
        text = str(value)
        texts = [text]
        if kind is Redacted.NAME:
            texts += [t for t in re.split(r"[\s,]+", text) if len(t) >= MIN_TOKEN_CHARS]
    found = [tuple(w.casefold() for w in _WORD.findall(t)) for t in texts]
    return [p for p in found if p]


class _Table:
    """Phrase -> kind, with each first word's phrase lengths (longest first) so a scan tries
    only lengths that exist. Counted: a phrase in two groups stays until both forget it."""

    def __init__(self) -> None:
        self.kinds: dict[Phrase, Redacted] = {}
        self.counts: dict[Phrase, int] = {}
        self.lengths: dict[str, list[int]] = {}  # ascending; may keep a length no phrase has

    def add(self, phrase: Phrase, kind: Redacted) -> None:
        self.kinds[phrase] = kind
        self.counts[phrase] = self.counts.get(phrase, 0) + 1
        lengths = self.lengths.setdefault(phrase[0], [])
        if len(phrase) not in lengths:
            insort(lengths, len(phrase))

    def discard(self, phrase: Phrase) -> None:
        left = self.counts.get(phrase, 0) - 1
        if left > 0:
            self.counts[phrase] = left
        elif left == 0:
            del self.counts[phrase]
            del self.kinds[phrase]


class Redactor:
    """Scrubs patient data out of text. Thread-safe: paho and BLE threads log too."""

    def __init__(self, *, recent_cap: int = RECENT_CAP) -> None:
        self._lock = threading.Lock()
        self._recent_cap = recent_cap
        self._table = _Table()
        self._groups: dict[str, dict[Phrase, Redacted]] = {}
        self._recent: OrderedDict[Phrase, Redacted] = OrderedDict()

    def remember(self, kind: Redacted, *values: Value) -> None:
        """Register values (a lookup answer, a typed text) as patient data, kept until
        RECENT_CAP newer ones push them out (or `forget_all`)."""
        with self._lock:
            for value in values:
                for phrase in phrases(kind, value):
                    if phrase in self._recent:
                        self._recent.move_to_end(phrase)
                        self._table.kinds[phrase] = kind
                        continue
                    self._recent[phrase] = kind
                    self._table.add(phrase, kind)
            while len(self._recent) > self._recent_cap:
                old, _ = self._recent.popitem(last=False)
                self._table.discard(old)
            self._compact()

    def replace(
        self,
        group: str,
        entries: Iterable[tuple[Redacted, Iterable[Value]]],
        *,
        keep_previous: bool = False,
    ) -> None:
        """The group's values become these; what it held before is forgotten — or, with
        `keep_previous`, kept until the group is replaced once more (a schedule: the patient
        being roomed when the list changes is still covered)."""
        fresh: dict[Phrase, Redacted] = {}
        for kind, values in entries:
            for value in values:
                for phrase in phrases(kind, value):
                    fresh[phrase] = kind
        with self._lock:
            table = self._table
            for phrase, kind in fresh.items():  # the new ones first: never a gap
                table.add(phrase, kind)
            previous = f"{group}~previous"
            if keep_previous:
                for phrase in self._groups.pop(previous, {}):
                    table.discard(phrase)
                self._groups[previous] = self._groups.pop(group, {})
            else:
                for phrase in self._groups.pop(group, {}):
                    table.discard(phrase)
            self._groups[group] = fresh
            self._compact()

    def forget_all(self) -> None:
        """The station is done with every patient it knew: nothing left to remember."""
        with self._lock:
            self._table = _Table()
            self._groups.clear()
            self._recent.clear()

    @property
    def known_count(self) -> int:
        """Distinct phrases remembered (all groups and the recent ones)."""
        return len(self._table.kinds)

    def _compact(self) -> None:
        """Drop first-word length lists that no phrase needs any more (after a replace)."""
        table = self._table
        if len(table.lengths) > 2 * len(table.kinds) + 64:
            fresh: dict[str, list[int]] = {}
            for phrase in table.kinds:
                lengths = fresh.setdefault(phrase[0], [])
                if len(phrase) not in lengths:
                    insort(lengths, len(phrase))
            table.lengths = fresh

    def _scrub_known(self, text: str) -> str:
        table = self._table
        kinds, lengths = table.kinds, table.lengths
        if not kinds:
            return text
        tokens = list(_TOKEN.finditer(text))
        words = [t.group(0).casefold() for t in tokens]
        out: list[str] = []
        last = i = 0
        n = len(words)
        while i < n:
            hit, kind = 0, Redacted.VALUE
            for length in reversed(lengths.get(words[i], ())):  # longest first
                if length <= n - i:
                    found = kinds.get(tuple(words[i : i + length]))
                    if found is not None:
                        hit, kind = length, found
                        break
            if hit:
                out.append(text[last : tokens[i].start()])
                out.append(marker(kind))
                last = tokens[i + hit - 1].end()
                i += hit
            else:
                i += 1
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)

    def redact(self, text: str) -> str:
        # The lock keeps a scan from meeting a table half-way through a replace.
        with self._lock:
            text = self._scrub_known(text)
        text = _LABELLED.sub(self._labelled, text)
        text = _LABELLED_RECORD.sub(
            lambda m: m.group("label") + marker(Redacted.MRN), text
        )
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


# Characters that would end a journal record or disguise one: C0/C1 controls, DEL and the
# Unicode line and paragraph separators. In a message they are shown escaped (\n, \x1b).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Continuation lines (tracebacks) start with this, so no text inside one can pass for a record
# of its own ("<2>station.app: ..." at the start of a line).
CONTINUATION = "  | "


def one_line(text: str) -> str:
    """`text` on one line: every control character escaped, nothing else changed."""
    return _CONTROL.sub(lambda m: _ESCAPES.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


class JournalFormatter(logging.Formatter):
    """`<prio>logger: message key=value ...` on one line, whatever the message holds (strings
    from outside — a pushed config's key names, a device's text — cannot start a journal
    record of their own); traceback lines follow, each with the priority and marked as a
    continuation."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        line = one_line(f"{record.name}: {record.getMessage()}")
        fields = getattr(record, FIELDS_ATTR, None)
        if isinstance(fields, Mapping) and fields:
            line += " " + one_line(format_fields(fields))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        extra = [record.exc_text or "", record.stack_info or ""]
        lines = [line] + [
            CONTINUATION + one_line(x) for block in extra if block for x in block.splitlines()
        ]
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


# Libraries whose INFO/DEBUG chatter is not the station's business (their warnings are).
DEPENDENCY_LOGGERS = ("bleak", "dbus_fast", "paho", "kivy", "asyncio")


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
    # The station's own events at INFO; its dependencies only when something is wrong (bleak
    # logs every D-Bus signal at DEBUG: ~150 KB a minute with a few adverts in range).
    quiet = {name: logging.getLogger(name) for name in DEPENDENCY_LOGGERS}
    previous_dependency_levels = {name: lg.level for name, lg in quiet.items()}
    for lg in quiet.values():
        lg.setLevel(max(level, logging.WARNING))
    restore_factory = install_record_redaction(redactor)

    def undo() -> None:
        restore_factory()
        for h in handlers:
            root.removeHandler(h)
        root.setLevel(previous_level)
        for name, lg in quiet.items():
            lg.setLevel(previous_dependency_levels[name])

    return undo
