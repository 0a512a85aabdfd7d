"""gunicorn's gthread worker, hardened against slow clients, with HTTP-level errors (bad request line, oversized
URL or headers) as JSON.

Slow clients: gthread hands a new connection to a pool thread, which waits up to 5 s for its first byte and then
reads headers and body with blocking calls and no time limit. A few sockets that connect and say nothing, dribble
headers, or announce a body they never send can so hold every thread. This worker
- waits at most IDLE_WAIT for a new connection's first byte before parking it in the poller (no thread held), and
- gives each request ROBOJAM_READ_TIMEOUT seconds in all to deliver its headers and body: a read past that
  deadline fails with ReadTimeout (the connection is closed, or a late body is answered 408).
With many threads (ROBOJAM_THREADS, default 64: waiting requests only wait on the batching loop) a bounded number
of such sockets cannot stop other clients being served. In production a buffering proxy sits in front as well.
Over TLS (gunicorn wraps the socket itself) the read deadline does not apply; serve TLS behind the proxy instead.

Keep-alive: gthread hands each request on a kept-alive connection from its poller thread to a pool thread and the
connection back again (two thread hand-offs, a pipe write and an epoll register/unregister per request: about a
quarter of the worker's CPU per typical request, `make bench-overhead`). While every open connection can have a
thread of its own, this worker's thread instead waits up to KEEPALIVE_WAIT for the connection's next request and
serves it itself; past that, or with more connections than threads, the connection goes back to the poller as
gthread has it.

Errors: gunicorn answers malformed HTTP itself with a small HTML page; clients of this API get
`{"error": "<one sentence>"}` for every failure, so the worker swaps gunicorn's error writer for a JSON one in
its own process; status codes and logging stay gunicorn's.

The gunicorn internals this needs (the error writer, the first-byte wait, the poller's sentinel) are reached
through service/gunicorn_compat.py only.
"""

from __future__ import annotations

import json
import socket
import time

from service import gunicorn_compat, settings

IDLE_WAIT = 0.5  # seconds a new, silent connection may hold a thread before it waits in the poller instead
KEEPALIVE_WAIT = 0.05  # seconds a thread with no other connection to serve waits for its connection's next request


class ReadTimeout(gunicorn_compat.NoMoreData, TimeoutError):
    """The request's headers or body did not arrive within the read deadline.

    A NoMoreData, so gunicorn closes a connection whose headers are late without logging a traceback; a
    TimeoutError, so the app can answer a late body with 408 without importing gunicorn.
    """

    def __str__(self) -> str:
        return "the request did not arrive in time"


class _DeadlineSocket:
    """The connection's socket with an overall deadline on reads (set per request); everything else passes on."""

    def __init__(self, sock):
        self._sock = sock
        self.deadline: float | None = None

    def recv(self, size: int, *flags) -> bytes:
        if self.deadline is None:
            return self._sock.recv(size, *flags)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise ReadTimeout()
        if not flags:
            try:  # bytes already here (the usual case): one call, no timeout to set and clear
                return self._sock.recv(size, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            raise ReadTimeout() from None
        finally:
            self._sock.settimeout(None)  # blocking again, as gthread expects

    def __getattr__(self, name):
        found = getattr(self._sock, name)
        if callable(found):  # a method of the socket: kept, so the connection's next requests skip this hook
            setattr(self, name, found)
        return found


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Same contract as gunicorn's own error writer (gunicorn_compat.use_error_writer), JSON body instead of HTML."""
    detail = " ".join(str(mesg).split())[:200].rstrip(".")
    body = json.dumps({"error": f"{reason.lower()}: {detail}."})  # ASCII: safe for the latin-1 status line
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_compat.send_nonblocking(sock, (head + body).encode("latin-1"))


class JsonErrorThreadWorker(gunicorn_compat.ThreadWorker):
    def init_process(self):
        gunicorn_compat.use_error_writer(write_json_error)
        self.read_timeout = settings.read_timeout()
        super().init_process()

    def handle(self, conn):
        if not gunicorn_compat.first_byte_arrived(conn, IDLE_WAIT):
            return gunicorn_compat.DEFER  # silent so far: wait in the poller, holding no thread
        if self.cfg.is_ssl:
            return super().handle(conn)
        keep_alive = self._handle_request(conn)
        while keep_alive is True and self._may_keep(conn):
            keep_alive = self._handle_request(conn)
        return keep_alive

    def _handle_request(self, conn):
        """One request on a plain-TCP connection, under the read deadline."""
        sock = gunicorn_compat.connection_socket(conn)
        if not isinstance(sock, _DeadlineSocket):
            sock = _DeadlineSocket(sock)
            gunicorn_compat.set_connection_socket(conn, sock)
        sock.deadline = time.monotonic() + self.read_timeout
        return super().handle(conn)

    def _may_keep(self, conn) -> bool:
        """Whether this thread serves `conn`'s next request itself: only while every open connection can have a
        thread of its own (so no other waits for this one), and once that request begins within KEEPALIVE_WAIT."""
        if not self.alive or gunicorn_compat.open_connections(self) > self.cfg.threads:
            return False
        return gunicorn_compat.next_request_arrived(conn, KEEPALIVE_WAIT)
