"""What a codec is: frame codecs (one value in) and stream codecs (bytes fed over time)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from station.devices.codecs.quirks import CodecQuirks, QuirkSupport
from station.models import Reading


class BadFrame(BaseModel):
    """A damaged frame a stream codec skipped: reported with its bytes, never guessed at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    codec: str
    problem: str
    expected: str = ""
    raw_hex: str


# What a frame codec returns: readings, or (for feature / control / time characteristics)
# one pydantic model with the decoded fields.
FrameResult = Sequence[Reading] | BaseModel
# What a stream decoder emits as bytes arrive: readings, skipped frames, or device events
# (pydantic models: acknowledgements, status replies, firmware revision...).
StreamEvent = Reading | BadFrame | BaseModel


class StreamDecoder(Protocol):
    def feed(self, data: bytes) -> list[StreamEvent]:
        """Take any number of bytes; return what became complete. Holds partial frames."""
        ...


@dataclass(frozen=True)
class FrameCodec:
    name: str
    version: str
    summary: str
    decode: Callable[[bytes], FrameResult]  # strict; raises FrameError and nothing else
    # Codecs that can honour a profile's decoding quirks (station.devices.codecs.quirks).
    quirk_support: QuirkSupport | None = None
    decode_with_quirks: Callable[[bytes, CodecQuirks], FrameResult] | None = None

    def decoder(self, quirks: CodecQuirks | None) -> Callable[[bytes], FrameResult]:
        """The decode function for one device model: strict unless its profile names quirks."""
        if quirks is None or self.decode_with_quirks is None:
            return self.decode
        decode_with_quirks = self.decode_with_quirks

        def decode(raw: bytes) -> FrameResult:
            return decode_with_quirks(raw, quirks)

        return decode


@dataclass(frozen=True)
class StreamCodec:
    name: str
    version: str
    summary: str
    new_decoder: Callable[[], StreamDecoder]


CodecSpec = FrameCodec | StreamCodec
