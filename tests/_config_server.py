"""A local configs and prompts server (DESIGN §3) that can be told to fail."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple


class ConfigServer:
    def __init__(self) -> None:
        self.configs: Dict[str, List[Any]] = {}  # key -> versions, last is current
        self.prompts: Dict[str, List[Any]] = {}
        self.ab_tests: List[Any] = []
        self.raw_configs: Optional[bytes] = None  # replaces /configs' body when set
        self.failure: Optional[Tuple[str, Any]] = None  # ("status", 500) or ("hang", None)
        self.hits: Dict[str, int] = {}
        self.sessions: List[Any] = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server._get(self)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.sessions.append({"body": body, "auth": self.headers["Authorization"]})
                server._send(self, 200, {})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()

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
        if failure and failure[0] == "hang":
            self.released.wait(30)
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
        self._send_raw(h, status, json.dumps(payload).encode())

    @staticmethod
    def _send_raw(h: BaseHTTPRequestHandler, status: int, data: bytes) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
