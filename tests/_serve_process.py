"""``fallom serve`` as a real subprocess for the tests: started, its URL read, stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Dict, Optional, Tuple

__all__ = ["launch", "stop"]


def launch(*args: str, env: Optional[Dict[str, str]] = None) -> Tuple[subprocess.Popen, str]:
    """Start ``fallom serve --port 0 ARGS``; the process and the URL it printed."""
    command = [sys.executable, "-m", "fallom", "serve", "--port", "0", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    lines = []
    while not lines or (lines[-1] and "FALLOM_PROMPTS_URL" not in lines[-1]):
        lines.append(proc.stdout.readline())
    exports = dict(line.strip()[len("export "):].split("=", 1) for line in lines if line)
    return proc, exports["FALLOM_TRACES_URL"]


def stop(proc: subprocess.Popen) -> int:
    """SIGINT, then SIGKILL if it did not stop in time: never left running."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        raise
