"""A real HTTP server that speaks the OpenAI chat-completions protocol, with a scripted "model", for the
endpoint judge's tests: each request is recorded, forced failures can be queued, and the reply comes from a
function of the question the judge asked."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeJudge:
    decide: Callable[[str], str]  # the user message → the reply's content
    requests: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)  # (status, body) served first, in order
    raw: str | None = None  # a 200 body to send instead of a completion
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def questions(self) -> list[str]:
        return [r["body"]["messages"][-1]["content"] for r in self.requests]


@contextmanager
def serving(decide: Callable[[str], str]) -> Iterator[FakeJudge]:
    fake = FakeJudge(decide)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with fake.lock:
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                failure = fake.failures.pop(0) if fake.failures else None
            if failure is not None:
                self._send(*failure)
            elif fake.raw is not None:
                self._send(200, fake.raw)
            else:
                reply = fake.decide(body["messages"][-1]["content"])
                completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]}
                self._send(200, json.dumps(completion))

        def _send(self, status: int, text: str) -> None:
            data = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
