"""Files and directories that survive a crash or SIGKILL at any moment: a corpus is a user's
accumulated work, and a campaign can be killed anywhere. Files are replaced whole (the old one or
the new one, never half of one); the scratch directories a killed process leaves behind are
removed by the next one that makes one; a corpus directory is held by one campaign at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path


def write_atomically(path: str | os.PathLike, data: bytes, mode: int | None = None) -> None:
    """Replace `path` by `data` through a temporary file in the same directory and a rename.

    The temporary name starts with a dot and ends in .tmp, so no corpus glob (*.txt, libFuzzer's
    hash names) picks up one a crash left behind. An existing file keeps its permissions. An
    error (a full disk, a read-only directory) names `path`, not the temporary file."""
    path = os.fspath(path)
    try:
        _write_and_rename(path, data, mode)
    except OSError as e:
        if e.errno is None:  # not a system call's error: nothing to rename
            raise
        raise OSError(e.errno, e.strerror, path) from e


def _write_and_rename(path: str, data: bytes, mode: int | None) -> None:
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


# A scratch directory's owner holds an exclusive flock on this file for as long as it uses the
# directory. The kernel drops the lock when the owner dies, SIGKILL included, so a lock that can
# be taken means nobody uses the directory any more, and a pid file (which a reused pid would
# fool) is not needed.
OWNER_FILE = ".pyfuzz-owner"


@contextlib.contextmanager
def scratch_directory(prefix: str, parent: str | os.PathLike | None = None):
    """A temporary directory, removed at the end, like tempfile.TemporaryDirectory; first, the
    ones a killed pyfuzz left behind under the same parent and prefix are removed."""
    parent = Path(parent if parent is not None else tempfile.gettempdir())
    remove_abandoned(parent, prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    # Locked under a private name and renamed into place: no moment where another process can
    # find the owner file unlocked.
    staged = path / f"{OWNER_FILE}.{os.getpid()}"
    fd = os.open(staged, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.replace(staged, path / OWNER_FILE)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def remove_abandoned(parent: Path, prefix: str) -> list[Path]:
    """Remove the scratch directories under `parent` named `prefix`* whose owner is gone. A
    directory without an owner file (still being set up, or not made by scratch_directory) and
    one whose owner lives are left alone."""
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(prefix):
            continue
        path = parent / name
        try:
            fd = os.open(path / OWNER_FILE, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a live owner
            os.close(fd)
            continue
        try:
            # Still the owner file there (not one a new directory of the same name has since):
            # the lock taken is the lock of the directory about to go.
            if not path.is_symlink() and os.fstat(fd).st_ino == os.stat(path / OWNER_FILE).st_ino:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


class InUse(RuntimeError):
    pass


@contextlib.contextmanager
def holding(path: Path):
    """An exclusive flock on the directory itself while the context lasts (the kernel drops it if
    the process dies): one campaign per corpus. Raises InUse if another process holds it. Where
    the filesystem cannot lock (some network filesystems) the directory is used unlocked."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InUse(f"{path}: in use by another pyfuzz process") from None
        except OSError:
            pass
        yield
    finally:
        os.close(fd)
