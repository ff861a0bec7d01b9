"""A local configs and prompts server (docs/design.md §3.5, §3.6) that can be told to fail."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Dict, List, Optional, Tuple

from ._http import LoopbackServer, send_bytes, send_json

HOLD_S = 600.0  # a held request waits for release() or close(), whichever the test reaches


class ConfigServer(LoopbackServer):
    def __init__(self) -> None:
        self.configs: Dict[str, List[Any]] = {}  # key -> versions, last is current
        self.prompts: Dict[str, List[Any]] = {}
        self.ab_tests: List[Any] = []
        self.raw_configs: Optional[bytes] = None  # replaces /configs' body when set
        self.failure: Optional[Tuple[str, Any]] = None  # ("status", 500) or ("hang", None)
        self.hits: Dict[str, int] = {}
        self.sessions: List[Any] = []
        self.sessions_delay = 0.0  # seconds before answering POST /sessions
        self.lock = threading.Lock()
        self.released = threading.Event()
        super().__init__()

    def on_get(self, handler: BaseHTTPRequestHandler) -> None:
        self._get(handler)

    def on_post(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        if self.sessions_delay:
            self.released.wait(self.sessions_delay)
        with self.lock:
            self.sessions.append({"body": body, "auth": handler.headers["Authorization"]})
        send_json(handler, 200, {})

    def close(self) -> None:
        self.released.set()
        super().close()

    def add_config(self, key: str, variants: Any, targeting: Any = None, **extra: Any) -> None:
        versions = self.configs.setdefault(key, [])
        config = {"key": key, "version": len(versions) + 1, "variants": variants, **extra}
        if targeting is not None:
            config["targeting"] = targeting
        versions.append(config)

    def add_prompt(self, key: str, system: str, user: str) -> None:
        versions = self.prompts.setdefault(key, [])
        versions.append({"key": key, "version": len(versions) + 1, "system_prompt": system,
                         "user_template": user})

    def count(self, path: str) -> int:
        with self.lock:
            return self.hits.get(path, 0)

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.hits[h.path] = self.hits.get(h.path, 0) + 1
            failure = self.failure
        if failure and failure[0] == "hang":  # held until released, past any test's timeout
            self.released.wait(HOLD_S)
            h.close_connection = True
            return
        if failure and failure[0] == "status":
            self._send(h, failure[1], {"error": "scripted"})
            return
        pinned = re.fullmatch(r"/(configs|prompts)/([^/]+)/version/(\d+)", h.path)
        if h.path == "/configs":
            if self.raw_configs is not None:
                self._send_raw(h, 200, self.raw_configs)
                return
            self._send(h, 200, {"configs": [v[-1] for v in self.configs.values()]})
        elif h.path == "/prompts":
            self._send(h, 200, {"prompts": [v[-1] for v in self.prompts.values()]})
        elif h.path == "/prompt-ab-tests":
            self._send(h, 200, {"prompt_ab_tests": self.ab_tests})
        elif pinned:
            table = self.configs if pinned.group(1) == "configs" else self.prompts
            versions = table.get(pinned.group(2), [])
            index = int(pinned.group(3)) - 1
            if 0 <= index < len(versions):
                self._send(h, 200, versions[index])
            else:
                self._send(h, 404, {"error": "not found"})
        else:
            self._send(h, 404, {"error": "not found"})

    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
        send_json(h, status, payload)

    @staticmethod
    def _send_raw(h: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
        send_bytes(h, status, data)
