"""A stand-in LLM judge on this machine, for trying fallom.evals with no account or network.

It speaks the OpenAI chat-completions API, as the real judges do (OpenRouter, OpenAI, a
local vLLM or Ollama), and scores by a rule rather than a model: an answer sharing more
words with its question scores higher. Run it, then point evals at the URL it prints:

    python examples/judge_standin.py        # prints: export FALLOM_JUDGE_BASE_URL=...
"""

from __future__ import annotations

import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _score(prompt: str) -> float:
    """Words the item's output shares with its input, as a share of the input's words."""
    asked = re.search(r"\*\*User Input:\*\*\s*(.*?)\n", prompt, re.S)
    answered = re.search(r"\*\*Model Output:\*\*\s*(.*?)(\n\n|$)", prompt, re.S)
    words = set(re.findall(r"\w+", asked.group(1).lower())) if asked else set()
    said = set(re.findall(r"\w+", answered.group(1).lower())) if answered else set()
    return round(len(words & said) / len(words), 2) if words else 0.5


class Judge(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        score = _score(prompt)
        verdict = {"score": score, "overall_reasoning": f"shares {score:.0%} of the words asked"}
        reply = {"id": "standin", "object": "chat.completion", "model": body.get("model"),
                 "choices": [{"index": 0, "finish_reason": "stop", "message": {
                     "role": "assistant", "content": json.dumps(verdict)}}],
                 "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": 12,
                           "total_tokens": len(prompt.split()) + 12}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return None


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0),
                                 Judge)
    print(f"export FALLOM_JUDGE_BASE_URL=http://127.0.0.1:{server.server_address[1]}/v1",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
