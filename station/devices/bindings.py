"""Which devices biomed bound to this station: `<state_dir>/bindings.json`, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from station.config import BoundDevice, describe_validation_error
from station.errors import ConfigError

BINDINGS_FILE = "bindings.json"


class _BindingsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    devices: tuple[BoundDevice, ...] = ()


class BindingStore:
    """Bind / unbind / list; every change is one atomic replace of the file (never half written)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / BINDINGS_FILE

    def list(self) -> tuple[BoundDevice, ...]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ()
        try:
            return _BindingsFile.model_validate_json(text).devices
        except ValidationError as exc:
            raise ConfigError(str(self.path), describe_validation_error(exc)) from exc

    def bind(self, device: BoundDevice) -> tuple[BoundDevice, ...]:
        """Add a binding; refuses a second binding of the same id, address or port."""
        current = self.list()
        for other in current:
            if other.id == device.id:
                raise ValueError(
                    f"id {device.id!r} is already bound ({_where(other)}); unbind it first"
                )
            if (device.address and other.address == device.address) or (
                device.port and other.port == device.port
            ):
                raise ValueError(f"{_where(device)} is already bound as {other.id!r}")
        devices = (*current, device)
        self._write(devices)
        return devices

    def unbind(self, key: str) -> BoundDevice:
        """Remove by id, Bluetooth address or serial port."""
        current = self.list()
        for device in current:
            if key in (device.id, device.address, device.port) or key.upper() == device.address:
                self._write(tuple(d for d in current if d is not device))
                return device
        known = ", ".join(d.id for d in current) or "none"
        raise LookupError(f"nothing bound as {key!r}; bound: {known}")

    def _write(self, devices: tuple[BoundDevice, ...]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = _BindingsFile(devices=devices).model_dump(mode="json", exclude_none=True)
        fd, tmp = tempfile.mkstemp(prefix=".bindings-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a power cut
        finally:
            os.close(dir_fd)


def _where(device: BoundDevice) -> str:
    return f"address {device.address}" if device.address else f"port {device.port}"
