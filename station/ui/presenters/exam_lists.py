"""The exam station's medication, allergy and point-of-care steps: taps become the rooming's
list intents (station.rooming_lists), the form being typed is held here (what was typed
survives a refusal, and goes at sign-out), and each step's screen renders one `StepView`.

Every word the MA reads on these steps is in this module, each marked with `_` (translated
into the station's language where it is shown) or `N_` (a table, translated where shown).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from station.locale import N_, Translate
from station.poc import PocResultError, PocTest, ResultKind, UnknownPocTestError, groups, judge
from station.poc import poc_test as _poc_test
from station.rooming import Rooming
from station.rooming_data import (
    AllergyReview,
    AllergySeverity,
    AllergyStatus,
    MedicationReview,
    MedicationStatus,
    PocEntry,
    Refusal,
    RoomingState,
)
from station.ui.presenters.base import Tone, _Base, _try
from station.workflow import RefusedError

# The steps these screens are (screen names), and the rooming states they open from: a step
# lies over the rooming's own step and returns to it.
STEPS = ("medications", "allergies", "poc")
STEP_STATES = frozenset({RoomingState.VITALS, RoomingState.COMPLAINT, RoomingState.REVIEW})
GLUCOSE_KEYS = ("7", "8", "9", "Del", "4", "5", "6", ".", "1", "2", "3", "0")
GLUCOSE_MAX_CHARS = 5  # "600.0"
ROW_CHIP_DP = 130  # a chip beside a list row
WIDE_CHIP_DP = 270  # "Acknowledge — clinician told"

GROUP_LABELS: dict[str, str] = {
    "influenza": N_("Influenza A and B"),
    "urine_dipstick": N_("Urine dipstick"),
}
SEVERITY_LABELS: dict[str, str] = {
    AllergySeverity.MILD: N_("mild"),
    AllergySeverity.MODERATE: N_("moderate"),
    AllergySeverity.SEVERE: N_("severe"),
    "": N_("not sure"),
}
MEDICATION_STATUS_WORDS: dict[MedicationStatus, str] = {
    MedicationStatus.UNREVIEWED: N_("not asked yet"),
    MedicationStatus.TAKING: N_("taking"),
    MedicationStatus.NOT_TAKING: N_("not taking"),
    MedicationStatus.CHANGED: N_("changed"),
}
ALLERGY_STATUS_WORDS: dict[AllergyStatus, str] = {
    AllergyStatus.UNREVIEWED: N_("not asked yet"),
    AllergyStatus.CONFIRMED: N_("confirmed"),
    AllergyStatus.REFUTED: N_("not allergic"),
}


# ------------------------------------------------------------------------------ view models


@dataclass(frozen=True)
class Choice:
    """A button: its words, the presenter intent it fires (with arguments), whether it is the
    chosen one (drawn filled) and its width in dp (0: shares the row)."""

    label: str
    intent: str
    args: tuple[object, ...] = ()
    chosen: bool = False
    width: int = 0


@dataclass(frozen=True)
class ListRow:
    key: str
    text: str
    detail: str = ""
    severity: str = ""  # "", "ok", "warning", "critical", "rejected": the row's fill
    choices: tuple[Choice, ...] = ()


@dataclass(frozen=True)
class ChoiceGroup:
    label: str
    choices: tuple[Choice, ...]
    cols: int = 3


@dataclass(frozen=True)
class FormField:
    key: str
    label: str
    value: str
    hint: str = ""
    keypad: bool = False  # typed on the step's number keys, not the keyboard


@dataclass(frozen=True)
class FormView:
    shape: tuple[str, str]  # which form: rebuilt only when this changes
    title: str
    error: str
    fields: tuple[FormField, ...]
    groups: tuple[ChoiceGroup, ...]
    keys: tuple[str, ...]  # the number keys (glucose), else ()
    preview: str  # what the typed value would be judged (glucose flags), "" when nothing
    preview_severity: str
    actions: tuple[Choice, ...]  # Cancel, Save
    groups_first: bool = False  # results to tap above the fields (point-of-care)


@dataclass(frozen=True)
class StepView:
    title: str
    rows: tuple[ListRow, ...]
    empty: str  # said when there are no rows
    actions: tuple[Choice, ...]
    action_cols: int
    nav: tuple[Choice, ...]
    form: FormView | None


# ------------------------------------------------------------------------------- the forms


class FormKind(StrEnum):
    CHANGE_MEDICATION = "change_medication"
    ADD_MEDICATION = "add_medication"
    ADD_ALLERGY = "add_allergy"
    POC = "poc"


@dataclass(frozen=True)
class ListForm:
    """A form being filled in: what was typed and picked so far, and what was wrong."""

    kind: FormKind
    target: str = ""  # CHANGE_MEDICATION: the medication's index; POC: the test group
    texts: tuple[tuple[str, str], ...] = ()
    picks: tuple[tuple[str, str], ...] = ()
    error: str = ""

    def text(self, key: str) -> str:
        return dict(self.texts).get(key, "")

    def pick(self, key: str) -> str:
        return dict(self.picks).get(key, "")

    def with_text(self, key: str, value: str) -> ListForm:
        texts = {**dict(self.texts), key: value}
        return replace(self, texts=tuple(texts.items()), error="")

    def with_pick(self, key: str, code: str) -> ListForm:
        picks = dict(self.picks)
        if picks.get(key) == code:
            del picks[key]  # a second tap takes the pick back
        else:
            picks[key] = code
        return replace(self, picks=tuple(picks.items()), error="")


def group_label(key: str, tests: tuple[PocTest, ...], _: Translate) -> str:
    return _(GROUP_LABELS[key]) if key in GROUP_LABELS else _(tests[0].label)


def poc_result_text(entry: PocEntry, _: Translate) -> str:
    """ "Rapid strep A: positive", "Fingerstick glucose: 48 mg/dL", with the kit lot."""
    test = _poc_test(entry.result.test)
    result = entry.result
    if test.kind is ResultKind.QUANTITY and result.value is not None:
        said = f"{result.value:g} {test.symbol}"
    else:
        step = test.step(result.result)
        said = _(step.label) if step is not None else result.result
    text = _("{test}: {result}").format(test=_(test.label), result=said)
    if result.kit_lot:
        text += "  ·  " + _("lot {lot}").format(lot=result.kit_lot)
    return text


def poc_severity(entry: PocEntry) -> str:
    result = entry.result
    if result.critical:
        return "ok" if entry.acknowledged else "critical"
    if result.invalid:
        return "rejected"
    return "warning" if result.abnormal else "ok"


def medication_text(review: MedicationReview) -> str:
    return f"{review.medication.name} {review.medication.dose}".strip()


def allergy_text(review: AllergyReview, _: Translate) -> str:
    allergy = review.allergy
    text = allergy.substance
    if allergy.reaction:
        text += " — " + allergy.reaction
    if allergy.severity is not None:
        text += f" ({_(SEVERITY_LABELS[allergy.severity])})"
    return text


def medication_detail(review: MedicationReview, _: Translate) -> str:
    parts = []
    if review.added:
        parts.append(_("added today · patient-reported"))
    elif review.status is MedicationStatus.UNREVIEWED:
        parts.append(_(MEDICATION_STATUS_WORDS[review.status]))
    if review.status is MedicationStatus.CHANGED and review.new_dose:
        parts.append(_("now: {dose}").format(dose=review.new_dose))
    if review.note:
        parts.append(_("note: {note}").format(note=review.note))
    return "  ·  ".join(parts)


class ExamLists(_Base):
    """The list steps' intents and views (mixed into ExamPresenter, which owns these)."""

    rooming: Rooming
    step: str | None = None
    form: ListForm | None = None

    def _tap(self) -> None:
        raise NotImplementedError  # ExamPresenter counts taps

    # -- where the MA is ----------------------------------------------------------------------

    def _step_shown(self) -> str | None:
        """The list step on screen, if one is open over a step of this patient's rooming."""
        if self.step is not None and self.rooming.state in STEP_STATES:
            return self.step
        return None

    def _close_step(self) -> None:
        self.step = None
        self.form = None

    def open_step(self, step: str) -> None:
        """Medications, allergies or point-of-care, over the rooming's current step."""
        if step not in STEPS:
            raise ValueError(f"no list step {step!r}; expected one of {', '.join(STEPS)}")
        if self.rooming.state not in STEP_STATES:
            self.say(self._("confirm the patient's name and date of birth first"), Tone.ERROR)
            return
        self.step = step
        self.form = None
        self.say("")

    # -- medications ----------------------------------------------------------------------------

    def change_medication(self, index: int, new_dose: str = "", note: str = "") -> bool:
        self._tap()
        return _try(
            self,
            lambda: self.rooming.change_medication(index, new_dose=new_dose, note=note),
        )

    def add_medication(self, name: str, dose: str = "", note: str = "") -> bool:
        self._tap()
        return _try(self, lambda: self.rooming.add_medication(name, dose, note))

    def remove_added_medication(self, index: int) -> None:
        self._tap()
        _try(self, lambda: self.rooming.remove_added_medication(index))

    def set_no_medications(self, on: bool) -> None:
        self._tap()
        _try(self, lambda: self.rooming.set_no_medications(on))

    def edit_medication(self, index: int) -> None:
        """ "changed…": the form for the new dose and a note, filled with what was said."""
        self._tap()
        meds = self.rooming.medications
        if not 0 <= index < len(meds):
            return
        review = meds[index]
        self.form = ListForm(
            FormKind.CHANGE_MEDICATION,
            str(index),
            texts=(("new_dose", review.new_dose), ("note", review.note)),
        )

    # -- allergies ------------------------------------------------------------------------------

    def set_allergy_status(self, index: int, status: AllergyStatus) -> None:
        self._tap()
        _try(self, lambda: self.rooming.set_allergy_status(index, status))

    def confirm_allergy(self, index: int) -> None:
        self.set_allergy_status(index, AllergyStatus.CONFIRMED)

    def add_allergy(
        self, substance: str, reaction: str = "", severity: AllergySeverity | None = None
    ) -> bool:
        self._tap()
        return _try(
            self,
            lambda: self.rooming.add_allergy(substance, reaction, severity),
        )

    def remove_added_allergy(self, index: int) -> None:
        self._tap()
        _try(self, lambda: self.rooming.remove_added_allergy(index))

    def set_no_known_allergies(self, on: bool) -> None:
        self._tap()
        _try(self, lambda: self.rooming.set_no_known_allergies(on))

    # -- point-of-care --------------------------------------------------------------------------

    def record_poc(self, test: str, result: str | float, kit_lot: str = "") -> bool:
        self._tap()
        return _try(self, lambda: self.rooming.record_poc(test, result, kit_lot))

    def remove_poc(self, entry_id: int) -> None:
        self._tap()
        _try(self, lambda: self.rooming.remove_poc(entry_id))

    def acknowledge_poc(self, entry_id: int) -> None:
        self._tap()
        _try(self, lambda: self.rooming.acknowledge_poc(entry_id))

    # -- the form ---------------------------------------------------------------------------------

    def open_form(self, kind: str, target: str = "") -> None:
        self._tap()
        form_kind = FormKind(kind)
        if form_kind is FormKind.POC and target not in groups():
            self.say(self._("no such test: {test}").format(test=target), Tone.ERROR)
            return
        self.form = ListForm(form_kind, target)

    def form_text(self, key: str, text: str) -> None:
        """What is typed in a form field, as it is typed (not a tap)."""
        if self.form is not None and self.form.text(key) != text:
            self.form = self.form.with_text(key, text)

    def form_pick(self, key: str, code: str) -> None:
        self._tap()
        if self.form is not None:
            self.form = self.form.with_pick(key, code)

    def form_key(self, key: str) -> None:
        """A number key of the glucose pad: a digit, "." or "Del"."""
        if self.form is None:
            return
        self._tap()
        value = self.form.text("value")
        if key == "Del":
            value = value[:-1]
        elif key == "." and "." in value:
            return
        elif len(value) < GLUCOSE_MAX_CHARS:
            value += key
        self.form = self.form.with_text("value", value)

    def cancel_form(self) -> None:
        self._tap()
        self.form = None
        self.say("")

    def save_form(self) -> None:
        """Save what the form holds; anything wrong is said on the form, which stays open
        with everything typed (nothing is recorded)."""
        self._tap()
        form = self.form
        if form is None:
            return
        try:
            self._save(form)
        except RefusedError as exc:
            error = exc.message + "".join(f" — {d}" for d in exc.details)
            self.form = replace(form, error=self.said(error))
            return
        except (PocResultError, UnknownPocTestError) as exc:
            self.form = replace(form, error=self.said(str(exc)))
            return
        self.form = None
        self.say("")

    def _save(self, form: ListForm) -> None:
        text = form.text
        if form.kind is FormKind.CHANGE_MEDICATION:
            self.rooming.change_medication(
                int(form.target), new_dose=text("new_dose"), note=text("note")
            )
        elif form.kind is FormKind.ADD_MEDICATION:
            self.rooming.add_medication(text("name"), text("dose"), text("note"))
        elif form.kind is FormKind.ADD_ALLERGY:
            picked = form.pick("severity")
            severity = AllergySeverity(picked) if picked else None
            self.rooming.add_allergy(text("substance"), text("reaction"), severity)
        else:
            self._save_poc(form)

    def _save_poc(self, form: ListForm) -> None:
        tests = groups()[form.target]
        lot = form.text("kit_lot")
        chosen: list[tuple[str, str]] = []
        for test in tests:
            if test.kind is ResultKind.QUANTITY:
                if form.text("value"):
                    chosen.append((test.key, form.text("value")))
            elif form.pick(test.key):
                chosen.append((test.key, form.pick(test.key)))
        if not chosen:
            what = (
                self._("type the value")
                if tests[0].kind is ResultKind.QUANTITY
                else self._("tap a result")
            )
            raise PocResultError(what)
        if len(tests) > 1 and tests[0].group != "urine_dipstick" and len(chosen) < len(tests):
            # Influenza A and B are read off one cassette: both lines or neither.
            missing = [self._(t.label) for t in tests if t.key not in dict(chosen)]
            raise PocResultError(
                self._("tap a result for {tests}").format(tests=", ".join(missing))
            )
        for key, result in chosen:
            judge(key, result, lot)  # every one checked before any is recorded
        for key, result in chosen:
            self.rooming.record_poc(key, result, lot)

    # -- the views ------------------------------------------------------------------------------

    def step_view(self, step: str) -> StepView:
        views: dict[str, Callable[[], StepView]] = {
            "medications": self._medications_view,
            "allergies": self._allergies_view,
            "poc": self._poc_view,
        }
        return views[step]()

    def _medications_view(self) -> StepView:
        rows = []
        for index, review in enumerate(self.rooming.medications):
            if review.added:
                choices: tuple[Choice, ...] = (
                    Choice(
                        self._("remove"), "remove_added_medication", (index,), width=ROW_CHIP_DP
                    ),
                )
            else:
                status = review.status
                choices = (
                    Choice(
                        self._("taking"),
                        "set_medication",
                        (index, MedicationStatus.TAKING),
                        status is MedicationStatus.TAKING,
                        ROW_CHIP_DP,
                    ),
                    Choice(
                        self._("not taking"),
                        "set_medication",
                        (index, MedicationStatus.NOT_TAKING),
                        status is MedicationStatus.NOT_TAKING,
                        ROW_CHIP_DP,
                    ),
                    Choice(
                        self._("changed…"),
                        "edit_medication",
                        (index,),
                        status is MedicationStatus.CHANGED,
                        ROW_CHIP_DP,
                    ),
                )
            rows.append(
                ListRow(
                    f"med-{index}",
                    medication_text(review),
                    medication_detail(review, self._),
                    "",
                    choices,
                )
            )
        none = self.rooming.no_medications
        return StepView(
            title=self._("Medications: ask about each one"),
            rows=tuple(rows),
            empty=self._(
                "No medications on the practice's list. Ask, then add each one, or tap "
                "“Takes no medications”."
            ),
            actions=(
                Choice(self._("+ Add a medication"), "open_form", (FormKind.ADD_MEDICATION.value,)),
                Choice(
                    # Words, not a tick: the kiosk font has no ✓ (it drew an empty box).
                    self._("Marked: takes no medications")
                    if none
                    else self._("Takes no medications"),
                    "set_no_medications",
                    (not none,),
                    none,
                ),
            ),
            action_cols=2,
            nav=(
                Choice(self._("<  Complaint"), "go", ("complaint",)),
                Choice(self._("Allergies  >"), "go", ("allergies",), True),
            ),
            form=self._form_view(),
        )

    def _allergies_view(self) -> StepView:
        rows = []
        for index, review in enumerate(self.rooming.allergies):
            if review.added:
                choices: tuple[Choice, ...] = (
                    Choice(self._("remove"), "remove_added_allergy", (index,), width=ROW_CHIP_DP),
                )
                detail = self._("added today · patient-reported")
            else:
                choices = (
                    Choice(
                        self._("confirmed"),
                        "set_allergy_status",
                        (index, AllergyStatus.CONFIRMED),
                        review.status is AllergyStatus.CONFIRMED,
                        ROW_CHIP_DP,
                    ),
                    Choice(
                        self._("not allergic"),
                        "set_allergy_status",
                        (index, AllergyStatus.REFUTED),
                        review.status is AllergyStatus.REFUTED,
                        ROW_CHIP_DP,
                    ),
                )
                detail = (
                    self._(ALLERGY_STATUS_WORDS[review.status])
                    if review.status is AllergyStatus.UNREVIEWED
                    else ""
                )
            rows.append(
                ListRow(f"allergy-{index}", allergy_text(review, self._), detail, "", choices)
            )
        none = self.rooming.no_known_allergies
        return StepView(
            title=self._("Allergies: confirm each one with the patient"),
            rows=tuple(rows),
            empty=self._(
                "No allergies on the practice's list. Ask, then add each one, or tap "
                "“No known allergies”."
            ),
            actions=(
                Choice(self._("+ Add an allergy"), "open_form", (FormKind.ADD_ALLERGY.value,)),
                Choice(
                    self._("Marked: no known allergies") if none else self._("No known allergies"),
                    "set_no_known_allergies",
                    (not none,),
                    none,
                ),
            ),
            action_cols=2,
            nav=(
                Choice(self._("<  Medications"), "go", ("medications",)),
                Choice(self._("Review  >"), "go", ("review",), True),
            ),
            form=self._form_view(),
        )

    def _poc_view(self) -> StepView:
        rows = []
        for entry in self.rooming.poc_results:
            choices: list[Choice] = []
            if entry.result.critical and not entry.acknowledged:
                choices.append(
                    Choice(
                        self._("Acknowledge — clinician told"),
                        "acknowledge_poc",
                        (entry.entry_id,),
                        width=WIDE_CHIP_DP,
                    )
                )
            choices.append(
                Choice(self._("remove"), "remove_poc", (entry.entry_id,), width=ROW_CHIP_DP)
            )
            notes = [self.said(f.message) for f in entry.result.flags]
            if entry.result.critical and entry.acknowledged:
                notes.append(self._("acknowledged — clinician told"))
            rows.append(
                ListRow(
                    f"poc-{entry.entry_id}",
                    poc_result_text(entry, self._),
                    "\n".join(notes),
                    poc_severity(entry),
                    tuple(choices),
                )
            )
        return StepView(
            title=self._("Point-of-care tests: pick the test you ran"),
            rows=tuple(rows),
            empty=self._("No results recorded yet."),
            actions=tuple(
                Choice(group_label(key, tests, self._), "open_form", (FormKind.POC.value, key))
                for key, tests in groups().items()
            ),
            action_cols=3,
            nav=(Choice(self._("Review  >"), "go", ("review",), True),),
            form=self._form_view(),
        )

    def _form_view(self) -> FormView | None:
        form = self.form
        if form is None:
            return None
        fields: tuple[FormField, ...] = ()
        choice_groups: tuple[ChoiceGroup, ...] = ()
        keys: tuple[str, ...] = ()
        preview, preview_severity = "", ""
        if form.kind is FormKind.CHANGE_MEDICATION:
            index = int(form.target)
            meds = self.rooming.medications
            name = medication_text(meds[index]) if 0 <= index < len(meds) else ""
            title = self._("{medication}: what changed?").format(medication=name)
            fields = (
                FormField(
                    "new_dose",
                    self._("New dose"),
                    form.text("new_dose"),
                    self._("the dose the patient takes now"),
                ),
                FormField(
                    "note",
                    self._("Note"),
                    form.text("note"),
                    self._("what the patient said (optional)"),
                ),
            )
        elif form.kind is FormKind.ADD_MEDICATION:
            title = self._("Add a medication the patient takes (patient-reported)")
            fields = (
                FormField(
                    "name",
                    self._("Medication"),
                    form.text("name"),
                    self._("name, as the patient says it"),
                ),
                FormField("dose", self._("Dose"), form.text("dose"), self._("e.g. 10 mg daily")),
                FormField("note", self._("Note"), form.text("note"), self._("optional")),
            )
        elif form.kind is FormKind.ADD_ALLERGY:
            title = self._("Add an allergy the patient reports")
            fields = (
                FormField(
                    "substance",
                    self._("Substance"),
                    form.text("substance"),
                    self._("e.g. penicillin, peanuts, latex"),
                ),
                FormField(
                    "reaction",
                    self._("Reaction"),
                    form.text("reaction"),
                    self._("what happens, e.g. hives"),
                ),
            )
            picked = form.pick("severity")
            choice_groups = (
                ChoiceGroup(
                    self._("Severity"),
                    tuple(
                        Choice(self._(label), "form_pick", ("severity", str(code)), picked == code)
                        for code, label in SEVERITY_LABELS.items()
                        if code
                    ),
                    cols=3,
                ),
            )
        else:
            tests = groups()[form.target]
            title = group_label(form.target, tests, self._) + "  ·  " + self._(tests[0].specimen)
            if tests[0].kind is ResultKind.QUANTITY:
                test = tests[0]
                keys = GLUCOSE_KEYS
                fields = (
                    FormField(
                        "value",
                        f"{self._(test.label)} ({test.symbol})",
                        form.text("value"),
                        keypad=True,
                    ),
                )
                preview, preview_severity = self._glucose_preview(test, form.text("value"))
            else:
                choice_groups = tuple(
                    ChoiceGroup(
                        self._(t.label),
                        tuple(
                            Choice(
                                self._(s.label),
                                "form_pick",
                                (t.key, s.code),
                                form.pick(t.key) == s.code,
                            )
                            for s in t.steps
                        ),
                        cols=3 if len(t.steps) <= 3 else 4,
                    )
                    for t in tests
                )
            fields += (
                FormField("kit_lot", self._("Kit lot"), form.text("kit_lot"), self._("optional")),
            )
        return FormView(
            shape=(form.kind.value, form.target),
            title=title,
            error=form.error,
            fields=fields,
            groups=choice_groups,
            keys=keys,
            preview=preview,
            preview_severity=preview_severity,
            actions=(
                Choice(self._("Cancel"), "cancel_form"),
                Choice(self._("Save"), "save_form", chosen=True),
            ),
            groups_first=form.kind is FormKind.POC,
        )

    def _glucose_preview(self, test: PocTest, typed: str) -> tuple[str, str]:
        """What the typed number would be judged, before Save: its flag, or why not."""
        if not typed:
            return self._("expected {low:g}–{high:g} {unit}").format(
                low=test.low, high=test.high, unit=test.symbol
            ), ""
        try:
            result = judge(test.key, typed)
        except PocResultError as exc:
            return self.said(str(exc)), "critical"
        if result.flags:
            flag = result.flags[0]
            return self.said(flag.message), "critical" if result.critical else "warning"
        return self._("{value} {unit}: in the usual range").format(
            value=typed, unit=test.symbol
        ), ""

    # -- on Review ----------------------------------------------------------------------------

    def review_fixes(self) -> tuple[ListRow, ...]:
        """What the lists still need before Send, each with a button to go fix it: listed
        medications and allergies not asked about, critical results not acknowledged."""
        if self.rooming.state is not RoomingState.REVIEW:
            return ()
        rows = []
        for index, review in enumerate(self.rooming.medications):
            if review.status is MedicationStatus.UNREVIEWED:
                rows.append(
                    ListRow(
                        f"fix-med-{index}",
                        self._("Medication not reviewed: {medication}").format(
                            medication=medication_text(review)
                        ),
                        severity="warning",
                        choices=(
                            Choice(
                                self._("Medications"), "go", ("medications",), width=WIDE_CHIP_DP
                            ),
                        ),
                    )
                )
        for index, allergy in enumerate(self.rooming.allergies):
            if allergy.status is AllergyStatus.UNREVIEWED:
                rows.append(
                    ListRow(
                        f"fix-allergy-{index}",
                        self._("Allergy not reviewed: {allergy}").format(
                            allergy=allergy_text(allergy, self._)
                        ),
                        severity="warning",
                        choices=(
                            Choice(self._("Allergies"), "go", ("allergies",), width=WIDE_CHIP_DP),
                        ),
                    )
                )
        for entry in self.rooming.poc_results:
            if entry.result.critical and not entry.acknowledged:
                rows.append(
                    ListRow(
                        f"fix-poc-{entry.entry_id}",
                        poc_result_text(entry, self._),
                        "\n".join(self.said(f.message) for f in entry.result.flags),
                        "critical",
                        (
                            Choice(
                                self._("Acknowledge — clinician told"),
                                "acknowledge_poc",
                                (entry.entry_id,),
                                width=WIDE_CHIP_DP,
                            ),
                        ),
                    )
                )
        return tuple(rows)

    def blocker_words(self, refusal: Refusal, message: str) -> str:
        """Why Send waits, under the Review list: the lists' items are each on a row above
        (with the button that fixes it), so they are not named again here."""
        if refusal is Refusal.MEDICATIONS_NOT_REVIEWED:
            return self._("review the medications marked above")
        if refusal is Refusal.ALLERGIES_NOT_REVIEWED:
            return self._("review the allergies marked above")
        return message

    def review_steps(self) -> tuple[Choice, ...]:
        """The list steps reachable from Review (point-of-care tests are only here)."""
        if self.rooming.state is not RoomingState.REVIEW:
            return ()
        count = len(self.rooming.poc_results)
        return (
            Choice(self._("Medications"), "go", ("medications",)),
            Choice(self._("Allergies"), "go", ("allergies",)),
            Choice(
                self._("Point-of-care tests") + (f" ({count})" if count else ""), "go", ("poc",)
            ),
        )

    def list_summary(self) -> tuple[str, ...]:
        """The lists in words for Review: the open rooming's, or once sent, what was sent."""
        record = self.rooming.last_record
        if self.rooming.state is RoomingState.SENT and record is not None:
            meds, no_meds = record.medications, record.no_medications
            allergies, nka = record.allergies, record.no_known_allergies
            poc = record.poc_results
        else:
            meds, no_meds = self.rooming.medications, self.rooming.no_medications
            allergies, nka = self.rooming.allergies, self.rooming.no_known_allergies
            poc = self.rooming.poc_results
        lines = []
        if no_meds:
            lines.append(self._("Medications: takes no medications"))
        for med in meds:
            words = (
                self._("added, patient-reported")
                if med.added
                else self._(MEDICATION_STATUS_WORDS[med.status])
            )
            if med.status is MedicationStatus.CHANGED and med.new_dose:
                words += " — " + med.new_dose
            lines.append(
                self._("Medication {medication}: {status}").format(
                    medication=medication_text(med), status=words
                )
            )
        if nka:
            lines.append(self._("Allergies: no known allergies"))
        for allergy in allergies:
            words = (
                self._("added, patient-reported")
                if allergy.added
                else self._(ALLERGY_STATUS_WORDS[allergy.status])
            )
            lines.append(
                self._("Allergy {allergy}: {status}").format(
                    allergy=allergy_text(allergy, self._), status=words
                )
            )
        lines.extend(poc_result_text(entry, self._) for entry in poc)
        return tuple(lines)
