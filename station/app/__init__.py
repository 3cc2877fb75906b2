"""The composition root: builds the station's services from Settings and runs them under Kivy.

`StationServices` (services.py) wires the concrete adapters — the encrypted outbox, the MQTT
link, the device manager with its serial and BLE links — to the mode's presenter over the
workflow that owns the session, the wrong-patient guard and the tray. It needs no Kivy: tests
and the headless demo drive it with `HeadlessHost`. Everything from a link or MQTT thread
reaches the presenter through `post`, the hand-over to the one UI thread. `run_station`
(run.py) puts the Kivy screens on top. Pushed configuration (pushed.py), credentials
(credentials.py) and the biomed port (biomed_port.py) are their own modules.
"""

from __future__ import annotations

from station.app.credentials import Credentials, credentials_path, load_credentials
from station.app.host import HeadlessHost
from station.app.run import run_station, start_logging
from station.app.services import StationServices
from station.app.wiring import remember_schedule

__all__ = [
    "Credentials",
    "HeadlessHost",
    "StationServices",
    "credentials_path",
    "load_credentials",
    "remember_schedule",
    "run_station",
    "start_logging",
]
