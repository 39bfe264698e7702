"""Record the exact request bodies a client sends, to paste into nano's script.

A development tool, not part of the tests. It is a small reverse proxy: point a
client (the Agents SDK, LiteLLM, ...) at it, and it forwards every request to a
running vLLM server and appends each JSON body to a file:

    .venv/bin/python scripts/record_requests.py http://127.0.0.1:8000 /tmp/bodies.jsonl 8012
    GPTOSS_LAB_BASE_URL=http://127.0.0.1:8012/v1 .venv/bin/python my_agent_run.py

Each line of the output is {"path": ..., "body": ...}. Paste a body (without
"model") as a script entry's "request" (see docs/nano.md). Streaming responses
are buffered, so record with non-streaming runs.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

TARGET, OUT, PORT = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
_LOCK = threading.Lock()
_HOP = {"host", "content-length", "accept-encoding", "transfer-encoding", "content-encoding", "connection"}


class Recorder(BaseHTTPRequestHandler):
    def _forward(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if body:
            with _LOCK, open(OUT, "a", encoding="utf-8") as out:
                out.write(json.dumps({"path": self.path, "body": json.loads(body)}) + "\n")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        reply = httpx.request(method, TARGET + self.path, content=body, headers=headers, timeout=300)
        self.send_response(reply.status_code)
        for key, value in reply.headers.items():
            if key.lower() not in _HOP:
                self.send_header(key, value)
        self.send_header("content-length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._forward("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._forward("POST")

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    print(f"recording requests to {TARGET} into {OUT}; clients use http://127.0.0.1:{PORT}/v1", flush=True)
    ThreadingHTTPServer(("127.0.0.1", PORT), Recorder).serve_forever()
