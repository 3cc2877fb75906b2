"""Bluetooth peer conformance: other projects' test vectors through the station's GATT codecs.

Every vector in ble_vectors.json is a byte string another public project wrote in its own
tests, with that project's assertion and its place (repository, commit, path, test). The
expected values are the peer's; where the peer is wrong by the specification (biased SFLOAT
and FLOAT exponents, RACP counts of the wrong width) the vector carries `peer_wrong` with the
clause, and the expectation is the specification's reading of the same bytes. A flipped
condition in a codec turns one of these red.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from station.devices.codecs.base import FrameCodec, FrameResult
from station.devices.codecs.ieee11073 import decode_date_time, decode_float, decode_sfloat
from station.devices.codecs.registry import get_codec
from station.devices.profiles import BUNDLED_DIR, DIRS_ENV, find_profile
from station.errors import FrameError

CORPUS = json.loads((Path(__file__).with_name("ble_vectors.json")).read_text(encoding="utf-8"))
VECTORS: list[dict[str, Any]] = CORPUS["vectors"]

# Exact conversion factors (the corpus gives values in the unit the device sent).
PA_PER_MMHG = 133.322387415  # conventional millimetre of mercury (ISO 80000-4)
KG_PER_LB = 0.45359237  # international avoirdupois pound (1959)
CM_PER_INCH = 2.54
CONVERTED = {
    "_kpa": ("_mmhg", lambda v: v * 1000 / PA_PER_MMHG),
    "_lb": ("_kg", lambda v: v * KG_PER_LB),
    "_in": ("_cm", lambda v: v * CM_PER_INCH),
    "_m": ("_cm", lambda v: v * 100),
}


@pytest.fixture(autouse=True)
def only_bundled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DIRS_ENV, str(BUNDLED_DIR))


def decoder(vector: dict[str, Any]) -> Callable[[bytes], Any]:
    codec = vector["codec"]
    if codec == "ieee11073:sfloat":
        return lambda raw: decode_sfloat(int.from_bytes(raw, "little"))
    if codec == "ieee11073:float":
        return lambda raw: decode_float(int.from_bytes(raw, "little"))
    if codec == "ieee11073:date_time":
        return decode_date_time
    if "profile" in vector:
        return find_profile(vector["profile"]).decoder(codec)
    spec = get_codec(codec)
    assert isinstance(spec, FrameCodec)
    return spec.decode


def plain(value: Any) -> Any:
    """Model values as the corpus writes them: enum values, ISO datetimes, lists."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


def check_fields(actual: BaseModel, expected: dict[str, Any], where: str) -> None:
    for key, given in expected.items():
        field, want = key, given
        for suffix, (canonical, convert) in CONVERTED.items():
            if key.endswith(suffix) and not hasattr(actual, key):
                field, want = key.removesuffix(suffix) + canonical, convert(want)
                break
        got = plain(getattr(actual, field))
        if key == "flags" or key.startswith("supported_"):
            assert sorted(got) == sorted(want), f"{where}: {field}"
        elif isinstance(want, float) and isinstance(got, float):
            assert got == pytest.approx(want, rel=1e-9), f"{where}: {field}"
        else:
            assert got == want, f"{where}: {field} = {got!r}, the peer says {want!r}"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_peer_vector(vector: dict[str, Any]) -> None:
    raw = bytes.fromhex(vector["hex"])
    expect = vector["expect"]
    decode = decoder(vector)
    if isinstance(expect, dict) and expect.get("error"):
        with pytest.raises(FrameError) as caught:
            decode(raw)
        assert caught.value.raw == raw
        return
    result = decode(raw)
    if isinstance(expect, dict) and "value" in expect:
        want = expect["value"]
        if isinstance(want, float):
            assert result == pytest.approx(want, rel=1e-12)
        else:
            assert plain(result) == want
        return
    if isinstance(expect, dict):
        assert isinstance(result, BaseModel)
        check_fields(result, expect, vector["id"])
        assert getattr(result, "raw_hex") == raw.hex()  # noqa: B009 - any result model
        return
    readings: FrameResult = result
    assert isinstance(readings, list) and len(readings) == len(expect), vector["id"]
    for reading, want in zip(readings, expect, strict=True):
        check_fields(reading, want, vector["id"])
        assert reading.raw_hex == raw.hex()
    if vector.get("strict_error"):
        spec = get_codec(vector["codec"])
        assert isinstance(spec, FrameCodec)
        with pytest.raises(FrameError):
            spec.decode(raw)  # strict without the profile's quirks


def test_the_corpus_is_large_enough_and_every_vector_says_where_it_is_from() -> None:
    assert len(VECTORS) >= 60
    for vector in VECTORS:
        source = vector["source"]
        assert source["repo"].count("/") == 1 and len(source["commit"]) == 40, vector["id"]
        assert source["path"] and vector["peer_asserts"], vector["id"]
        if "peer_wrong" in vector:
            wrong = vector["peer_wrong"]
            assert wrong["clause"] and wrong["peer_says"] and wrong["why"], vector["id"]


def test_the_corpus_covers_every_health_characteristic_and_several_peers() -> None:
    codecs = {v["codec"] for v in VECTORS}
    assert {
        "ble:2a35",
        "ble:2a36",
        "ble:2a1c",
        "ble:2a9d",
        "ble:2a5e",
        "ble:2a5f",
        "ble:2a60",
        "ble:2a52",
        "ble:2a2b",
        "ieee11073:sfloat",
        "ieee11073:float",
    } <= codecs
    assert len({v["source"]["repo"] for v in VECTORS}) >= 5
    # The disagreements the issue names are in the corpus, each with its clause.
    wrong = [v for v in VECTORS if "peer_wrong" in v]
    assert any("two's-complement" in v["peer_wrong"]["clause"] for v in wrong)  # biased SFLOAT
    assert any("uint16" in v["peer_wrong"]["clause"] for v in wrong)  # RACP count width
