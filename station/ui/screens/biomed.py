"""Biomed: PIN, devices (bind/unbind/test: decoded + raw), settings, outbox, diagnostics."""

from __future__ import annotations

from functools import partial
from typing import Any

from kivy.factory import Factory

from station.ui.screens.base import BaseScreen, action_row, attach, button


class BiomedScreen(BaseScreen):
    def on_kv_post(self, base_widget: Any) -> None:
        # ids are weak proxies: keep the real widget, or it is collected while detached.
        self._pin_row = self.ids.pin_row.__self__
        self._panel = self._pin_row.parent

    def unlock(self) -> None:
        pin = self.ids.pin.text
        self.ids.pin.wipe()  # no undo history to bring it back
        self.intent("unlock", pin)

    def _passkey_row(self, device_id: str, address: str) -> Any:
        """A bound device asks for the passkey it shows (first pairing): type it once."""
        field = Factory.Field(hint_text=self._("6-digit passkey"), input_filter="int")
        pair = partial(lambda f: self.intent("enter_passkey", address, f.text), field)
        cancel = partial(self.intent, "cancel_passkey", address)
        row = action_row(
            self._("{device} ({address}) asks for the passkey it shows").format(
                device=device_id, address=address
            ),
            [(self._("Pair"), pair, 110, False), (self._("Cancel"), cancel, 120, True)],
            height=72,
        )
        row.add_widget(field, index=2)
        return row

    def render(self, presenter: Any) -> None:
        state = presenter.biomed.state.value
        view = (
            state,
            presenter.device_lines(),
            presenter.test_lines(),
            presenter.settings_lines(),
            presenter.biomed.testing,
            presenter.passkey_requests(),
            presenter.confirm_unbind,
            presenter.lockout_text(),
            presenter.scan_status(),
            presenter.export_text(),
        )
        if not self.changed(view):
            return
        locked = state == "locked"
        attach(self._panel, self._pin_row, shown=locked, index=2)
        rows, nav = self.ids.rows, self.ids.nav
        rows.clear_widgets()
        nav.clear_widgets()
        if locked:
            self.ids.title.text = presenter.lockout_text() or self._("Biomed — enter the PIN")
            return
        if state == "devices" and presenter.confirm_unbind is not None:
            device = presenter.confirm_unbind
            _ = self._
            self.ids.title.text = _("Unbind {device}?").format(device=device)
            rows.add_widget(
                Factory.Body(
                    text=_(
                        "Readings from {device} will no longer reach roomings on this station "
                        "until it is bound again."
                    ).format(device=device)
                )
            )
            keep = _("Keep {device}").format(device=device)
            nav.add_widget(button(keep, lambda: self.intent("keep_bound"), quiet=True))
            unbind_it = _("Unbind {device}").format(device=device)
            nav.add_widget(button(unbind_it, lambda: self.intent("unbind_confirmed")))
            return
        if state == "devices":
            self.ids.title.text = self._("Devices")
            status = presenter.scan_status() or presenter.words("scan_hint")
            text = f"{presenter.words('bluetooth')}: {status}"
            scan = [(presenter.words("scan"), lambda: self.intent("scan_bluetooth"), 110, False)]
            rows.add_widget(action_row(text, scan))
            empty = presenter.empty_text()
            if empty:
                rows.add_widget(Factory.Body(text=empty, font_size=18))
            for device_id, address in presenter.passkey_requests():
                rows.add_widget(self._passkey_row(device_id, address))
            for line in presenter.device_lines():
                mark = self._("[bound]") if line.bound else self._("[not bound]")
                test = partial(self.intent, "test", line.device_id)
                unbind = partial(self.intent, "unbind", line.device_id)
                bind = partial(self.intent, "bind", line.device_id)
                actions = (
                    [(self._("Test"), test, 110, False), (self._("Unbind"), unbind, 130, True)]
                    if line.bound
                    else [(self._("Bind"), bind, 130, False)]
                )
                row = action_row(f"{line.title}  {mark}\n{line.detail}", actions, height=72)
                rows.add_widget(row)
            if presenter.export_text():
                rows.add_widget(Factory.Body(text=presenter.export_text(), font_size=16))
            settings = self._("Settings")
            nav.add_widget(button(settings, lambda: self.intent("open_settings"), quiet=True))
            nav.add_widget(button(self._("Export diagnostics"), lambda: self.intent("export")))
        elif state == "device_test":
            self.ids.title.text = self._("Testing {device}: take a measurement").format(
                device=presenter.biomed.testing
            )
            for text in presenter.test_lines() or (presenter.words("waiting"),):
                rows.add_widget(Factory.Body(text=text, font_size=16))
            devices = "< " + self._("Devices")
            nav.add_widget(button(devices, lambda: self.intent("back"), quiet=True))
        else:
            self.ids.title.text = self._("Station settings")
            for text in presenter.settings_lines():
                rows.add_widget(Factory.Body(text=text))
            if presenter.export_text():
                rows.add_widget(Factory.Body(text=presenter.export_text(), font_size=16))
            devices = "< " + self._("Devices")
            nav.add_widget(button(devices, lambda: self.intent("back"), quiet=True))
            nav.add_widget(button(self._("Export diagnostics"), lambda: self.intent("export")))
        nav.add_widget(button(self._("Lock"), lambda: self.intent("lock"), quiet=True))
