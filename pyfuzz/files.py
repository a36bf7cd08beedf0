"""Writing files so that a crash or SIGKILL at any moment leaves the old file or the new one,
never half of one: a corpus is a user's accumulated work, and a campaign can be killed anywhere."""

from __future__ import annotations

import os
import tempfile


def write_atomically(path: str | os.PathLike, data: bytes, mode: int | None = None) -> None:
    """Replace `path` by `data` through a temporary file in the same directory and a rename.

    The temporary name starts with a dot and ends in .tmp, so no corpus glob (*.txt, libFuzzer's
    hash names) picks up one a crash left behind. An existing file keeps its permissions."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    if mode is None:
        try:
            mode = os.stat(path).st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
    fd, temp_path = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp_path, mode)
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable; some filesystems refuse to open directories.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
