"""Every codec by name (`ble:2a35`, `serial:nonin-2`, ...), for links and `station decode`."""

from __future__ import annotations

from functools import cache

from station.devices.codecs.base import CodecSpec


@cache
def all_codecs() -> dict[str, CodecSpec]:
    from station.devices.codecs import gatt, serial

    table: dict[str, CodecSpec] = {}
    for spec in [*gatt.CODECS, *serial.CODECS]:
        if spec.name in table:
            raise RuntimeError(f"two codecs are named {spec.name!r}")
        table[spec.name] = spec
    return dict(sorted(table.items()))


def get_codec(name: str) -> CodecSpec:
    codecs = all_codecs()
    try:
        return codecs[name]
    except KeyError:
        known = ", ".join(codecs) or "none"
        raise KeyError(f"unknown codec {name!r}; known codecs: {known}") from None
