"""Record what the published ``fallom==0.2.7`` sends, as fixtures for the suite.

Rerun with ``python -m tests.reference.make_fixtures`` from the repository
root: it makes ``.venv-ref027`` (the published SDK with the provider SDKs),
drives real OpenAI, Anthropic and Google clients against the suite's local
fake provider, and writes every record 0.2.7 posted to
``tests/reference/fallom_0_2_7_records.json``. Nothing leaves this machine.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .._provider_server import ProviderServer
from .._traces_server import TracesServer

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
VENV = ROOT / ".venv-ref027"
OUT = HERE / "fallom_0_2_7_records.json"


def base_python() -> Path:
    """An interpreter that runs fallom 0.2.7: it says Python >= 3.9 but needs 3.11 or later
    (``str | List[str]`` at import time)."""
    if sys.version_info >= (3, 11):
        return Path(sys.executable)
    for name in ("python3.11", "python3.12", "python3.13", "python3"):
        found = shutil.which(name)
        if found and _recent(found):
            return Path(found)
    raise RuntimeError("fallom 0.2.7 needs Python 3.11 or later; none was found on PATH")


def _make_venv() -> Path:
    python = VENV / "bin" / "python"
    installed = "import importlib.metadata as m; assert m.version('fallom') == '0.2.7'"
    if python.exists() and not _recent(str(python), installed):
        shutil.rmtree(VENV)  # half made, or made by an interpreter 0.2.7 cannot run on
    if not python.exists():
        subprocess.run([str(base_python()), "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "fallom==0.2.7"],
                       check=True)
    return python


def _recent(python: str, also: str = "") -> bool:
    # -I: isolated, so a fallom/ in the working directory cannot answer for the venv
    check = [python, "-I", "-c", f"import sys; assert sys.version_info >= (3, 11); {also}"]
    return subprocess.run(check, capture_output=True).returncode == 0


def reference_python(*extra: str) -> Path:
    """The interpreter of a virtual environment with ``fallom==0.2.7`` (and ``extra``).

    ``FALLOM_REFERENCE_PYTHON`` names one made elsewhere (tox, ``.ci/run``);
    otherwise ``.venv-ref027`` in the checkout is made on first use.
    """
    named = os.environ.get("FALLOM_REFERENCE_PYTHON")
    if named:
        python = Path(named)
    else:
        with open(ROOT / ".venv-ref027.lock", "w") as lock:  # tox envs run side by side
            fcntl.flock(lock, fcntl.LOCK_EX)
            python = _make_venv()
    if extra:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *extra], check=True)
    return python


def main() -> None:
    provider, traces = ProviderServer(), TracesServer(ingest=None)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FALLOM_")}
        python = reference_python("openai", "anthropic", "google-generativeai")
        subprocess.run([str(python), str(HERE / "_drive_027.py"), provider.url,
                        traces.url], check=True, env=env, timeout=120)
    finally:
        provider.close()
        traces.close()
    records = sorted(traces.records, key=lambda r: (r["start_time"], r["name"]))
    OUT.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(records)} records to {OUT}")


if __name__ == "__main__":
    main()
