"""Every capture in tests/captures/<protocol>/ decodes to its .json, whole and byte by byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from station.devices.codecs.base import StreamCodec, StreamEvent
from station.devices.codecs.registry import all_codecs, get_codec

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
# Every registered serial codec, so a new codec cannot land without its captures.
SERIAL_PROTOCOLS = tuple(
    name.removeprefix("serial:") for name in all_codecs() if name.startswith("serial:")
)


def load_capture(path: Path) -> bytes:
    if path.suffix == ".bin":
        return path.read_bytes()
    lines = [line.split("#", 1)[0] for line in path.read_text().splitlines()]
    return bytes.fromhex("".join(lines))


def decoder_for(protocol: str) -> StreamCodec:
    spec = get_codec(f"serial:{protocol}")
    assert isinstance(spec, StreamCodec)
    return spec


def dump(events: list[StreamEvent]) -> list[dict[str, object]]:
    return [event.model_dump(mode="json") for event in events]


CASES = sorted(
    p
    for p in CAPTURES.glob("*/*")
    if p.suffix in (".bin", ".hex") and p.parent.name in SERIAL_PROTOCOLS
)


def test_every_serial_protocol_has_captures() -> None:
    assert {p.parent.name for p in CASES} == set(SERIAL_PROTOCOLS)
    for protocol in SERIAL_PROTOCOLS:
        names = {p.stem for p in CASES if p.parent.name == protocol}
        assert "noise_between_frames" in names and "truncated_frame" in names, protocol


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_capture_decodes_to_expected_whole_and_byte_by_byte(path: Path) -> None:
    data = load_capture(path)
    expected = json.loads(path.with_suffix(".json").read_text())
    spec = decoder_for(path.parent.name)

    whole = spec.new_decoder().feed(data)
    decoder = spec.new_decoder()
    by_byte: list[StreamEvent] = []
    for i in range(len(data)):
        by_byte.extend(decoder.feed(data[i : i + 1]))

    assert dump(whole) == expected
    assert dump(by_byte) == expected
