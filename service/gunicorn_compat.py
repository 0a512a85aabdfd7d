"""The gunicorn internals the service's worker (service/worker.py) relies on, in one place.

Written for gunicorn 25.2 up to 27.x (checked on 27.0.1; `SUPPORTED`). gunicorn's public surface is its settings,
its server hooks and `worker_class` (a subclass of one of its workers, here gthread's `ThreadWorker`); it has no
public way to do these three things, so they reach into its internals, here and nowhere else:
- the error writer: gunicorn answers malformed HTTP itself, from `Worker.handle_error`, through the module function
  `gunicorn.util.write_error(sock, status_int, reason, mesg)`; `use_error_writer` swaps that function (per process),
  and `send_nonblocking` writes a reply the way gunicorn's writer does (`util.write_nonblock`);
- a new connection's wait for its first byte: gthread's `TConn.initialized`, `TConn.data_ready` and
  `TConn.wait_for_data(timeout)` (`first_byte_arrived`), and the `_DEFER` sentinel that `ThreadWorker.handle`
  returns to park a silent connection in the poller (`DEFER`; gunicorn 25.2+);
- the socket a connection's request parser reads from, `TConn.sock`, taken by `TConn.init` on the first request
  (`connection_socket`, `set_connection_socket`: the worker puts a read deadline around it);
- `NoMoreData`, the exception gthread's `handle` treats as a client gone quiet (closed without a traceback);
- a kept-alive connection's next request: bytes its parser read ahead (`TConn.parser.unreader.buf`, which
  gthread's `finish_request` checks too), or its socket turning readable, unless it speaks HTTP/2
  (`TConn.is_http2`) (`next_request_arrived`); and the worker's count of open connections, `ThreadWorker.nr_conns`
  (`open_connections`).

`incompatibility()` says in one line naming this module what the installed gunicorn lacks of these (None: nothing);
tests/test_service_gunicorn_compat.py is the canary that fails with that line when an upgrade breaks one.
"""

from __future__ import annotations

import inspect
import select
from collections.abc import Callable

import gunicorn
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers import base, gthread

SUPPORTED = ((25, 2), (28, 0))  # gunicorn versions this module was written for: from the first, below the second
ThreadWorker = gthread.ThreadWorker
NoMoreData = http_errors.NoMoreData  # what gthread's handle takes for a client gone quiet (no traceback)
DEFER = getattr(gthread, "_DEFER", None)  # checked by problems(): None means this gunicorn has no such sentinel
ERROR_WRITER_PARAMETERS = ["sock", "status_int", "reason", "mesg"]


def use_error_writer(write: Callable[[object, int, str, str], None]) -> None:
    """Make `write(sock, status_int, reason, mesg)` answer the HTTP errors gunicorn answers itself, in this process."""
    util.write_error = write


def send_nonblocking(sock, data: bytes) -> None:
    """Send `data` as gunicorn's own error writer does (without blocking on a slow client)."""
    util.write_nonblock(sock, data)


def first_byte_arrived(conn, timeout: float) -> bool:
    """False if `conn` is a new connection whose first byte has not arrived within `timeout` seconds."""
    return conn.initialized or conn.data_ready or conn.wait_for_data(timeout)


def connection_socket(conn):
    """The socket gthread's connection `conn` reads its requests from."""
    return conn.sock


def set_connection_socket(conn, sock) -> None:
    """Make `sock` (a wrapper around `connection_socket(conn)`) the one `conn`'s request parser reads from; set
    before the connection's first request, when gthread hands the socket to the parser."""
    conn.sock = sock


def next_request_arrived(conn, timeout: float) -> bool:
    """Whether the next request on `conn`, a kept-alive HTTP/1 connection just answered, has begun to arrive
    within `timeout` seconds (bytes already read ahead count at once); False for HTTP/2."""
    if conn.is_http2:
        return False
    if conn.parser.unreader.buf.getvalue():
        return True
    poller = select.poll()
    poller.register(conn.sock.fileno(), select.POLLIN)
    return bool(poller.poll(timeout * 1000))


def open_connections(worker) -> int:
    """The connections gthread worker `worker` holds open (being served, kept alive or waiting for data)."""
    return worker.nr_conns


def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def problems() -> list[str]:
    """What the installed gunicorn lacks of the internals above, one phrase each (empty: all present)."""
    found = []
    if not SUPPORTED[0] <= tuple(gunicorn.version_info[:2]) < SUPPORTED[1]:
        found.append("a version it was not written for (check the internals it lists, then widen SUPPORTED)")
    writer = getattr(util, "write_error", None)
    if not callable(writer) or list(inspect.signature(writer).parameters) != ERROR_WRITER_PARAMETERS:
        found.append(f"gunicorn.util.write_error is not a function of ({', '.join(ERROR_WRITER_PARAMETERS)})")
    if "util.write_error(" not in _source(base.Worker.handle_error):
        found.append("Worker.handle_error no longer answers through gunicorn.util.write_error")
    if not callable(getattr(util, "write_nonblock", None)):
        found.append("gunicorn.util.write_nonblock is gone")
    if (
        DEFER is None
        or getattr(gthread, "_DEFER", None) is not DEFER
        or "_DEFER" not in _source(ThreadWorker.finish_request)
    ):
        found.append("gthread's _DEFER sentinel is gone, or ThreadWorker.finish_request no longer parks on it")
    connection = _source(gthread.TConn.__init__)
    if not callable(getattr(gthread.TConn, "wait_for_data", None)) or not all(
        f"self.{name} =" in connection for name in ("initialized", "data_ready")
    ):
        found.append("gthread.TConn lacks initialized, data_ready or wait_for_data(timeout)")
    if "self.sock = sock" not in connection or "self.sock" not in _source(gthread.TConn.init):
        found.append("gthread.TConn no longer keeps its socket in .sock for its request parser")
    if "unreader.buf.getvalue()" not in _source(ThreadWorker.finish_request) or "self.is_http2 =" not in connection:
        found.append("gthread no longer keeps a connection's read-ahead in parser.unreader.buf, or its is_http2 flag")
    if "self.nr_conns = 0" not in _source(ThreadWorker.__init__):
        found.append("ThreadWorker no longer counts its open connections in nr_conns")
    if "NoMoreData" not in _source(ThreadWorker.handle):
        found.append("ThreadWorker.handle no longer treats NoMoreData as a client gone quiet")
    return found


def incompatibility() -> str | None:
    """None when the installed gunicorn has every internal above; else one line naming this module and what broke."""
    found = problems()
    if not found:
        return None
    written_for = " to below ".join(".".join(map(str, version)) for version in SUPPORTED)
    return (
        f"service/gunicorn_compat.py (written for gunicorn {written_for}) breaks on gunicorn {gunicorn.__version__}: "
        + "; ".join(found)
        + "."
    )
