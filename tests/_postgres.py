"""A real PostgreSQL server for the tests: the one CI started, or one started here.

``.ci/run`` starts one (``python3 tests/_postgres.py start DIR``, which prints its
URL) and exports ``FALLOM_TEST_POSTGRES_URL``; run by hand, the suite starts its own
in a temporary directory. initdb refuses to run as root, so as root the server runs
as the ``postgres`` user (``runuser``). Standard library only: ``.ci/run`` calls it
before any virtual environment exists.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import time
from typing import List, Optional, Tuple

__all__ = ["ENV", "find_bin", "start", "stop"]

ENV = "FALLOM_TEST_POSTGRES_URL"


def find_bin() -> Optional[str]:
    """The directory of PostgreSQL's server programs (Debian keeps them off the PATH)."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    found = versions[-1] if versions else shutil.which("initdb")
    return os.path.dirname(os.path.realpath(found)) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_owner(command: List[str]) -> List[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def start(directory: str) -> Tuple[str, str]:
    """Start a server with its data in ``directory``; returns (URL, data directory)."""
    bindir = find_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL's initdb was not found (apt-get install postgresql)")
    data = os.path.join(directory, "data")
    os.makedirs(directory, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    subprocess.run(_as_owner([os.path.join(bindir, "initdb"), "-D", data, "-U", "fallom",
                              "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                   check=True, capture_output=True, timeout=120)
    port = _free_port()
    subprocess.run(_as_owner([
        os.path.join(bindir, "pg_ctl"), "-D", data, "-l", os.path.join(directory, "log"), "-w",
        "-t", "60", "-o", f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c max_connections=200", "start"]), check=True, capture_output=True,
        timeout=120)
    deadline = time.monotonic() + 60
    while subprocess.run([os.path.join(bindir, "pg_isready"), "-h", "127.0.0.1", "-p",
                          str(port)], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not start; see {directory}/log")
        time.sleep(0.1)
    subprocess.run(_as_owner([os.path.join(bindir, "createdb"), "-h", "127.0.0.1", "-p",
                              str(port), "-U", "fallom", "fallom"]), check=True,
                   capture_output=True, timeout=60)
    return f"postgresql://fallom@127.0.0.1:{port}/fallom", data


def stop(data: str) -> None:
    """Stop the server whose data directory is ``data`` (fast shutdown)."""
    bindir = find_bin()
    if bindir is not None:
        subprocess.run(_as_owner([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "fast",
                                  "stop"]), capture_output=True, timeout=60)


if __name__ == "__main__":  # python3 tests/_postgres.py start DIR | stop DATA
    if sys.argv[1] == "start":
        print(start(sys.argv[2])[0])
    else:
        stop(sys.argv[2])
