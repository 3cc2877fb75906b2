"""Serial peer conformance: every vector in serial_vectors.json, fed whole and byte by byte.

Each vector names where its bytes come from (another project's test or code, with repository and
path, or a manufacturer's manual with page) and what that peer says they mean. Where the peer is
wrong by the specification, `peer_wrong` cites the clause and the expectation follows the
specification, not the peer.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from station.devices.codecs.base import BadFrame, StreamCodec, StreamEvent
from station.devices.codecs.registry import get_codec
from station.devices.codecs.serial import nonin
from station.devices.codecs.serial.events import DeviceEvent
from station.models import AnyReading

CORPUS = json.loads((Path(__file__).parent / "serial_vectors.json").read_text())
VECTORS: list[dict[str, Any]] = CORPUS["vectors"]


def data_of(vector: dict[str, Any]) -> bytes:
    if "hex" in vector:
        return bytes.fromhex(vector["hex"])
    return str(vector["ascii"]).encode("ascii")


def feed(codec: str, data: bytes, *, by_byte: bool) -> list[StreamEvent]:
    spec = get_codec(codec)
    assert isinstance(spec, StreamCodec)
    decoder = spec.new_decoder()
    if not by_byte:
        return decoder.feed(data)
    out: list[StreamEvent] = []
    for i in range(len(data)):
        out.extend(decoder.feed(data[i : i + 1]))
    return out


def same(actual: object, expected: object) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        # lb -> kg products carry float rounding in the last bit; nothing coarser is allowed
        return math.isclose(actual, expected, rel_tol=1e-12, abs_tol=0.0)
    return actual == expected


def check(event: StreamEvent, want: dict[str, Any]) -> None:
    if "reading" in want:
        assert isinstance(event, AnyReading), event
        dumped = event.model_dump(mode="json")
        for key, value in want["reading"].items():
            assert same(dumped[key], value), (key, dumped[key], value)
    elif "bad" in want:
        assert isinstance(event, BadFrame), event
        assert want["bad"] in event.problem, event.problem
    else:
        assert isinstance(event, DeviceEvent), event
        assert event.code == want["event"], event
        if "detail" in want:
            assert event.detail == want["detail"], event


def test_the_corpus_is_big_enough_and_every_vector_has_provenance() -> None:
    assert len(VECTORS) >= 40
    assert len({v["id"] for v in VECTORS}) == len(VECTORS)
    for vector in VECTORS:
        assert vector["source"] and vector["peer_says"], vector["id"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_serial_peer_vector(vector: dict[str, Any]) -> None:
    data = data_of(vector)
    if vector.get("call") == "nonin_status_flags":
        [want] = vector["expect"]
        assert sorted(f.value for f in nonin.status_flags(data[0])) == want["flags"]
        return
    whole = feed(vector["codec"], data, by_byte=False)
    assert feed(vector["codec"], data, by_byte=True) == whole
    assert len(whole) == len(vector["expect"]), whole
    for event, want in zip(whole, vector["expect"], strict=True):
        check(event, want)
