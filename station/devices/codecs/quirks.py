"""Decoding quirks: how a known device model breaks a GATT layout, declared in its profile.

Strict decoding is the default everywhere: a reserved flag bit, a field out of place or bytes
left over make a frame malformed, because the layout they imply is unknown. Some models are
known to break the layout in one fixed way (the Beurer BM85 sends flag bit 6, its pulse rate
and status big-endian and a user id without flag bit 3). A firmware profile names exactly
those deviations in a `[quirks."<codec>"]` table; the codec then decodes that model's frames
under them, and every reading decoded under a quirk lists it in `Reading.quirks` (its
`raw_hex` stays the bytes as sent). Nothing here applies unless a profile asks for it.

A codec says which quirks it can honour, and for which of its fields (`QuirkSupport`);
`station profiles check` refuses anything else with the list of what is possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class QuirkName(StrEnum):
    # Flag bits the specification reserves that this model sets anyway; they are ignored
    # (the layout is read as if they were clear). The value is the bit mask tolerated.
    RESERVED_FLAG_BITS = "reserved_flag_bits"
    # Multi-byte fields this model sends most significant byte first (GATT is little-endian).
    BIG_ENDIAN = "big_endian"
    # Optional fields this model always sends, in their place in the layout, without setting
    # the flag that announces them.
    PRESENT_WITHOUT_FLAG = "present_without_flag"
    # Fields this model sends as 0 when it does not measure them (instead of NaN): read as
    # "not available" (null), never as the number 0.
    ZERO_IS_UNAVAILABLE = "zero_is_unavailable"


FieldList = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class CodecQuirks(BaseModel):
    """The `[quirks."ble:2a35"]` table of one codec in a profile."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reserved_flag_bits: Annotated[int, Field(ge=1, le=0xFF)] | None = None
    big_endian: FieldList | None = None
    present_without_flag: FieldList | None = None
    zero_is_unavailable: FieldList | None = None
    # Where the deviation is documented (a capture, an issue, a peer's test): required, so a
    # quirk is never declared on a hunch.
    source: Annotated[str, Field(min_length=1)]

    def fields(self, quirk: QuirkName) -> frozenset[str]:
        value = getattr(self, quirk.value)
        return frozenset(value) if isinstance(value, list) else frozenset()

    @property
    def tolerated_flags(self) -> int:
        return self.reserved_flag_bits or 0


NO_QUIRKS = CodecQuirks(source="strict decoding")


@dataclass(frozen=True)
class QuirkSupport:
    """What one codec can honour: reserved flag bits it may ignore, and fields per quirk."""

    reserved_flag_mask: int  # the reserved bits of its flags field
    big_endian: frozenset[str] = frozenset()
    present_without_flag: frozenset[str] = frozenset()
    zero_is_unavailable: frozenset[str] = frozenset()

    def problems(self, codec: str, quirks: CodecQuirks) -> list[str]:
        """Every way `quirks` asks for something this codec cannot do; empty when it can."""
        key = f'quirks."{codec}"'
        found: list[str] = []
        bits = quirks.reserved_flag_bits
        if bits is not None and bits & ~self.reserved_flag_mask:
            found.append(
                f"{key}.reserved_flag_bits: 0x{bits:02x} includes bits the specification "
                f"defines (0x{bits & ~self.reserved_flag_mask:02x}); expected bits of the "
                f"reserved mask 0x{self.reserved_flag_mask:02x}"
            )
        for quirk in (
            QuirkName.BIG_ENDIAN,
            QuirkName.PRESENT_WITHOUT_FLAG,
            QuirkName.ZERO_IS_UNAVAILABLE,
        ):
            allowed: frozenset[str] = getattr(self, quirk.value)
            for name in sorted(quirks.fields(quirk) - allowed):
                expected = ", ".join(sorted(allowed)) or "none: this codec has no such field"
                found.append(
                    f"{key}.{quirk.value}: {codec} has no field {name!r} for this quirk; "
                    f"expected one of {expected}"
                )
        if quirks == NO_QUIRKS.model_copy(update={"source": quirks.source}):
            found.append(f"{key}: names no quirk; expected one of " + ", ".join(QuirkName))
        return found


def applied(quirk: QuirkName, detail: str) -> str:
    """How a reading names a quirk it was decoded under: `big_endian:pulse_rate`."""
    return f"{quirk.value}:{detail}"
