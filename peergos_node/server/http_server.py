"""The HTTP/1.1 server of the Peergos API ports: one thread per connection, h11 for the protocol.

Theory of operation
-------------------
trio owns the listening sockets and accepts connections; each accepted connection gets a worker thread
(`trio.to_thread.run_sync`) that serves it with blocking socket calls for its whole life, keep-alive
requests included. In that thread h11 parses the request and the body is read (refused past the
endpoint's limit, spec/peergos.md §12 "General conventions"; `ApiApp` does the routing, the POST-only
rule and the error convention). Then:

- endpoints with a `sync_handler` (the hot read path: `block/get`) run right there, in the connection
  thread: block store read, BAT check and the send of up to 1 MiB all happen without the event loop;
- every other endpoint runs its async handler in trio (`trio.from_thread.run`), exactly as under an
  ASGI server, and the thread sends what it returns.

The reply head and body go out in one `sendmsg` (no join of a 1 MiB body, no 64 KiB pieces).

Why not hypercorn (design.md names it for the API): measured on this 2-core machine with 1 MiB blocks
(benchmarks/storage.py, 4 downloads in flight), the server spent 2.2 ms of CPU per `block/get` under
hypercorn on trio, about 60% of it in the interpreter (per-request tasks, ASGI events, h11 writer
copies, trio's send loop on the event loop thread, GC) — nearly 4x the work of the block read plus the
kernel's loopback send (~0.5 ms), and all of it serialized on the event loop thread. Serving each
connection from its own thread with blocking calls lets the sends (which release the GIL) of concurrent
downloads run in parallel and took the server to ~0.9-1.1 ms per block: API reads went from 0.27x to
the figures in CHANGELOG.md. Small requests handled in trio are not slower for the extra thread hop:
a POST of `/api/v0/id` from httpx, 5 interleaved rounds of 1,000 on a loaded machine, took a median
1.1 ms here against 2.2 ms through hypercorn. hypercorn still serves nabu's own API.

Bounds: at most `max_connections` connections are served at once (further ones wait in the listen
backlog until one closes); request heads are limited to `MAX_HEAD_BYTES`; a connection idle for
`keep_alive_s` between requests is closed; each socket read or write of a request in progress has
`io_timeout_s`. Stopping (cancelling `serve`) stops accepting and shuts every open connection down,
which wakes its thread; a request whose handler is running in trio is cancelled with the rest.
"""

from __future__ import annotations

import errno
import logging
import socket
import urllib.parse
from collections.abc import Sequence
from typing import Any

import h11
import trio
from starlette.responses import Response

from peergos_node.server.http import (
    DEFAULT_MAX_BODY,
    ApiApp,
    ApiRequest,
    Endpoint,
    error_response,
    parse_query,
)

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024
"""Largest request line + headers accepted (Peergos `champ/get/bulk` URLs carry up to ~3 KB of caps)."""
READ_SIZE = 1024 * 1024
"""Bytes asked from the socket per read (request bodies are up to a few MiB of blocks)."""
LINGER_S = 2.0
LINGER_BYTES = 16 * 1024 * 1024
"""After refusing a request body: how long and how much of the rest is read and dropped before closing."""
DEFAULT_MAX_CONNECTIONS = 128
DEFAULT_KEEP_ALIVE_S = 60.0
DEFAULT_IO_TIMEOUT_S = 60.0
_ACCEPT_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


def _closing(response: Response) -> Response:
    """`response` with `Connection: close` (h11 then ends the connection after it)."""
    response.raw_headers.append((b"connection", b"close"))
    return response


class _Closed(Exception):
    """The connection is over (client closed, timed out, protocol error, or server stopping)."""


class _Connection:
    """One client connection, used only by its worker thread (except `shutdown`)."""

    def __init__(self, app: ApiApp, sock: socket.socket, server: ApiServer) -> None:
        self.app, self.sock, self.server = app, sock, server
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)

    def shutdown(self) -> None:
        """Wake the thread from any blocking call (from any thread); it then closes the connection."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- the worker thread -----------------------------------------------------------------------
    def serve(self) -> None:
        try:
            while True:
                if not self._serve_one():
                    return
        except _Closed:
            return
        except Exception:
            log.exception("%s: connection failed", self.app.name)
        finally:
            if self.h11.their_state is h11.SEND_BODY:
                self._drain()
            self.sock.close()

    def _drain(self) -> None:
        """We answered before reading the whole body (a refusal): read and drop some of the rest before
        closing, so the client is not reset before it has read the answer (a "lingering close")."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(LINGER_S)
            left = LINGER_BYTES
            while left > 0:
                data = self.sock.recv(min(left, READ_SIZE))
                if not data:
                    return
                left -= len(data)
        except OSError:
            pass

    def _next_event(self, timeout: float) -> h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA]:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                self._reply_to_bad_request(e)
                raise _Closed from None
            if event is not h11.NEED_DATA:
                return event
            self.sock.settimeout(timeout)
            try:
                # a request head is read in pieces no larger than its limit, so h11 sees an oversized
                # one incomplete and refuses it (431); bodies in large reads
                size = READ_SIZE if self.h11.their_state is h11.SEND_BODY else MAX_HEAD_BYTES + 1
                data = self.sock.recv(size)
            except (TimeoutError, OSError):
                raise _Closed from None
            if not data and self.h11.their_state is h11.IDLE:
                raise _Closed  # the client closed between requests
            self.h11.receive_data(data)

    def _reply_to_bad_request(self, error: h11.RemoteProtocolError) -> None:
        if self.h11.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        status = error.error_status_hint
        message = "request header too large" if status == 431 else f"bad request: {error}"
        try:
            self._send(error_response(message, status), head_only=False)
        except (_Closed, h11.LocalProtocolError):
            pass

    def _serve_one(self) -> bool:
        """Serve one request; False when the connection should close."""
        event = self._next_event(self.server.keep_alive_s)
        if isinstance(event, h11.ConnectionClosed):
            return False
        if not isinstance(event, h11.Request):
            raise _Closed
        # h11 refuses an oversized head only while it is incomplete; one that arrived whole is measured
        if len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers) > MAX_HEAD_BYTES:
            self._send(_closing(error_response("request header too large", 431)), head_only=False)
            return False
        timeout = self.server.io_timeout_s
        method = event.method.decode("ascii", "replace")
        head_only = method == "HEAD"
        raw_path, _, raw_query = event.target.partition(b"?")
        routed = self.app.route(method, urllib.parse.unquote(raw_path.decode("latin-1")))
        if isinstance(routed, Response):  # 404 / 405: drop a small body to keep the connection
            waiting = self.h11.they_are_waiting_for_100_continue
            if waiting or self._read_body(DEFAULT_MAX_BODY, timeout) is None:
                _closing(routed)
            self._send(routed, head_only=head_only)
            return self._finish()
        path, endpoint = routed
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in event.headers}  # h11: lower-case
        declared = headers.get("content-length")  # h11 has checked it is a number
        too_large = error_response(f"request body too large (limit {endpoint.max_body} bytes)", 413)
        if declared is not None and int(declared) > endpoint.max_body:
            self._send(_closing(too_large), head_only=head_only)
            return False
        if self.h11.they_are_waiting_for_100_continue:
            self._send_raw([self.h11.send(h11.InformationalResponse(status_code=100, headers=[])) or b""])
        body = self._read_body(endpoint.max_body, timeout)
        if body is None:
            self._send(_closing(too_large), head_only=head_only)
            return False
        request = ApiRequest(path, parse_query(raw_query.decode("latin-1")), headers, body)
        self._send(self._run(endpoint, request), head_only=head_only)
        return self._finish()

    def _read_body(self, limit: int, timeout: float) -> bytes | None:
        """The request body, or None once it is past `limit` bytes (the rest is left unread)."""
        chunks: list[bytes] = []
        total = 0
        while True:
            event = self._next_event(timeout)
            if isinstance(event, h11.Data):
                total += len(event.data)
                if total > limit:
                    return None
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)  # bytes (h11 hands out bytearrays)
            else:
                raise _Closed  # the client went away mid-body: nothing was stored, nobody to answer

    def _run(self, endpoint: Endpoint, request: ApiRequest) -> Response:
        if endpoint.sync_handler is not None:
            return self.app.respond_sync(endpoint, request)
        try:
            return trio.from_thread.run(self.app.respond, endpoint, request)
        except (trio.RunFinishedError, trio.Cancelled):
            raise _Closed from None

    def _send(self, response: Response, *, head_only: bool) -> None:
        """Send a whole reply (h11 frames it; for HEAD it sends the head only)."""
        head = self.h11.send(h11.Response(status_code=response.status_code, headers=response.raw_headers))
        assert head is not None
        parts = [head]
        body = bytes(response.body)
        if body and not head_only:
            parts.extend(self.h11.send_with_data_passthrough(h11.Data(data=body)) or ())
        end = self.h11.send(h11.EndOfMessage())
        if end:
            parts.append(end)
        self._send_raw(parts)

    def _send_raw(self, parts: Sequence[bytes]) -> None:
        self.sock.settimeout(self.server.io_timeout_s)
        views = [memoryview(p) for p in parts if p]
        try:
            while views:
                sent = self.sock.sendmsg(views)
                while sent:
                    if sent >= len(views[0]):
                        sent -= len(views.pop(0))
                    else:
                        views[0] = views[0][sent:]
                        sent = 0
        except (TimeoutError, OSError):
            raise _Closed from None

    def _finish(self) -> bool:
        """After a reply: ready for the next request on this connection, or close it."""
        if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
            return False  # e.g. a refused body we did not read, or Connection: close
        self.h11.start_next_cycle()
        return True


class ApiServer:
    """Serves an `ApiApp` over HTTP/1.1 on a host and port (see the module docstring)."""

    def __init__(
        self,
        app: ApiApp,
        host: str,
        port: int,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keep_alive_s: float = DEFAULT_KEEP_ALIVE_S,
        io_timeout_s: float = DEFAULT_IO_TIMEOUT_S,
    ) -> None:
        self.app, self.host, self.port = app, host, port
        self.max_connections = max_connections
        self.keep_alive_s, self.io_timeout_s = keep_alive_s, io_timeout_s
        self._open: set[_Connection] = set()

    @property
    def connections(self) -> int:
        """Connections being served now."""
        return len(self._open)

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled; `nursery.start` returns the base URL (http://host:port,
        the real port when 0 was asked). OSError if the address cannot be bound."""
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        sockets = [listener.socket for listener in listeners]
        bound = sockets[0].getsockname()
        host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        slots = trio.Semaphore(self.max_connections)
        threads = trio.CapacityLimiter(self.max_connections)
        try:
            async with trio.open_nursery() as nursery:
                for listening in sockets:
                    nursery.start_soon(self._accept_loop, listening, slots, threads, nursery)
                task_status.started(f"http://{host}:{bound[1]}")
        finally:
            for listening in sockets:
                listening.close()
            for conn in list(self._open):
                conn.shutdown()

    async def _accept_loop(
        self,
        listening: trio.socket.SocketType,
        slots: trio.Semaphore,
        threads: trio.CapacityLimiter,
        nursery: trio.Nursery,
    ) -> None:
        while True:
            await slots.acquire()
            try:
                sock, _ = await listening.accept()
            except OSError as e:
                slots.release()
                if e.errno in _ACCEPT_ERRORS:  # out of descriptors or memory: let some connections end
                    log.warning("%s: accept failed (%s); pausing", self.app.name, e)
                    await trio.sleep(0.1)
                    continue
                raise
            nursery.start_soon(self._serve_connection, sock, slots, threads)

    async def _serve_connection(
        self, trio_sock: trio.socket.SocketType, slots: trio.Semaphore, threads: trio.CapacityLimiter
    ) -> None:
        sock = socket.socket(fileno=trio_sock.detach())
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        conn = _Connection(self.app, sock, self)
        self._open.add(conn)
        try:
            await trio.to_thread.run_sync(
                conn.serve,
                limiter=threads,
                abandon_on_cancel=True,  # type: ignore[call-arg]  # trio-typing's stubs predate it
            )
        finally:
            self._open.discard(conn)
            conn.shutdown()  # a no-op after a normal end; wakes an abandoned thread, which closes it
            slots.release()
