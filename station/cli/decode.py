"""`station decode`: turn a captured frame or stream into canonical readings, exactly."""

from __future__ import annotations

import argparse
import string
import sys
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel

from station.cli.common import add_command, fail
from station.devices.codecs.base import (
    BadFrame,
    FrameCodec,
    FrameResult,
    StreamCodec,
    StreamEvent,
)
from station.devices.codecs.registry import all_codecs, get_codec
from station.devices.profiles import find_profile
from station.errors import ConfigError, FrameError

EXAMPLES = """\
  station decode --list
  station decode ble:2a35 "00 7200 7200 7200"
  station decode ble:2a1c 02720100FFDA070C120F0000
  station decode serial:nonin-2 - < capture.bin      # raw bytes on stdin
  station decode ble:2a35 "56 6a00 4700 0000 ea07080b121f0000 003f 00 0000" --profile beurer-bm85
One JSON object per reading per line; values the device marks unavailable are null.
A malformed frame prints one line on stderr and exits 2 (streams: decoding continues with
the next frame; exit 2 only when nothing decodable was found)."""

STDIN_CHUNK = 4096


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "decode",
        summary="decode a frame (hex) or a raw stream (stdin) with a named codec",
        description="Decodes device bytes with one of the station's codecs and prints the "
        "canonical readings as JSON lines: what biomed staff use to read a capture.",
        examples=EXAMPLES,
    )
    parser.add_argument("codec", nargs="?", metavar="CODEC", help="codec name; see --list")
    parser.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="hex bytes (spaces allowed), or - to read raw bytes from stdin",
    )
    parser.add_argument("--list", action="store_true", help="list the codecs and exit")
    parser.add_argument(
        "--profile",
        metavar="ID",
        help="decode as this firmware profile's device does (its [quirks] for the codec)",
    )
    parser.set_defaults(func=run)


def parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    bad = sorted({c for c in cleaned if c not in string.hexdigits})
    if bad:
        raise ValueError(
            f"DATA has non-hex characters {''.join(bad)!r}: expected hex digits, "
            "e.g. '00 7200 7200 7200'"
        )
    if len(cleaned) % 2:
        raise ValueError(
            f"DATA has {len(cleaned)} hex digits: expected an even number (two per byte)"
        )
    return bytes.fromhex(cleaned)


def _print_event(event: StreamEvent | BaseModel) -> None:
    print(event.model_dump_json(), flush=True)


def _chunks(args: argparse.Namespace) -> Iterable[bytes]:
    if args.data == "-":
        read = (
            sys.stdin.buffer.read1 if hasattr(sys.stdin.buffer, "read1") else sys.stdin.buffer.read
        )
        while chunk := read(STDIN_CHUNK):
            yield chunk
    else:
        yield parse_hex(args.data)


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name, spec in all_codecs().items():
            kind = "frame " if isinstance(spec, FrameCodec) else "stream"
            print(f"{name:<22} {spec.version:<6} {kind}  {spec.summary}")
        return 0
    if not args.codec or args.data is None:
        return fail("decode needs CODEC and DATA (or --list); see `station decode --help`")
    try:
        spec = get_codec(args.codec)
    except KeyError as exc:
        return fail(str(exc.args[0]))
    try:
        chunks = _chunks(args)
        if isinstance(spec, FrameCodec):
            decode = spec.decode
            if args.profile:
                decode = find_profile(args.profile).decoder(spec.name)
            return _decode_frame(decode, b"".join(chunks))
        if args.profile:
            return fail(f"--profile: {spec.name} is a stream codec; only frame codecs take quirks")
        return _decode_stream(spec, chunks)
    except ValueError as exc:
        return fail(str(exc))
    except ConfigError as exc:
        return fail(str(exc))


def _decode_frame(decode: Callable[[bytes], FrameResult], data: bytes) -> int:
    try:
        result = decode(data)
    except FrameError as exc:
        return fail(exc.describe())
    if isinstance(result, BaseModel):
        _print_event(result)
    else:
        for reading in result:
            _print_event(reading)
    return 0


def _decode_stream(spec: StreamCodec, chunks: Iterable[bytes]) -> int:
    decoder = spec.new_decoder()
    decoded = 0
    for chunk in chunks:
        for event in decoder.feed(chunk):
            if isinstance(event, BadFrame):
                print(
                    f"station: {event.codec}: {event.problem}"
                    + (f" (expected {event.expected})" if event.expected else "")
                    + f"; frame {bytes.fromhex(event.raw_hex).hex(' ')}",
                    file=sys.stderr,
                )
                continue
            decoded += 1
            _print_event(event)
    if decoded == 0:
        return fail(f"{spec.name}: nothing decodable found in the input")
    return 0
