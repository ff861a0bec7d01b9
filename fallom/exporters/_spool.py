"""An on-disk spool: records that cannot be delivered now wait in segment files.

One directory, shared by any number of processes. Each process appends
encoded records, one per line, to a segment of its own, locked (``flock``)
while it writes; a sealed segment (closed, or its writer gone, even by
``kill -9``) is replayed oldest first by whichever process locks it first,
so no record is sent by two processes. How far a segment was delivered is
kept beside it, so a replay that stops half-way resumes there. A torn last
line (a crash mid-write) and a line that is not a JSON object are skipped
and counted, never the segment. A write that the disk cuts short (full, or
over ``RLIMIT_FSIZE``) is truncated back to its last whole record, and only
whole records count as kept. Beyond ``max_bytes`` the oldest sealed
segments are dropped and counted; what still does not fit is refused.
Files are private (0600). Nothing here runs on the caller's thread.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import threading
import time
from typing import Callable, List, NamedTuple, Optional, Tuple

from fallom.infra._fork import register
from fallom.infra._guard import logger

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["Replayed", "Spool", "Written"]

SEGMENT_BYTES = 4_000_000
_SUFFIX, _OFFSET = ".seg", ".off"


class Replayed(NamedTuple):
    """What one replay did: records sent, lines skipped as corrupt, all sent."""

    sent: int
    corrupt: int
    done: bool


class Written(NamedTuple):
    """What one write did: records kept, older ones dropped for room, new ones refused for
    room; the rest of the records handed in failed on a disk error."""

    kept: int
    evicted: int = 0
    refused: int = 0


class Spool:
    """Append records now, replay them later; ``write`` and ``replay`` may run in two threads."""

    def __init__(self, directory: str, max_bytes: int) -> None:
        if fcntl is None:  # pragma: no cover
            raise ValueError("spool_dir needs POSIX file locks (fcntl)")
        self.directory, self.max_bytes = directory, max_bytes
        self._fd: Optional[int] = None
        self._path = ""
        self._size = 0  # bytes in the segment this process writes
        self._warned = False
        self._lock = threading.Lock()
        register(self)

    def __repr__(self) -> str:
        return f"Spool({self.directory!r})"

    def _after_fork(self) -> None:
        """A child must not append to its parent's segment, nor keep its descriptor: the
        parent's lock on it would then last as long as the child."""
        self._lock = threading.Lock()
        if self._fd is not None:
            try:
                os.close(self._fd)  # the parent's descriptor keeps its lock
            except OSError:
                pass
        self._fd, self._size = None, 0

    # -- writing -----------------------------------------------------------------------
    def write(self, parts: List[bytes]) -> Written:
        """Append ``parts``; what did not fit or could not be written is the caller's to count."""
        if not parts:
            return Written(0)
        with self._lock:
            try:
                evicted, used = self._make_room(sum(len(part) + 1 for part in parts))
                room = self.max_bytes - used
                fitting = []
                for part in parts:
                    room -= len(part) + 1
                    if room < 0:
                        break
                    fitting.append(part)
                return Written(self._append(fitting), evicted, len(parts) - len(fitting))
            except OSError as exc:
                self._seal()
                self._warn(exc)
                return Written(0)

    def _append(self, parts: List[bytes]) -> int:
        """Write whole records; a short write is cut back to the last whole one."""
        if not parts:
            return 0
        fd = self._segment()
        data = memoryview(b"".join(part + b"\n" for part in parts))
        start, done = self._size, 0
        try:
            while done < len(data):
                written = os.write(fd, data[done:])
                if written <= 0:
                    raise OSError(errno.ENOSPC, "no progress writing the spool")
                done += written
        except OSError as exc:
            whole, kept = 0, 0
            for part in parts:
                if kept + len(part) + 1 > done:
                    break
                kept += len(part) + 1
                whole += 1
            try:
                os.ftruncate(fd, start + kept)  # no torn record left behind
            except OSError:
                pass
            self._size = start + kept
            self._seal()
            self._warn(exc)
            return whole
        self._size += done
        if self._size >= min(SEGMENT_BYTES, max(self.max_bytes // 4, 1)):
            self._seal()  # sealed segments can be replayed, or dropped beyond the cap
        return len(parts)

    def _warn(self, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("fallom: cannot write the spool in %s (%s); spans that do not "
                           "fit are dropped and counted", self.directory,
                           os.strerror(exc.errno) if exc.errno else type(exc).__name__)

    def _segment(self) -> int:
        if self._fd is None:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            name = f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"
            path = os.path.join(self.directory, name + _SUFFIX)
            creating = os.path.join(self.directory, name + ".new")
            fd = os.open(creating, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)  # ours while we write it...
            os.replace(creating, path)  # ...before a replay can see it as a segment
            self._fd, self._path, self._size = fd, path, 0
        return self._fd

    def seal(self) -> None:
        """Close the segment being written: from now on any process may replay it."""
        with self._lock:
            self._seal()

    def _seal(self) -> None:
        fd, self._fd, self._size = self._fd, None, 0  # its bytes now count as a sealed one's
        if fd is not None:
            try:
                os.close(fd)  # releases the lock
            except OSError:
                pass

    def _make_room(self, need: int) -> Tuple[int, int]:
        """Drop the oldest sealed segments no one holds until ``need`` bytes fit; the
        records dropped, and the bytes still waiting (sealed segments and our own)."""
        sizes = {path: _pending_bytes(path) for path in self._sealed_segments()}
        used = sum(sizes.values()) + self._size
        if used + need <= self.max_bytes:
            return 0, used
        if self._size:  # our own records are the oldest to drop next, after older ones
            sizes[self._path] = self._size
            self._seal()
        dropped = 0
        for path in sorted(sizes):  # segment names start with their creation time
            if used + need <= self.max_bytes:
                break
            records = _drop_unless_held(path)
            if records is not None:
                used -= sizes[path]
                dropped += records
        return dropped, used

    # -- replaying ---------------------------------------------------------------------
    def pending(self) -> bool:
        """Anything to replay: sealed segments, or the one this process is writing."""
        return self._fd is not None or bool(self._sealed_segments())

    def remaining(self) -> int:
        """Records on disk not yet delivered (read at exit, to say what was left)."""
        with self._lock:
            self._seal()
        return sum(_lines_after(p, _read_offset(p)) for p in self._sealed_segments())

    def _sealed_segments(self) -> List[str]:
        try:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(_SUFFIX))
        except OSError:
            return []
        own = os.path.basename(self._path) if self._fd is not None else None
        return [os.path.join(self.directory, n) for n in names if n != own]

    def replay(self, send: Callable[[List[bytes]], bool], batch: int = 512) -> Replayed:
        """Send sealed segments oldest first, until one ``send`` fails."""
        self.seal()  # what this process spooled is replayed too
        sent = corrupt = 0
        for path in self._sealed_segments():
            one = self._replay_one(path, send, batch)
            sent, corrupt = sent + one.sent, corrupt + one.corrupt
            if not one.done:
                return Replayed(sent, corrupt, False)
        return Replayed(sent, corrupt, True)

    def _replay_one(self, path: str, send: Callable[[List[bytes]], bool],
                    batch: int) -> Replayed:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return Replayed(0, 0, True)  # replayed and removed by another process meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return Replayed(0, 0, True)  # being written, or replayed by another process
            if not os.path.exists(path):
                return Replayed(0, 0, True)
            offset = _read_offset(path)
            with os.fdopen(os.dup(fd), "rb") as handle:
                handle.seek(offset)
                data = handle.read()
            lines = data.split(b"\n")
            torn = 1 if lines[-1] else 0  # what follows the last newline: counted once, below
            lines = lines[:-1]
            sent = corrupt = 0
            for start in range(0, len(lines), batch):
                chunk = lines[start:start + batch]
                good = [line for line in chunk if _is_record(line)]
                if good and not send(good):
                    return Replayed(sent, corrupt, False)
                corrupt += sum(1 for line in chunk if line) - len(good)
                offset += sum(len(line) + 1 for line in chunk)
                sent += len(good)
                try:
                    _write_offset(path, offset)
                except OSError:  # a full disk: stop here rather than resend this chunk at once
                    return Replayed(sent, corrupt, False)
            _remove(path)
            return Replayed(sent, corrupt + torn, True)
        finally:
            os.close(fd)


def _is_record(line: bytes) -> bool:
    """A line a backend can take: one JSON object (a damaged line would cost its batch)."""
    if not line.startswith(b"{"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _drop_unless_held(path: str) -> Optional[int]:
    """Remove a sealed segment unless a replay holds it: the records it still held, or None
    when it is not ours to remove (held, or gone already)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # being replayed (or written) right now
        lines = _lines_after(path, _read_offset(path))
        _remove(path)
        return lines
    finally:
        os.close(fd)


def _pending_bytes(path: str) -> int:
    """Bytes of a segment not yet delivered: past its offset."""
    try:
        return os.path.getsize(path) - _read_offset(path)
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
