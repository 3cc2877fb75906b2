"""JSON Schemas generated from the models, checked into docs/schemas/ for integrators."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from station.config import Settings
from station.models import Reading
from station.validation import Verdict

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "docs" / "schemas"
SCHEMA_BASE_URI = "https://schemas.rooming-station.invalid/v1/"


def _reading() -> dict[str, Any]:
    return TypeAdapter(Reading).json_schema(mode="serialization")


# file name -> schema factory. Other layers add theirs (the MQTT payloads) to this table.
SCHEMAS: dict[str, Callable[[], dict[str, Any]]] = {
    "reading.schema.json": _reading,
    "verdict.schema.json": lambda: Verdict.model_json_schema(mode="serialization"),
    "settings.schema.json": lambda: Settings.model_json_schema(mode="validation"),
}


def _extra_schemas() -> None:
    """Let the sync layer register the payload schemas without the core importing it."""
    try:
        contract = importlib.import_module("station.sync.contract")
    except ModuleNotFoundError:
        return
    SCHEMAS.update(contract.SCHEMAS)


def render_all() -> dict[str, str]:
    _extra_schemas()
    rendered = {}
    for name, factory in sorted(SCHEMAS.items()):
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": SCHEMA_BASE_URI + name,
            **factory(),
        }
        rendered[name] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return rendered


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files missing or different from what the models generate."""
    out = []
    for name, text in render_all().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out
