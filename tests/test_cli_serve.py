"""``fallom serve`` takes its keys from a file or the environment, out of the process list
that every local user can read (issue 24, point 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import requests

from ._serve_process import launch, stop

SECRET = "file-or-env-key-4f2a"


def answers(url: str, key: str) -> int:
    return requests.get(f"{url}/api/traces", headers={"Authorization": f"Bearer {key}"},
                        timeout=10).status_code


def run_with_key(tmp_path: Path, args: List[str], env: Dict[str, str]) -> str:
    """Start ``fallom serve``, check only the key is taken, stop it; all it printed."""
    proc, url = launch("--db", str(tmp_path / "t.db"), *args, env=env)
    try:
        command_line = Path(f"/proc/{proc.pid}/cmdline").read_bytes() \
            if os.path.exists(f"/proc/{proc.pid}/cmdline") else b""
        assert SECRET.encode() not in command_line
        assert answers(url, SECRET) == 200
        assert answers(url, "local-guess") == 401
    finally:
        stop(proc)
    assert proc.stdout is not None
    assert proc.stderr is not None
    return proc.stdout.read() + proc.stderr.read()


def test_a_key_file_is_read(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"\n  {SECRET}  \nsecond-key\n")
    printed = run_with_key(tmp_path, ["--api-key-file", str(keys)], {})
    assert SECRET not in printed
    assert "export FALLOM_API_KEY" not in printed  # no key is made up when one is given


def test_the_key_may_come_from_the_environment(tmp_path: Path) -> None:
    printed = run_with_key(tmp_path, [], {"FALLOM_SERVE_API_KEY": SECRET})
    assert SECRET not in printed
    assert "export FALLOM_API_KEY" not in printed


@pytest.mark.parametrize(("content", "says"), [(None, "cannot read --api-key-file"),
                                                ("\n \n", "holds no key")])
def test_an_unusable_key_file_is_one_line_and_exit_2(tmp_path: Path, content: str,
                                                      says: str) -> None:
    keys = tmp_path / "keys"
    if content is not None:
        keys.write_text(content)
    result = subprocess.run([sys.executable, "-m", "fallom", "serve", "--port", "0", "--db",
                             str(tmp_path / "t.db"), "--api-key-file", str(keys)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr
