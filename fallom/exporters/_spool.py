"""An on-disk spool: records that cannot be delivered now wait in segment files.

One directory, shared by any number of processes. Each process appends
encoded records, one per line, to a segment of its own, locked (``flock``)
while it writes; a sealed segment (closed, or its writer gone, even by
``kill -9``) is replayed oldest first by whichever process locks it first,
so no record is sent by two processes. How far a segment was delivered is
kept beside it, so a replay that stops half-way resumes there. A torn last
line (a crash mid-write) is skipped, never the segment. Beyond ``max_bytes``
the oldest sealed segments are dropped and counted. Files are private (0600).
Everything here runs on the export thread, never on the caller's.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Callable, List, Optional, Tuple

from .._guard import logger

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["Spool"]

SEGMENT_BYTES = 4_000_000
_SUFFIX, _OFFSET = ".seg", ".off"


class Spool:
    """Append records now, replay them later; every method may be called from one thread."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        if fcntl is None:  # pragma: no cover
            raise ValueError("spool_dir needs POSIX file locks (fcntl)")
        self.directory, self.max_bytes = directory, max_bytes
        self._fd: Optional[int] = None
        self._path = ""
        self._size = 0
        self._warned = False

    def __repr__(self) -> str:
        return f"Spool({self.directory!r})"

    # -- writing -----------------------------------------------------------------------
    def write(self, parts: List[bytes]) -> Tuple[int, int]:
        """Append ``parts``; returns (written, dropped to keep under ``max_bytes``).

        A directory that cannot be written gives (0, 0) and one warning: the
        caller then drops and counts, as without a spool.
        """
        if not parts:
            return 0, 0
        try:
            fd = self._segment()
            data = b"".join(part + b"\n" for part in parts)
            os.write(fd, data)
            self._size += len(data)
            if self._size >= min(SEGMENT_BYTES, self.max_bytes // 4):
                self.seal()  # sealed segments can be replayed, or dropped beyond the cap
        except OSError as exc:
            self.seal()
            if not self._warned:
                self._warned = True
                logger.warning("fallom: cannot write the spool in %s (%s); undeliverable spans "
                               "are dropped", self.directory, type(exc).__name__)
            return 0, 0
        return len(parts), self._enforce_cap()

    def _segment(self) -> int:
        if self._fd is None:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}"
            path = os.path.join(self.directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # ours while we write it
            self._fd, self._path, self._size = fd, path, 0
        return self._fd

    def seal(self) -> None:
        """Close the segment being written: from now on any process may replay it."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)  # releases the lock
            except OSError:
                pass

    def after_fork(self) -> None:
        """A child must not append to its parent's segment."""
        self._fd = None

    # -- replaying ---------------------------------------------------------------------
    def pending(self) -> bool:
        """Anything to replay: sealed segments, or the one this process is writing."""
        return self._fd is not None or bool(self._sealed_segments())

    def _sealed_segments(self) -> List[str]:
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(_SUFFIX))
        except OSError:
            return []
        own = os.path.basename(self._path) if self._fd is not None else None
        return [os.path.join(self.directory, n) for n in names if n != own]

    def replay(self, send: Callable[[List[bytes]], bool], batch: int = 512) -> Tuple[int, bool]:
        """Send sealed segments oldest first; (records replayed, everything sent)."""
        self.seal()
        replayed = 0
        for path in self._sealed_segments():
            done, ok = self._replay_one(path, send, batch)
            replayed += done
            if not ok:
                return replayed, False
        return replayed, True

    def _replay_one(self, path: str, send: Callable[[List[bytes]], bool],
                    batch: int) -> Tuple[int, bool]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return 0, True  # replayed and removed by another process meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return 0, True  # being written, or replayed by another process
            if not os.path.exists(path):
                return 0, True
            offset = _read_offset(path)
            with os.fdopen(os.dup(fd), "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            lines = data.split(b"\n")[:-1]  # what follows the last newline is torn
            replayed = 0
            for start in range(0, len(lines), batch):
                chunk = [line for line in lines[start:start + batch] if line]
                if chunk and not send(chunk):
                    return replayed, False
                offset += sum(len(line) + 1 for line in lines[start:start + batch])
                replayed += len(chunk)
                _write_offset(path, offset)
            _remove(path)
            return replayed, True
        finally:
            os.close(fd)

    def _enforce_cap(self) -> int:
        """Drop the oldest sealed segments while the spool is over ``max_bytes``."""
        segments = self._sealed_segments()
        sizes = [_size(p) for p in segments]
        total = sum(sizes) + self._size
        dropped = 0
        for path, size in zip(segments, sizes):
            if total <= self.max_bytes:
                break
            lines = _lines_after(path, _read_offset(path))
            _remove(path)
            total -= size
            dropped += lines
        return dropped


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _lines_after(path: str, offset: int) -> int:
    """Records not yet delivered: the complete lines past ``offset``."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().count(b"\n")
    except OSError:
        return 0


def _read_offset(path: str) -> int:
    try:
        with open(path + _OFFSET, "rb") as handle:
            return int(handle.read() or 0)
    except (OSError, ValueError):
        return 0


def _write_offset(path: str, offset: int) -> None:
    temporary = f"{path}{_OFFSET}.{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, str(offset).encode())
    finally:
        os.close(fd)
    os.replace(temporary, path + _OFFSET)


def _remove(path: str) -> None:
    for name in (path, path + _OFFSET):
        try:
            os.unlink(name)
        except OSError:
            pass
