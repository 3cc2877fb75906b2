"""Files that hold secrets (the outbox key, hashed credentials), written whole or not at all.

Written and synced under a temporary name in the same directory, readable by the owner only
from the first byte, then put in place (replacing the old file, or only if none exists yet);
the directory is synced too, so a power cut leaves the old file or the new one, never half
of one. A secret never passes through /tmp.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_secret_file(path: Path, data: bytes, *, replace: bool) -> bool:
    """Write `data` to `path` (mode 600). With `replace=False` an existing file is kept and
    False is returned (another process made it first); True when this call wrote it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    written = True
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                written = False
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return written
