"""gunicorn's gthread worker, with HTTP-level errors (bad request line, oversized URL or headers) as JSON.

gunicorn answers those itself, before a request reaches Flask, with a small HTML page. Clients of this API get
`{"error": "<one sentence>"}` for every failure, so the worker swaps gunicorn's error writer for a JSON one in
its own process; status codes and logging stay gunicorn's.
"""

from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Same contract as gunicorn.util.write_error, JSON body instead of HTML."""
    detail = " ".join(str(mesg).split())[:200].rstrip(".")
    body = json.dumps({"error": f"{reason.lower()}: {detail}."})  # ASCII: safe for the latin-1 status line
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, (head + body).encode("latin-1"))


class JsonErrorThreadWorker(ThreadWorker):
    def init_process(self):
        util.write_error = write_json_error
        super().init_process()
