"""Intake questionnaires as data: FHIR Questionnaire files (questionnaires/) and the practice's
rules, asked one question at a time on the lobby tablet, scored by the answers' ordinal values.

`load_library` reads and checks the folder (a bad file is a clear error naming it). `Intake`
is the pure engine for one patient: which instruments the rules choose (age, a follow-up
when a screen scores at or above its cut-point, instruments the practice recorded within the
rule's interval skipped — the schedule says when each was last done), the current question in
the patient's language, progress, answers, going back one question, the staff alerts an answer
raises at once (PHQ-9 item 9), and the scored results. An instrument with no translation into
the patient's language is not asked at all (never silently in another language): it is listed
in `not_asked()` for the check-in message. Answers to items shared by a screen and its
follow-up (PHQ-2 -> PHQ-9 items 1-2) are asked once. No I/O but `load_library`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from station.errors import StationError

QUESTIONNAIRE_DIR = Path(__file__).resolve().parent.parent / "questionnaires"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
ALERT_ABOVE = "https://schemas.rooming-station.invalid/StructureDefinition/staff-alert-when-ordinal-above"
SCORE_OBSERVATION = "https://schemas.rooming-station.invalid/StructureDefinition/score-observation"
# Scored by the sum of ordinals, with no LOINC code for the total (GAD-2): no score Observation.
SCORE_SUM = "https://schemas.rooming-station.invalid/StructureDefinition/score-sum"
SOURCE_LANGUAGE = "en"  # the files' own text; translations come in the FHIR extension


class QuestionnaireError(StationError):
    """A questionnaire file or rule the station cannot use: says which and why."""


class AnswerError(StationError, ValueError):
    """An answer the current question does not offer."""


@dataclass(frozen=True)
class Option:
    system: str
    code: str
    display: str  # English, as in the file
    ordinal: float
    texts: dict[str, str] = field(default_factory=dict)  # language -> label

    def label(self, language: str) -> str:
        return self.texts.get(language, self.display)


@dataclass(frozen=True)
class Item:
    link_id: str
    loinc: str | None
    text: str
    texts: dict[str, str]
    options: tuple[Option, ...]
    alert_above: float | None  # a staff alert when an answer's ordinal is above this

    def question(self, language: str) -> str:
        return self.texts.get(language, self.text)

    def option(self, code: str) -> Option | None:
        return next((o for o in self.options if o.code == code), None)


@dataclass(frozen=True)
class Instrument:
    key: str  # the file name without .json
    url: str
    title: str
    panel: tuple[str, str] | None  # LOINC (code, display)
    score: tuple[str, str] | None  # the total's LOINC (code, display); None: none
    stem: dict[str, str]  # language -> the instruction shown above each question
    items: tuple[Item, ...]
    resource: dict[str, Any]  # the file as read
    scored: bool = True  # a total (sum of ordinals); False: the answers only (STEADI)

    def speaks(self, language: str) -> bool:
        """Every word the patient would see exists in `language`: the instruction, each
        question and each answer. Never half in one language, half in another."""
        if language == SOURCE_LANGUAGE:
            return True
        return (language in self.stem or not self.stem.get(SOURCE_LANGUAGE)) and all(
            language in item.texts and all(language in o.texts for o in item.options)
            for item in self.items)


@dataclass(frozen=True)
class Rule:
    instrument: str
    min_age: float = 0
    max_age: float = 200
    after: str = ""
    when_score_at_least: float = 0
    # Not asked again within this many days of the last time the practice recorded it (or one
    # of `screened_by`, e.g. a PHQ-9 counts as a PHQ-2): "not screened this year".
    rescreen_after_days: int = 365
    screened_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Library:
    instruments: dict[str, Instrument]
    rules: tuple[Rule, ...]

    def key_for(self, name: str) -> str | None:
        """An instrument as the practice names it: the file name (phq-9) or the
        Questionnaire's LOINC code (44249-1). None: not one of ours."""
        if name in self.instruments:
            return name
        return next((k for k, i in self.instruments.items() if i.panel and i.panel[0] == name),
                    None)


def _translations(holder: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for ext in (holder or {}).get("extension", []):
        if ext.get("url") != TRANSLATION:
            continue
        parts = {e["url"]: e for e in ext.get("extension", [])}
        lang, content = parts.get("lang", {}).get("valueCode"), parts.get("content", {})
        if lang and content.get("valueString"):
            out[lang] = content["valueString"]
    return out


def _ext(holder: dict[str, Any], url: str) -> dict[str, Any] | None:
    return next((e for e in holder.get("extension", []) if e.get("url") == url), None)


def parse_instrument(key: str, resource: dict[str, Any]) -> Instrument:
    """One Questionnaire resource -> Instrument; QuestionnaireError says what is missing."""
    where = f"questionnaire {key!r}"
    if resource.get("resourceType") != "Questionnaire":
        raise QuestionnaireError(f"{where}: resourceType must be Questionnaire")
    items = []
    for raw in resource.get("item", []):
        if raw.get("type") != "choice" or not raw.get("answerOption"):
            raise QuestionnaireError(f"{where} item {raw.get('linkId')!r}: only choice items "
                                     "with answerOption are asked here")
        options = []
        for opt in raw["answerOption"]:
            coding = opt.get("valueCoding") or {}
            ordinal = _ext(opt, ORDINAL)
            if not coding.get("code") or ordinal is None:
                raise QuestionnaireError(
                    f"{where} item {raw['linkId']!r}: every answer needs valueCoding.code and "
                    f"an ordinalValue extension ({ORDINAL})")
            texts = _translations(coding.get("_display"))
            options.append(Option(coding.get("system", ""), coding["code"],
                                  coding.get("display", coding["code"]),
                                  float(ordinal["valueDecimal"]),
                                  {"en": coding.get("display", coding["code"]), **texts}))
        loinc = next((c["code"] for c in raw.get("code", [])
                      if c.get("system") == "http://loinc.org"), None)
        alert = _ext(raw, ALERT_ABOVE)
        items.append(Item(raw["linkId"], loinc, raw.get("text", ""),
                          {"en": raw.get("text", ""), **_translations(raw.get("_text"))},
                          tuple(options), None if alert is None else float(alert["valueDecimal"])))
    if not items:
        raise QuestionnaireError(f"{where}: no items")
    panel = next(((c["code"], c.get("display", "")) for c in resource.get("code", [])
                  if c.get("system") == "http://loinc.org"), None)
    score_ext = _ext(resource, SCORE_OBSERVATION)
    score = None if score_ext is None else (score_ext["valueCoding"]["code"],
                                            score_ext["valueCoding"].get("display", ""))
    sum_ext = _ext(resource, SCORE_SUM)
    scored = score is not None or bool(sum_ext and sum_ext.get("valueBoolean"))
    if not resource.get("url"):
        raise QuestionnaireError(f"{where}: no canonical url")
    stem = {"en": resource.get("description", ""),
            **_translations(resource.get("_description"))}
    return Instrument(key, resource["url"], resource.get("title", key), panel, score, stem,
                      tuple(items), resource, scored)


def load_library(directory: Path = QUESTIONNAIRE_DIR) -> Library:
    instruments: dict[str, Instrument] = {}
    for path in sorted(directory.glob("*.json")):
        try:
            resource = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise QuestionnaireError(f"{path.name}: not readable JSON ({exc})") from exc
        instruments[path.stem] = parse_instrument(path.stem, resource)
    rules_path = directory / "rules.toml"
    try:
        raw_rules = tomllib.loads(rules_path.read_text(encoding="utf-8")).get("rule", [])
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise QuestionnaireError(f"{rules_path.name}: {exc}") from exc
    rules = []
    for raw in raw_rules:
        try:
            rule = Rule(**{**raw, "screened_by": tuple(raw.get("screened_by", ()))})
        except TypeError as exc:
            raise QuestionnaireError(f"rules.toml: {exc} (expected instrument, min_age, "
                                     "max_age, after, when_score_at_least, "
                                     "rescreen_after_days, screened_by)") from exc
        for name in filter(None, (rule.instrument, rule.after, *rule.screened_by)):
            if name not in instruments:
                raise QuestionnaireError(f"rules.toml: no questionnaire {name!r} "
                                         f"(files: {', '.join(sorted(instruments))})")
        rules.append(rule)
    return Library(instruments, tuple(rules))


# ------------------------------------------------------------------------------- results


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Answer(_Frozen):
    link_id: str
    loinc: str | None = None
    system: str
    code: str
    display: str  # English display, as the Questionnaire codes it
    ordinal: float


class ScreeningResult(_Frozen):
    """One instrument answered: what goes to the practice (QuestionnaireResponse + score)."""

    instrument: str
    questionnaire_url: str
    title: str
    answers: tuple[Answer, ...]
    score: float | None  # None: not scored (STEADI sends its answers)
    score_loinc: str | None = None
    score_display: str = ""
    positive: bool = False  # at or above the follow-up cut-point, or STEADI at risk
    language: str = "en"


class NotAsked(_Frozen):
    """An instrument the rules chose but the kiosk did not ask, and why (staff ask in person)."""

    instrument: str
    title: str
    reason: str  # "no_translation": nothing in the patient's language
    language: str


class StaffAlert(_Frozen):
    """An answer staff must hear about now (PHQ-9 item 9): never only a number in a queue."""

    instrument: str
    link_id: str
    loinc: str | None
    answer_code: str
    answer_display: str
    message: str


@dataclass(frozen=True)
class Question:
    instrument: str
    title: str
    stem: str
    text: str
    options: tuple[tuple[str, str], ...]  # (code, label in the patient's language)
    number: int  # 1-based, across everything planned so far
    planned: int  # questions planned so far (grows when a follow-up is added)


class Intake:
    """One patient's questionnaires at the lobby tablet (pure; the check-in owns it)."""

    def __init__(
        self,
        library: Library,
        *,
        age_years: float,
        language: str = SOURCE_LANGUAGE,
        done_this_year: Iterable[str] = (),
        last_screened: Mapping[str, date] | None = None,
        today: date | None = None,
    ) -> None:
        """`last_screened`: when the practice last recorded each instrument (by file name
        or LOINC code), with `today` to judge each rule's `rescreen_after_days`;
        `done_this_year`: instruments to skip outright."""
        self._library = library
        self.language = language
        self._skip = set(done_this_year)
        if last_screened and today is not None:
            known = {library.key_for(name): on for name, on in last_screened.items()}
            for rule in library.rules:
                recent = [known[k] for k in (rule.instrument, *rule.screened_by) if k in known]
                if any((today - on).days < rule.rescreen_after_days for on in recent):
                    self._skip.add(rule.instrument)
        self._age = age_years
        self._not_asked: list[NotAsked] = []
        self._start: list[str] = [
            r.instrument for r in library.rules
            if not r.after and r.min_age <= age_years < r.max_age
            and r.instrument not in self._skip
        ]
        self._log: list[str] = []  # answer codes in the order given (for going back)
        self._reset()

    def _reset(self) -> None:
        self._not_asked = []
        self._queue: list[str] = [k for k in self._start if self._can_ask(k)]
        self._answers: dict[str, Answer] = {}  # by link id, shared across instruments
        self._done: list[ScreeningResult] = []
        self._asked = 0

    def _can_ask(self, key: str) -> bool:
        """In the patient's language, or noted as not asked (and why)."""
        instrument = self._library.instruments[key]
        if instrument.speaks(self.language):
            return True
        if all(n.instrument != key for n in self._not_asked):
            self._not_asked.append(NotAsked(instrument=key, title=instrument.title,
                                            reason="no_translation", language=self.language))
        return False

    # -- where we are ----------------------------------------------------------------

    def _pending(self) -> list[tuple[str, Item]]:
        return [(key, item) for key in self._queue
                for item in self._library.instruments[key].items
                if item.link_id not in self._answers]

    @property
    def finished(self) -> bool:
        return not self._pending()

    def current(self) -> Question | None:
        pending = self._pending()
        if not pending:
            return None
        key, item = pending[0]
        instrument = self._library.instruments[key]
        lang = self.language  # every text exists in it: instruments that lack one are not asked
        return Question(key, instrument.title, instrument.stem.get(lang, ""),
                        item.question(lang), tuple((o.code, o.label(lang)) for o in item.options),
                        self._asked + 1, self._asked + len(pending))

    def progress(self) -> tuple[int, int]:
        """(answered, answered + still planned): the bar on screen."""
        return self._asked, self._asked + len(self._pending())

    # -- answering --------------------------------------------------------------------

    @property
    def answered(self) -> int:
        return self._asked

    def back(self) -> bool:
        """Take back the last answer (the patient tapped Back): its question is current again,
        with every follow-up it caused undone. False when nothing was answered yet. Alerts
        already raised stay raised."""
        if not self._log:
            return False
        codes = self._log[:-1]
        self._log = []
        self._reset()
        for code in codes:
            self.answer(code)
        return True

    def answer(self, code: str) -> tuple[StaffAlert, ...]:
        """Answer the current question; returns the alerts it raises (send them at once)."""
        pending = self._pending()
        if not pending:
            raise AnswerError("no question is waiting for an answer")
        key, item = pending[0]
        option = item.option(code)
        if option is None:
            raise AnswerError(f"{code!r} is not an answer to this question; expected one of "
                              f"{', '.join(o.code for o in item.options)}")
        self._answers[item.link_id] = Answer(link_id=item.link_id, loinc=item.loinc,
                                             system=option.system, code=option.code,
                                             display=option.display, ordinal=option.ordinal)
        self._log.append(code)
        self._asked += 1
        alerts: tuple[StaffAlert, ...] = ()
        if item.alert_above is not None and option.ordinal > item.alert_above:
            alerts = (StaffAlert(
                instrument=key, link_id=item.link_id, loinc=item.loinc,
                answer_code=option.code, answer_display=option.display,
                message=f"{self._library.instruments[key].title}: the patient answered "
                        f"'{option.display}' to '{item.text}': see the patient now"),)
        self._close_finished()
        return alerts

    def _close_finished(self) -> None:
        while self._queue:
            key = self._queue[0]
            instrument = self._library.instruments[key]
            if any(i.link_id not in self._answers for i in instrument.items):
                return
            self._queue.pop(0)
            result = self._score(instrument)
            self._done.append(result)
            for rule in self._library.rules:
                if (rule.after == key and result.score is not None
                        and result.score >= rule.when_score_at_least
                        and rule.instrument not in self._skip
                        and rule.instrument not in self._queue
                        and self._can_ask(rule.instrument)):
                    self._queue.insert(0, rule.instrument)

    def _score(self, instrument: Instrument) -> ScreeningResult:
        answers = tuple(self._answers[i.link_id] for i in instrument.items)
        total = sum(a.ordinal for a in answers)
        follow_ups = [r.when_score_at_least for r in self._library.rules
                      if r.after == instrument.key]
        if not instrument.scored:
            # Not scored by a total (STEADI, tobacco): any answer with an ordinal above 0 (a
            # "yes", a current smoker) screens positive.
            return ScreeningResult(instrument=instrument.key, questionnaire_url=instrument.url,
                                   title=instrument.title, answers=answers, score=None,
                                   positive=total > 0, language=self.language)
        code, display = instrument.score or (None, "")
        return ScreeningResult(
            instrument=instrument.key, questionnaire_url=instrument.url, title=instrument.title,
            answers=answers, score=total, score_loinc=code, score_display=display,
            positive=bool(follow_ups) and total >= min(follow_ups), language=self.language)

    def results(self) -> tuple[ScreeningResult, ...]:
        """Every instrument answered in full, in the order finished."""
        return tuple(self._done)

    def not_asked(self) -> tuple[NotAsked, ...]:
        """Instruments the rules chose that were not asked (no translation), for staff."""
        return tuple(self._not_asked)
