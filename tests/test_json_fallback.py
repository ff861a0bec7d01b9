"""orjson is installed with fallom, except on PyPy: the stdlib encoder must say the same.

Each encoder runs in a child process (the stdlib one with orjson made unimportable),
on the values that push encoders to their edges; the JSON they produce must parse
to the same records.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any, List

from fallom.protocol._json import repair_text

_CHILD = r"""
import json, sys
if sys.argv[1] == "stdlib":
    sys.modules["orjson"] = None
from fallom.protocol import _json
records = [
    {"name": "plain", "attributes": {"n": 1, "f": 0.5, "ok": True, "none": None}},
    {"name": "unicode", "attributes": {"text": "héllo ✓ \U0001F600", "k\u00e9y": "v"}},
    {"name": "surrogate", "attributes": {"text": "bad \udcff byte"}},
    {"name": "huge", "attributes": {"n": 10 ** 30}},
    {"name": "enormous", "attributes": {"n": 10 ** 5000}},
    {"name": "object", "attributes": {"value": object.__new__(type("Thing", (), {"__str__": lambda s: "a thing"}))}},
]
out = []
for record in records:
    data, cut = _json.encode_record(record)
    text, text_cut = _json.json_text(record["attributes"])
    out.append([data.decode("utf-8"), cut, text, text_cut, _json.dumps.__module__])
print(json.dumps([sys.modules.get("orjson") is not None, out]))
"""


def _run(encoder: str) -> Any:
    done = subprocess.run([sys.executable, "-c", _CHILD, encoder], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _parsed(rows: List[Any]) -> List[Any]:
    # json_text's output is a field of a record, so it is judged as the record encodes it
    # (the stdlib leaves a lone surrogate in that text; encode_record repairs it)
    # (and a cut's marker names the encoder's exception type: TypeError or ValueError)
    same = [[re.sub(r"\((TypeError|ValueError)\)", "(error)", part) if isinstance(part, str)
             else part for part in row] for row in rows]
    return [[json.loads(data), cut, json.loads(repair_text(text)), text_cut]
            for data, cut, text, text_cut, _ in same]


def test_the_stdlib_fallback_encodes_every_record_as_orjson_does() -> None:
    with_orjson, fast = _run("orjson")
    without, slow = _run("stdlib")
    assert with_orjson  # each child used the encoder it was meant to
    assert not without
    assert _parsed(slow) == _parsed(fast)
    # and neither lost a record: the lone surrogate repaired, the 5,000-digit int marked
    assert _parsed(fast)[2][0]["attributes"]["text"] == "bad \ufffd byte"
    assert _parsed(fast)[4][1] is True
