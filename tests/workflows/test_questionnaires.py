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
- Pfizer's Spanish (USA) PHQ-9: "Poco interés o placer en hacer cosas", "Ningún día" (the
  form as transcribed at es.studenta.com, "PatientHealthQuestionnaire9_Spanish");
- LOINC: 69724-3 is the PHQ-4 panel and 70272-0 the PHQ-4 total score (loinc.org; LHC-Forms'
  form list "69724-3 PHQ-4"), so neither codes a GAD-2; the GAD-7 panel 69737-5 holds items
  69725-0, 68509-9, 69733-4, 69734-2, 69735-9, 69689-8, 69736-7 and total 70274-6
  (loinc.org/69729-2 panel hierarchy);
- Tobacco: LOINC 72166-2 Tobacco smoking status (HL7/US-Core
  ValueSet-us-core-smoking-status-observation-codes.json) answered with the US Core Smoking
  Status SNOMED CT codes 449868002 (daily), 428041000124106 (occasional), 8517006 (ex-smoker),
  266919005 (never smoked) (US Core 3.1 ValueSet us-core-observation-smokingstatus);
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
    return Intake(LIB, age_years=age, language=language, done_this_year=("gad-2", "tobacco"))


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
    intake = Intake(LIB, age_years=40, done_this_year=("tobacco",))
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
    assert question.options[0] == (NOT_AT_ALL, "Ningún día")


def test_rules_by_age_and_done_this_year() -> None:
    # PHQ-2, GAD-2, STEADI x3, tobacco
    assert Intake(LIB, age_years=70).progress() == (0, 8)
    assert Intake(LIB, age_years=16).finished  # the practice's rules: adults only
    assert Intake(LIB, age_years=40, done_this_year=("phq-2", "gad-2", "tobacco")).finished


def test_steadi_any_yes_screens_at_risk() -> None:
    intake = Intake(LIB, age_years=70, done_this_year=("phq-2", "gad-2", "tobacco"))
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


def test_gad_codes_are_loincs_own() -> None:
    gad7, gad2 = LIB.instruments["gad-7"], LIB.instruments["gad-2"]
    assert gad7.panel is not None and gad7.panel[0] == "69737-5"
    assert gad7.score is not None and gad7.score[0] == "70274-6"
    assert [i.loinc for i in gad7.items] == [
        "69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]
    # Not the PHQ-4's panel or total: GAD-2 has no LOINC code of its own here.
    assert (gad2.panel, gad2.score) == (None, None)
    assert [i.loinc for i in gad2.items] == ["69725-0", "68509-9"]
    intake = Intake(LIB, age_years=40, done_this_year=("phq-2", "tobacco"))
    intake.answer(SEVERAL)
    intake.answer(NOT_AT_ALL)  # GAD-2 = 1 < 3: no GAD-7
    [gad2_result] = intake.results()
    assert (gad2_result.score, gad2_result.score_loinc, gad2_result.positive) == (1, None, False)
    at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    bundle = screening_bundle(intake.results(), PATIENT, appointment_id="APT-0001",
                              authored_at=at, message_id=UUID(int=7), sent_at=at)
    # The answers go; no Observation with a code that would mean something else.
    assert [e["resource"]["resourceType"] for e in bundle["entry"]] == [  # type: ignore[index,union-attr]
        "QuestionnaireResponse"]


def test_tobacco_use_is_us_core_smoking_status_coded() -> None:
    tobacco = LIB.instruments["tobacco"]
    [item] = tobacco.items
    assert item.loinc == "72166-2"
    assert [(o.system, o.code) for o in item.options] == [
        ("http://snomed.info/sct", "449868002"), ("http://snomed.info/sct", "428041000124106"),
        ("http://snomed.info/sct", "8517006"), ("http://snomed.info/sct", "266919005")]
    assert tobacco.speaks("es")
    for code, current in (("449868002", True), ("428041000124106", True), ("8517006", False),
                          ("266919005", False)):
        intake = Intake(LIB, age_years=30, done_this_year=("phq-2", "gad-2"))
        intake.answer(code)
        [result] = intake.results()
        assert (result.instrument, result.score, result.positive) == ("tobacco", None, current)
    assert Intake(LIB, age_years=17, done_this_year=("phq-2", "gad-2")).finished


@pytest.mark.parametrize("version", us_core.VERSIONS)
def test_tobacco_goes_as_a_us_core_smoking_status_observation(version: str) -> None:
    # US Core us-core-smokingstatus (StructureDefinitions vendored from HL7/US-Core at the
    # 6.1.0, 7.0.0 and 8.0.0 tags): LOINC 72166-2, category social-history, a SNOMED CT value
    # from the smoking status value set; 8517006 is "Ex-smoker" (the value set's display).
    intake = Intake(LIB, age_years=30, done_this_year=("phq-2", "gad-2"))
    intake.answer("8517006")
    at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    bundle = screening_bundle(intake.results(), PATIENT, appointment_id="APT-0001",
                              authored_at=at, message_id=UUID(int=7), sent_at=at)
    entries = bundle["entry"]  # type: ignore[index]
    response, status = (e["resource"] for e in entries)  # type: ignore[union-attr]
    assert (response["resourceType"], status["resourceType"]) == (
        "QuestionnaireResponse", "Observation")
    assert status["meta"]["profile"] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-smokingstatus"]
    assert status["code"]["coding"][0]["code"] == "72166-2"
    assert status["category"][0]["coding"][0]["code"] == "social-history"
    assert status["valueCodeableConcept"]["coding"][0]["code"] == "8517006"
    assert status["derivedFrom"] == [{"reference": entries[0]["fullUrl"]}]  # type: ignore[index,call-overload]
    assert us_core.problems(status, version) == []
    assert us_core.problems(response, version) == []


def test_screened_within_the_year_is_not_asked_again() -> None:
    from datetime import date

    today = date(2026, 3, 2)

    def first(last: dict[str, date]) -> str | None:
        question = Intake(LIB, age_years=40, last_screened=last, today=today).current()
        return None if question is None else question.instrument

    assert first({}) == "phq-2"
    assert first({"phq-2": date(2025, 6, 1)}) == "gad-2"  # 274 days ago: this year
    assert first({"phq-2": date(2025, 3, 1)}) == "phq-2"  # 366 days ago: due again
    assert first({"44249-1": date(2026, 1, 10)}) == "gad-2"  # a PHQ-9 by its LOINC code
    # Both depression and anxiety screened, tobacco asked the day before: nothing to ask.
    assert first({"phq-9": date(2026, 1, 10), "gad-7": date(2026, 2, 1),
                  "tobacco": date(2026, 3, 1)}) is None
    assert first({"not-ours": date(2026, 3, 1)}) == "phq-2"


def test_no_translation_means_not_asked_and_said_so(tmp_path: Path) -> None:
    for name in ("phq-2.json", "phq-9.json", "rules.toml"):
        text = (QUESTIONNAIRE_DIR / name).read_text(encoding="utf-8")
        if name == "rules.toml":
            text = text.split("[[rule]]\ninstrument = \"gad-2\"")[0]
        (tmp_path / name).write_text(text, encoding="utf-8")
    # A PHQ-9 whose item 9 lost its Spanish: never asked half in English.
    phq9 = json.loads((tmp_path / "phq-9.json").read_text(encoding="utf-8"))
    del phq9["item"][8]["_text"]
    (tmp_path / "phq-9.json").write_text(json.dumps(phq9), encoding="utf-8")
    library = load_library(tmp_path)
    intake = Intake(library, age_years=40, language="es")
    intake.answer(NEARLY)
    intake.answer(NEARLY)  # PHQ-2 = 6: the PHQ-9 is due, but not in Spanish
    assert intake.finished
    assert [(n.instrument, n.reason, n.language) for n in intake.not_asked()] == [
        ("phq-9", "no_translation", "es")]
    assert [r.instrument for r in intake.results()] == ["phq-2"]
    # A language the files do not have at all: nothing asked, everything noted.
    other = Intake(library, age_years=40, language="vi")
    assert other.finished
    assert [n.instrument for n in other.not_asked()] == ["phq-2"]
    english = Intake(library, age_years=40, language="en")
    english.answer(NEARLY)
    english.answer(NEARLY)
    assert english.current() is not None and english.not_asked() == ()


def test_back_takes_the_last_answer_back_and_its_follow_up() -> None:
    intake = phq_only()
    assert intake.back() is False
    intake.answer(HALF)
    intake.answer(HALF)  # PHQ-2 = 4: PHQ-9 planned
    assert intake.progress() == (2, 9)
    assert intake.back() is True
    assert intake.progress() == (1, 2)  # the PHQ-9 is no longer planned
    question = intake.current()
    assert question is not None and (question.instrument, question.number) == ("phq-2", 2)
    intake.answer(NOT_AT_ALL)  # PHQ-2 = 2: no PHQ-9
    assert intake.finished
    [phq2] = intake.results()
    assert (phq2.score, [a.code for a in phq2.answers]) == (2, [HALF, NOT_AT_ALL])
