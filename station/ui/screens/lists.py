"""The medication, allergy and point-of-care steps: one layout, rendered from the presenter's
`StepView` — the list with its choices, the actions under it, or the form being filled in."""

from __future__ import annotations

from typing import Any

from kivy.factory import Factory
from kivy.metrics import dp

from station.ui.screens.base import BaseScreen, grow_with
from station.ui.theme import SEVERITY_COLOURS, TONE_COLOURS, theme


def choice_button(choice: Any, intent: Any, *, chip: bool = True, **kw: Any) -> Any:
    """A Choice as a button: filled when chosen, quiet when not; a tap fires its intent."""
    widget = (
        Factory.ChipButton(text=choice.label, **kw)
        if chip
        else Factory.BigButton(text=choice.label, **kw)
    )
    widget.fill = theme.button if choice.chosen else theme.quiet
    if choice.width:
        widget.size_hint_x = None
        widget.width = dp(choice.width)
        widget.pos_hint = {"top": 1}  # beside a row's first line, however tall the row grows
    widget.bind(on_release=lambda *_: intent(choice.intent, *choice.args))
    return widget


def list_row(row: Any, intent: Any) -> Any:
    """A ListRow: its words (filled by severity) and its choices on the right; the row grows
    with wrapped text and never drops below a touch target."""
    line = Factory.BoxLayout(size_hint_y=None, height=dp(64), spacing=dp(6))
    text = row.text + (f"\n{row.detail}" if row.detail else "")
    label = Factory.ListLine(text=text, pos_hint={"top": 1})
    if row.severity:
        label.fill = SEVERITY_COLOURS[row.severity]
    line.add_widget(label)
    grow_with(line, label)
    for choice in row.choices:
        line.add_widget(choice_button(choice, intent))
    return line


class ListStepScreen(BaseScreen):
    """One list step; the subclasses only name it (the presenter's step names)."""

    def __init__(self, **kwargs: Any) -> None:
        self._shape: object = None
        self._inputs: dict[str, Any] = {}
        self._pads: dict[str, Any] = {}
        self._groups: Any = None
        super().__init__(**kwargs)

    def render(self, presenter: Any) -> None:
        view = presenter.step_view(self.name)
        if not self.changed(view):
            return
        form = view.form
        title = self.ids.title
        title.text = (form.error or form.title) if form is not None else view.title
        title.fill = TONE_COLOURS["error"] if form is not None and form.error else (0, 0, 0, 0)
        nav = self.ids.nav
        nav.clear_widgets()
        for choice in form.actions if form is not None else view.nav:
            nav.add_widget(choice_button(choice, self.intent, chip=False))
        if form is None:
            self._shape = None
            self._render_list(view)
        else:
            self._render_form(form)

    def _render_list(self, view: Any) -> None:
        body = self.ids.body
        body.clear_widgets()
        self._inputs, self._pads = {}, {}
        for row in view.rows:
            body.add_widget(list_row(row, self.intent))
        if not view.rows:
            body.add_widget(Factory.ListLine(text=view.empty))
        grid = Factory.ChipGrid(cols=view.action_cols)
        for choice in view.actions:
            grid.add_widget(choice_button(choice, self.intent))
        body.add_widget(grid)

    def _render_form(self, form: Any) -> None:
        if form.shape != self._shape:
            self._build_form(form)
            self._shape = form.shape
            self.ids.scroll.scroll_y = 1
        for field in form.fields:
            widget = self._inputs.get(field.key)
            if widget is not None and not widget.focus and widget.text != field.value:
                widget.text = field.value
            pad = self._pads.get(field.key)
            if pad is not None:
                # The number typed so far, and under it what it would be judged (a flag).
                pad.text = f"{field.label}:  {field.value or '_'}" + (
                    f"\n{form.preview}" if form.preview else ""
                )
                pad.fill = (
                    SEVERITY_COLOURS[form.preview_severity]
                    if form.preview_severity
                    else (0, 0, 0, 0)
                )
        self._groups.clear_widgets()
        for group in form.groups:
            self._groups.add_widget(Factory.FormLabel(text=group.label))
            grid = Factory.ChipGrid(cols=group.cols)
            for choice in group.choices:
                grid.add_widget(choice_button(choice, self.intent))
            self._groups.add_widget(grid)

    def _build_form(self, form: Any) -> None:
        body = self.ids.body
        body.clear_widgets()
        self._inputs, self._pads = {}, {}
        self._groups = Factory.FormGroups()
        if form.groups_first:
            body.add_widget(self._groups)
        for field in form.fields:
            if field.keypad:
                # The number typed so far, then the keys (no keyboard for a number).
                shown = Factory.ListLine(text=field.label, bold=True)
                self._pads[field.key] = shown
                body.add_widget(shown)
                keys = Factory.ChipGrid(cols=4)
                for key in form.keys:
                    keys.add_widget(
                        Factory.KeyButton(
                            text=self._("Del") if key == "Del" else key,
                            on_release=lambda _b, k=key: self.intent("form_key", k),
                        )
                    )
                body.add_widget(keys)
                continue
            row = Factory.BoxLayout(size_hint_y=None, height=dp(64), spacing=dp(6))
            row.add_widget(Factory.FieldLabel(text=field.label, size_hint_x=0.3))
            entry = Factory.FormField(text=field.value, hint_text=field.hint)
            entry.bind(text=lambda _w, text, k=field.key: self.intent("form_text", k, text))
            entry.bind(on_text_validate=self._enter)
            row.add_widget(entry)
            self._inputs[field.key] = entry
            body.add_widget(row)
        if not form.groups_first:
            body.add_widget(self._groups)

    def _enter(self, entry: Any) -> None:
        """Enter moves on to the form's next field; in its last, Enter saves (as the lobby's
        and the patient entry's fields do)."""
        entries = list(self._inputs.values())
        if entry in entries and entry is not entries[-1]:
            entries[entries.index(entry) + 1].focus = True
        else:
            self.intent("save_form")

    def on_leave(self, *_args: Any) -> None:
        """Typed words leave with the step: no field keeps them for the next patient."""
        for widget in self._inputs.values():
            widget.wipe()
        self._shape = None
        self._last = None


class MedicationsScreen(ListStepScreen):
    pass


class AllergiesScreen(ListStepScreen):
    pass


class PocScreen(ListStepScreen):
    pass
