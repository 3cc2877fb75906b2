"""The station's exception types; everything the core raises is one of these."""

from __future__ import annotations


class StationError(Exception):
    """Base of every error the station raises on purpose."""


class FrameError(StationError):
    """A malformed frame: says what was wrong, what was expected, and carries the bytes."""

    def __init__(self, problem: str, raw: bytes, *, codec: str = "", expected: str = "") -> None:
        self.problem = problem
        self.raw = bytes(raw)
        self.codec = codec
        self.expected = expected
        super().__init__(self.describe())

    @property
    def raw_hex(self) -> str:
        return self.raw.hex()

    def describe(self) -> str:
        text = f"{self.codec}: {self.problem}" if self.codec else self.problem
        if self.expected:
            text += f" (expected {self.expected})"
        return f"{text}; frame {self.raw.hex(' ') or '<empty>'}"


class ConfigError(StationError):
    """A configuration or profile file that the station refuses to start with."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))

    def describe(self) -> str:
        return "\n".join(f"{self.path}: {p}" for p in self.problems)
