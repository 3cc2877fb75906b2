"""Intake questionnaires (#18): the files, the engine's scores and the staff alert, held to the
instruments' published scoring and to US Core — never to the engine's own output.

Outside truths:
- US Core PHQ-9 example (HL7/US-Core, CC0: input/examples/QuestionnaireResponse-phq-9-example
  .json and Observation-PHQ9-item-example-44261-6.json): answers More than half the days x4,
  Several days x2, More than half the days, Not at all x2 -> PHQ-9 total 12; the LOINC item
  codes of Questionnaire-phq-9-example.json (44250-9, 44255-8, 44259-0, 44254-1, 44251-7,
  44258-2, 44252-5, 44253-3, 44260-8) and answers LA6568-5 / LA6569-3 / LA6570-1 / LA6571-9
  with ordinal values 0-3;
- Kroenke, Spitzer & Williams 2001 (PHQ-9: items 0-3, total 0-27) and 2003 (PHQ-2 cut-point
  3); Spitzer et al. 2006 (GAD-7: total 0-21) and Kroenke et al. 2007 (GAD-2 cut-point 3);
- PHQ-9 item 9 ("thoughts that you would be better off dead or of hurting yourself") answered
  other than "Not at all" needs the clinician's attention at once (PHQ-9 instructions);
- CDC STEADI: a yes to any of the three key questions screens at risk;
- Pfizer's Spanish (USA) PHQ-9: "Poco interés o placer en hacer cosas", "Para nada";
- US Core 6.1.0 / 7.0.0 / 8.0.0 us-core-questionnaireresponse and
  us-core-observation-screening-assessment (tests/conformance/us_core.py, fhirpathpy).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from station.questionnaires import (
    QUESTIONNAIRE_DIR,
    AnswerError,
    Intake,
    QuestionnaireError,
    load_library,
)
from station.sync.fhir import screening_bundle
from tests.conformance import us_core
from tests.sync.samples import PATIENT

LIB = load_library()
NOT_AT_ALL, SEVERAL, HALF, NEARLY = "LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"
US_CORE_EXAMPLE = [HALF, HALF, HALF, HALF, SEVERAL, SEVERAL, HALF, NOT_AT_ALL, NOT_AT_ALL]


def phq_only(age: float = 40, language: str = "en") -> Intake:
    return Intake(LIB, age_years=age, language=language, done_this_year=("gad-2",))


def test_phq9_codes_are_the_us_core_examples() -> None:
    phq9 = LIB.instruments["phq-9"]
    assert [i.loinc for i in phq9.items] == [
        "44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
        "44253-3", "44260-8"]
    assert phq9.panel == ("44249-1", "PHQ-9 quick depression assessment panel [Reported.PHQ]")
    assert phq9.score is not None and phq9.score[0] == "44261-6"
    assert [(o.code, o.ordinal) for o in phq9.items[0].options] == [
        (NOT_AT_ALL, 0), (SEVERAL, 1), (HALF, 2), (NEARLY, 3)]


def test_the_us_core_phq9_example_scores_12_through_phq2_then_phq9() -> None:
    intake = phq_only()
    assert intake.current() is not None and intake.current().instrument == "phq-2"
    assert intake.progress() == (0, 2)
    intake.answer(HALF)
    intake.answer(HALF)  # PHQ-2 = 4 >= 3: the PHQ-9 follows, its items 1-2 already answered
    assert intake.current().instrument == "phq-9"  # type: ignore[union-attr]
    assert intake.progress() == (2, 9)
    for code in US_CORE_EXAMPLE[2:]:
        assert intake.answer(code) == ()
    assert intake.finished and intake.current() is None
    phq2, phq9 = intake.results()
    assert (phq2.instrument, phq2.score, phq2.score_loinc, phq2.positive) == (
        "phq-2", 4, "55758-7", True)
    assert (phq9.instrument, phq9.score, phq9.score_loinc) == ("phq-9", 12, "44261-6")
    assert [a.code for a in phq9.answers] == US_CORE_EXAMPLE


def test_a_phq2_below_3_asks_no_phq9() -> None:
    intake = phq_only()
    intake.answer(SEVERAL)
    intake.answer(SEVERAL)  # 2 < 3
    assert intake.finished
    [phq2] = intake.results()
    assert (phq2.score, phq2.positive) == (2, False)


def test_maximum_scores_are_the_published_maxima() -> None:
    intake = Intake(LIB, age_years=40)
    while not intake.finished:
        intake.answer(NEARLY)
    assert {r.instrument: r.score for r in intake.results()} == {
        "phq-2": 6, "phq-9": 27, "gad-2": 6, "gad-7": 21}


@pytest.mark.parametrize(("answer", "alerts"), [(NOT_AT_ALL, 0), (SEVERAL, 1), (HALF, 1),
                                                 (NEARLY, 1)])
def test_phq9_item_9_other_than_not_at_all_alerts_at_once(answer: str, alerts: int) -> None:
    intake = phq_only()
    for code in [HALF] * 8:
        assert intake.answer(code) == ()
    raised = intake.answer(answer)
    assert len(raised) == alerts
    if alerts:
        assert (raised[0].loinc, raised[0].answer_code) == ("44260-8", answer)


def test_spanish_text_and_answers() -> None:
    question = phq_only(language="es").current()
    assert question is not None
    assert question.text == "Poco interés o placer en hacer cosas"
    assert question.options[0] == (NOT_AT_ALL, "Para nada")


def test_rules_by_age_and_done_this_year() -> None:
    assert Intake(LIB, age_years=70).progress() == (0, 7)  # PHQ-2, GAD-2, STEADI x3
    assert Intake(LIB, age_years=16).finished  # the practice's rules: adults only
    assert Intake(LIB, age_years=40, done_this_year=("phq-2", "gad-2")).finished


def test_steadi_any_yes_screens_at_risk() -> None:
    intake = Intake(LIB, age_years=70, done_this_year=("phq-2", "gad-2"))
    for code in ("no", "yes", "no"):
        intake.answer(code)
    [steadi] = intake.results()
    assert (steadi.score, steadi.positive) == (None, True)


def test_a_wrong_answer_code_says_what_was_expected() -> None:
    with pytest.raises(AnswerError, match="expected one of LA6568-5, LA6569-3"):
        phq_only().answer("yes")


def test_a_broken_file_is_named(tmp_path: Path) -> None:
    for name in ("phq-2.json", "rules.toml"):
        (tmp_path / name).write_text((QUESTIONNAIRE_DIR / name).read_text(encoding="utf-8"),
                                     encoding="utf-8")
    with pytest.raises(QuestionnaireError, match="no questionnaire 'phq-9'"):
        load_library(tmp_path)
    broken = json.loads((QUESTIONNAIRE_DIR / "phq-2.json").read_text(encoding="utf-8"))
    del broken["item"][0]["answerOption"][0]["extension"]
    (tmp_path / "phq-2.json").write_text(json.dumps(broken), encoding="utf-8")
    with pytest.raises(QuestionnaireError, match="ordinalValue"):
        load_library(tmp_path)


@pytest.mark.parametrize("version", us_core.VERSIONS)
def test_responses_and_scores_pass_us_core(version: str) -> None:
    intake = phq_only(language="es")
    for code in US_CORE_EXAMPLE:
        intake.answer(code)
    at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    bundle = screening_bundle(intake.results(), PATIENT, appointment_id="APT-0001",
                              authored_at=at, message_id=UUID(int=7), sent_at=at)
    resources = [e["resource"] for e in bundle["entry"]]  # type: ignore[index,union-attr]
    assert [r["resourceType"] for r in resources] == [
        "QuestionnaireResponse", "Observation", "QuestionnaireResponse", "Observation"]
    for resource in resources:
        assert us_core.problems(resource, version) == []
    phq9_score = resources[3]
    assert phq9_score["code"]["coding"][0]["code"] == "44261-6"
    assert phq9_score["valueQuantity"]["value"] == 12
    assert phq9_score["derivedFrom"] == [{"reference": bundle["entry"][2]["fullUrl"]}]  # type: ignore[index,call-overload]
