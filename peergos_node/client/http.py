"""HTTP access to a Peergos server's API (the client half of spec/peergos.md §12).

Every call is a POST (Peergos servers refuse other methods unless public). A 400 reply carries the
server's message URL-encoded in the `Trailer` header; it is turned back into the matching typed error
(`PointerCasError`, `QuotaExceeded`, or `RemoteError`) so callers can react (merge on CAS, report quota).

Theory of operation
-------------------
Requests go through the caller's `httpx.AsyncClient` (so a test can put a transport in between), except
block downloads (`block/get`), the bulk of what a reader moves: when the client is a plain one (httpx's
own transport, no mounted proxies, auth or event hooks) and the server is `http://`, `HttpStorage.get_block`
uses a `DirectPool`: keep-alive HTTP/1.1 connections driven from worker threads (`trio.to_thread.run_sync`
behind a `trio.CapacityLimiter` of `max_connections`). A worker sends the request, reads the body straight
into one `bytes` object and checks it against the CID (hashlib releases the GIL) before handing it back,
so receiving and hashing of concurrent downloads run in parallel with each other and with the event loop.
`HttpStorage.get_blocks` (a chunk's fragments) hands a whole run of blocks to one worker (`post_many`),
which fetches them in turn on its connection: one trio/thread hand-off per run instead of per block
(~0.2 ms of client CPU per MiB on this machine).

The exchange is spoken here, on a plain blocking socket, rather than through `http.client`, whose
per-request Python (putrequest/putheader, `email.parser` for the head, BufferedReader loops) and many
small reads (each a GIL release and re-take with several threads competing) cost as much CPU as the
socket copy and the hashing together. One pre-formatted request goes out with `sendall`; the head is
peeked (`MSG_PEEK`, 4 KiB at a time) and exactly its bytes consumed, so no body byte is read ahead, and
parsed by hand (RFC 9112: case-insensitive names, obs-fold, 1xx answers skipped, at most `MAX_HEAD`
bytes); a Content-Length body then comes in one `recv(n, MSG_WAITALL)`, which allocates and fills the
`bytes` in C in a single system call. Measured on loopback (1 MiB bodies, 4 threads, sha256 each):
0.85 ms CPU per MiB with `MSG_WAITALL`, 0.95 with `recv_into` a bytearray then `bytes()` (with or without
`MSG_WAITALL`) or a loop of 256 KiB `recv`s joined. Chunked bodies (bounded lines, `max_body` in all) and
bodies delimited by the end of the connection are read through a small read-ahead buffer; they, like
`Connection: close` and HTTP/1.0 answers, leave a connection that is not reused if anything might be
left over. Because `MSG_WAITALL` needs a blocking socket (a Python-level timeout makes the socket
non-blocking and polls before every call), the 60 s per socket operation is SO_RCVTIMEO/SO_SNDTIMEO:
a call that times out fails with EAGAIN (raised as TimeoutError), and one `MSG_WAITALL` call that times
out after some progress returns short and is continued, so a body fails once a whole period passes with
no byte (60 to 120 s after a stall begins, not per `recv` as before).

Measured (`HttpStorage.get_block` over a minimal threaded block server, 1 MiB blocks, 4 in flight, 15
runs each interleaved on a loaded 2-core machine): client CPU per MiB 1.48 ms with `http.client`, 1.25
ms now (the floor, socket copy plus sha256, is about 0.75 ms; `trio.to_thread` hand-offs are about 0.2 ms
of the rest), 440 → 514 MiB/s. Same timeouts (connect 10 s, then 60 s per socket operation), same typed
errors: a body over `max_body` is refused with a `RemoteError`, a malformed or truncated answer (or a head
over `MAX_HEAD`) is a `ProtocolError` (a ConnectionError, so `PeergosHttp.fetch` reports it as a
`RemoteError` like any failure to reach the server).

Cancellation: the trio task gives up on its worker at once (`abandon_on_cancel`) and shuts the worker's
socket down, so the worker fails fast and closes the connection; a connection goes back to the pool only
after a complete exchange, so a cancelled or failed request never leaves a half-read response behind.
An idle connection the server has closed (readable while idle) is dropped on checkout, and a request
that fails on a reused connection before any answer is retried once on a fresh one.
"""

from __future__ import annotations

import gzip
import json
import re
import select
import socket
import struct
import threading
import time
import urllib.parse
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import trio

from nabu_py.codec import dag_cbor
from nabu_py.errors import DecodeError
from nabu_py.multiformats import multibase
from nabu_py.multiformats.cid import Cid
from peergos_node.accounts.backup_codes import BackupCodes
from peergos_node.accounts.login_data import LoginData, LoginResponse
from peergos_node.accounts.mfa import MultiFactorAuthMethod, MultiFactorAuthResponse
from peergos_node.accounts.totp import TotpKey
from peergos_node.client.tasks import task_group
from peergos_node.corenode.claims import UserPublicKeyLink
from peergos_node.corenode.messages import (
    DifficultyResponse,
    GetPublicKeyResponse,
    GetUsernameRequest,
    GetUsernameResponse,
    SignupRequest,
    UpdateChainRequest,
    UsernameRequest,
    decode_chain_response,
    decode_usernames_gzip,
)
from peergos_node.crypto.bat import BatWithId
from peergos_node.crypto.public_key_hash import PublicKeyHash
from peergos_node.crypto.signing import PublicSigningKey
from peergos_node.errors import PeergosError
from peergos_node.mutable.signed_pointer import MultiWriterCommit, SignedPointerUpdate

CORE = "/peergos/v0/core/"
LOGIN = "/peergos/v0/login/"

CONNECT_TIMEOUT = 10.0
IO_TIMEOUT = 60.0
DEFAULT_TIMEOUT = httpx.Timeout(IO_TIMEOUT, connect=CONNECT_TIMEOUT)
MAX_BLOCK_RESPONSE = 2 * 1024 * 1024
"""Largest `block/get` answer accepted (blocks are at most 1 MiB + 100 bytes; nabu allows 2 MiB)."""
MAX_CHAMP_RESPONSE = 64 * 1024 * 1024
"""Largest `champ/get/bulk` answer accepted (20 value blocks of at most 2 MiB plus their CHAMP paths)."""
DIRECT_CONNECTIONS = 8
"""Concurrent `block/get` requests (and pooled connections) of a `DirectPool`."""
IDLE_LIMIT = 30.0
"""Seconds a pooled connection may sit idle before it is dropped rather than reused."""
OFF_LOOP_CHECK = 64 * 1024
"""Answers at least this large are checked (hashed) in a worker thread, not on the event loop."""


class RemoteError(PeergosError):
    """The server refused a request; `message` is what it said."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.message = message


class RemotePointerCas(RemoteError):
    """The server's pointer is not the one the update expected (Peergos `PointerCasException`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        parts = message[len("PointerCAS:") :].split(",")
        self.existing: Cid | None = _maybe_cid(parts[0]) if parts else None
        self.sequence: int | None = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class RemoteQuotaExceeded(RemoteError):
    """The server refused a write: storage quota reached."""


class RemoteRateLimited(RemoteError):
    """Too many requests (429): try again later."""


def _maybe_cid(text: str) -> Cid | None:
    try:
        return None if text in ("", "EMPTY") else Cid.parse(text)
    except DecodeError:
        return None


class _OneShotBody(httpx.AsyncByteStream):
    """A request body sent as one chunk.

    httpx wraps `bytes` in an async *generator*; when a request is cancelled mid-send (a sibling upload
    failed, say) that generator is collected unfinished and trio reports it. A plain iterator has no such
    state, so cancelling a request leaves nothing behind.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Once(self._data)


class _Once:
    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> _Once:
        return self

    async def __anext__(self) -> bytes:
        if self._data is None:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data


def _raise_refusal(status: int, trailer: str, path: str) -> None:
    """The typed error for a non-200 answer (its message is the URL-encoded `Trailer` header)."""
    message = urllib.parse.unquote_plus(trailer)
    if message.startswith("PointerCAS:"):
        raise RemotePointerCas(status, message)
    if "Storage quota reached" in message:
        raise RemoteQuotaExceeded(status, message)
    if status == 429:
        raise RemoteRateLimited(status, message)
    raise RemoteError(status, message or f"HTTP {status} from {path}")


def _query(params: Sequence[tuple[str, str]]) -> str:
    query = "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in params)
    return f"?{query}" if query else ""


class ProtocolError(ConnectionError):
    """The server's answer broke HTTP/1.1: malformed or oversized head, bad framing, or cut short."""


class RemoteDisconnected(ConnectionResetError):
    """The server closed the connection before any byte of an answer (a reused one may be retried)."""


MAX_HEAD = 64 * 1024
"""Largest response head (status line and headers, each 1xx answer's counted separately)."""
MAX_CHUNK_LINE = 4096
"""Longest chunk-size line (size and extensions) of a chunked answer."""
_PEEK = 4096
"""Bytes peeked at a time while looking for the end of a response head."""
_NO_BODY = frozenset({204, 304})
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_BAD_TARGET = re.compile(r"[^\x21-\x7e]")
"""What may not appear in a request target (controls, spaces, non-ASCII)."""


class _Response:
    """A parsed response head: status, the headers the exchange needs, and how the body is framed."""

    __slots__ = ("chunked", "keep_alive", "length", "status", "trailer")

    def __init__(
        self, status: int, length: int | None, chunked: bool, keep_alive: bool, trailer: str
    ) -> None:
        self.status, self.length, self.chunked = status, length, chunked
        self.keep_alive, self.trailer = keep_alive, trailer


def _timeval(seconds: float) -> bytes:
    """`seconds` as the option value of SO_RCVTIMEO/SO_SNDTIMEO (0 would mean "never": at least 1 µs)."""
    whole, micro = divmod(max(round(seconds * 1_000_000), 1), 1_000_000)
    return struct.pack("@ll", whole, micro)  # struct timeval (POSIX; select.poll rules Windows out anyway)


def _parse_head(head: bytes) -> _Response:
    """Parse a response head (without its final CRLF CRLF); ProtocolError if it is not HTTP/1.x."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3 or not parts[1].isdigit():
        raise ProtocolError(f"bad status line {lines[0][:100]!r}")
    status = int(parts[1])
    fields: dict[bytes, list[bytes]] = {}
    last: list[bytes] | None = None
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):  # obs-fold: continues the previous field, read as one space
            if last is None:
                raise ProtocolError("header continuation without a header")
            last[-1] += b" " + line.strip(b" \t")
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip(b" \t"):
            raise ProtocolError(f"bad header line {line[:100]!r}")
        last = fields.setdefault(name.lower(), [])
        last.append(value.strip(b" \t"))
    connection = {t.strip().lower() for v in fields.get(b"connection", ()) for t in v.split(b",")}
    keep_alive = parts[0] != b"HTTP/1.0" and b"close" not in connection
    length: int | None = None
    chunked = False
    codings = [t.strip().lower() for v in fields.get(b"transfer-encoding", ()) for t in v.split(b",")]
    if codings:  # overrides any Content-Length (RFC 9112 §6.3)
        chunked = codings[-1] == b"chunked"
        keep_alive = keep_alive and chunked and b"content-length" not in fields
    elif b"content-length" in fields:
        values = {t.strip() for v in fields[b"content-length"] for t in v.split(b",")}
        if len(values) != 1 or not (value := values.pop()).isdigit():
            raise ProtocolError("bad Content-Length")
        length = int(value)
    trailer = b", ".join(fields.get(b"trailer", ())).decode("latin-1")
    if status in _NO_BODY or 100 <= status < 200:
        length, chunked = 0, False
    return _Response(status, length, chunked, keep_alive, trailer)


class _Connection:
    """A keep-alive HTTP/1.1 connection on a plain blocking socket: `connect_timeout` to connect, then
    `io_timeout` per socket call (SO_RCVTIMEO/SO_SNDTIMEO: the socket stays blocking, see the module
    docstring). Used by one worker thread at a time; `interrupt` may come from another."""

    def __init__(self, host: str, port: int, connect_timeout: float, io_timeout: float) -> None:
        self.host, self.port = host, port
        self.connect_timeout, self.io_timeout = connect_timeout, io_timeout
        self.sock: socket.socket | None = None
        self.idle_since = 0.0
        name = f"[{host}]" if ":" in host else host
        self.host_header = name if port == 80 else f"{name}:{port}"

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(None)  # blocking: a Python-level timeout would poll before every call
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(self.io_timeout))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(self.io_timeout))
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def reusable(self, now: float, idle_limit: float) -> bool:
        """Idle recently and nothing to read: a readable idle socket means the server closed it."""
        sock = self.sock
        if sock is None or now - self.idle_since > idle_limit:
            return False
        try:
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def interrupt(self) -> None:
        """Wake a worker blocked on this connection (from another thread): it fails and closes it."""
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def request(self, target: str) -> _Response:
        """Send a POST with an empty body and read the answer's head (past any 1xx). TimeoutError when a
        socket call times out, `RemoteDisconnected` if the server closed the connection before answering
        (so a reused connection may be retried), ProtocolError, OSError."""
        sock = self.sock
        assert sock is not None
        if _BAD_TARGET.search(target):
            raise ValueError(f"bad request target {target[:100]!r}")
        request = (
            f"POST {target} HTTP/1.1\r\nHost: {self.host_header}\r\n"
            "Accept-Encoding: identity\r\nContent-Length: 0\r\n\r\n"
        )
        try:
            sock.sendall(request.encode("ascii"))
            resp = _read_head(sock, first=True)
            while 100 <= resp.status < 200:  # informational answers come before the real one
                if resp.status == 101:
                    raise ProtocolError("unexpected 101 Switching Protocols")
                resp = _read_head(sock, first=False)
            return resp
        except BlockingIOError:  # SO_RCVTIMEO/SO_SNDTIMEO expired (EAGAIN on a blocking socket)
            raise TimeoutError("timed out") from None

    def read_body(self, resp: _Response, max_body: int) -> bytes:
        """The whole body of the answer `request` returned, refused past `max_body` bytes. Afterwards
        `resp.keep_alive` tells whether the connection may carry another request."""
        sock = self.sock
        assert sock is not None
        try:
            if resp.length is not None:
                if resp.length > max_body:
                    raise RemoteError(
                        resp.status, f"answer too large ({resp.length} bytes, limit {max_body})"
                    )
                return _read_exactly(sock, resp.length)
            if resp.chunked:
                data, clean = _read_chunked(sock, resp.status, max_body)
                resp.keep_alive = resp.keep_alive and clean
                return data
            resp.keep_alive = False  # delimited by the server closing the connection
            return _read_to_close(sock, resp.status, max_body)
        except BlockingIOError:
            raise TimeoutError("timed out") from None


def _read_head(sock: socket.socket, first: bool) -> _Response:
    """Read one response head, consuming exactly its bytes: peek, then take up to its CRLF CRLF."""
    head = b""
    while True:
        peek = sock.recv(_PEEK, socket.MSG_PEEK)
        if not peek:
            if first and not head:
                raise RemoteDisconnected("server closed the connection without answering")
            raise ProtocolError("connection closed in the middle of a response head")
        end = (head[-3:] + peek).find(b"\r\n\r\n")
        take = len(peek) if end < 0 else end + 4 - len(head[-3:])
        if len(head) + take > MAX_HEAD:
            raise ProtocolError(f"response head larger than {MAX_HEAD} bytes")
        got = sock.recv(take)
        while len(got) < take:  # peeked bytes are there: only a shutdown stops this short
            more = sock.recv(take - len(got))
            if not more:
                raise ProtocolError("connection closed in the middle of a response head")
            got += more
        head += got
        if end >= 0:
            return _parse_head(head[:-4])


def _read_exactly(sock: socket.socket, n: int) -> bytes:
    """`n` bytes: one recv(MSG_WAITALL) builds them as one `bytes` in C. A short return (a timeout
    after partial progress, a signal) carries on; an end of stream is an error."""
    if n == 0:
        return b""
    data = sock.recv(n, socket.MSG_WAITALL)
    if len(data) == n:
        return data
    buf = bytearray(n)
    view = memoryview(buf)
    got = len(data)
    view[:got] = data
    while got < n:
        k = sock.recv_into(view[got:], n - got, socket.MSG_WAITALL)
        if not k:
            raise ProtocolError(f"connection closed after {got} of {n} body bytes")
        got += k
    return bytes(buf)


class _Buffered:
    """Read-ahead over a socket for the rare answers without a Content-Length."""

    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, bytearray()

    def fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ProtocolError("connection closed in the middle of a chunked answer")
        self.buf += data

    def line(self, limit: int) -> bytes:
        while (i := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > limit:
                raise ProtocolError(f"line longer than {limit} bytes in a chunked answer")
            self.fill()
        if i > limit:
            raise ProtocolError(f"line longer than {limit} bytes in a chunked answer")
        line = bytes(self.buf[:i])
        del self.buf[: i + 2]
        return line

    def take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data


def _read_chunked(sock: socket.socket, status: int, max_body: int) -> tuple[bytes, bool]:
    """A chunked body (RFC 9112 §7.1), refused past `max_body` bytes, and whether nothing followed it."""
    reader = _Buffered(sock)
    parts: list[bytes] = []
    total = 0
    while True:
        size_text = reader.line(MAX_CHUNK_LINE).split(b";", 1)[0].strip(b" \t")
        if not _HEX.fullmatch(size_text):  # int(..., 16) would also take "0x", "_", signs
            raise ProtocolError(f"bad chunk size {size_text[:100]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > max_body:
            raise RemoteError(status, f"answer too large (limit {max_body} bytes)")
        parts.append(reader.take(size))
        if reader.take(2) != b"\r\n":
            raise ProtocolError("chunk not followed by CRLF")
    trailers = 0
    while line := reader.line(MAX_HEAD):  # trailer fields, ignored, up to the empty line
        trailers += len(line) + 2
        if trailers > MAX_HEAD:
            raise ProtocolError(f"trailer section larger than {MAX_HEAD} bytes")
    return b"".join(parts), not reader.buf


def _read_to_close(sock: socket.socket, status: int, max_body: int) -> bytes:
    """A body delimited by the end of the connection, refused past `max_body` bytes."""
    parts: list[bytes] = []
    total = 0
    while data := sock.recv(min(max_body + 1 - total, 1 << 20)):
        parts.append(data)
        total += len(data)
        if total > max_body:
            raise RemoteError(status, f"answer too large (limit {max_body} bytes)")
    return b"".join(parts)


class _Abandoned(Exception):
    """The trio task gave up on this request (its result goes nowhere)."""


class _Exchange:
    """One request shared by its trio task and its worker thread, so a cancelled task can interrupt the
    worker's socket without racing the worker handing the connection back to the pool."""

    __slots__ = ("_conn", "_lock", "aborted")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: _Connection | None = None
        self.aborted = False

    def attach(self, conn: _Connection) -> None:
        with self._lock:
            if self.aborted:
                raise _Abandoned
            self._conn = conn

    def detach(self) -> bool:
        """Stop sharing the connection; False if the task has given up meanwhile."""
        with self._lock:
            self._conn = None
            return not self.aborted

    def abort(self) -> None:
        with self._lock:
            self.aborted = True
            if self._conn is not None:
                self._conn.interrupt()


_STOCK_HEADERS = frozenset({"accept", "accept-encoding", "connection", "user-agent"})
"""Headers an httpx client sends by default: a client with others (auth tokens, say) keeps httpx."""


class DirectPool:
    """Keep-alive HTTP/1.1 connections to one `http://` server, used from worker threads.

    `post` runs a whole exchange (connect if needed, send, read the body, check it) in one worker thread;
    at most `max_connections` run at a time and as many connections are kept for reuse. See the module
    docstring for cancellation and reuse rules. `close()` closes the idle connections (in-flight ones
    are closed by their workers).
    """

    def __init__(
        self,
        host: str,
        port: int,
        prefix: str = "",
        *,
        max_connections: int = DIRECT_CONNECTIONS,
        connect_timeout: float = CONNECT_TIMEOUT,
        io_timeout: float = IO_TIMEOUT,
        idle_limit: float = IDLE_LIMIT,
    ) -> None:
        self.host, self.port, self.prefix = host, port, prefix
        self.max_connections = max_connections
        self.connect_timeout, self.io_timeout, self.idle_limit = connect_timeout, io_timeout, idle_limit
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        self._limiter: tuple[trio.lowlevel.Task, trio.CapacityLimiter] | None = None

    @classmethod
    def for_client(cls, base_url: str, client: httpx.AsyncClient) -> DirectPool | None:
        """A pool for `base_url` if requests through `client` would go straight to it (stock transport, no
        proxies, auth, cookies, extra headers or event hooks) and it is `http://`; else None."""
        url = urllib.parse.urlsplit(base_url)
        # httpx has no public view of its transport; anything unexpected means "not plain"
        plain = (
            type(getattr(client, "_transport", None)) is httpx.AsyncHTTPTransport
            and getattr(client, "_mounts", None) == {}
            and client.auth is None
            and not any(client.event_hooks.values())
            and not client.cookies
            and {k.lower() for k in client.headers} <= _STOCK_HEADERS
        )
        if not plain or url.scheme != "http" or not url.hostname:
            return None
        try:
            port = url.port or 80
        except ValueError:
            return None
        return cls(url.hostname, port, url.path.rstrip("/"))

    async def post(
        self, target: str, max_body: int, check: Callable[[bytes], None] | None = None
    ) -> tuple[int, str, bytes]:
        """POST `prefix + target` with an empty body: (status, Trailer header, body). `check` runs on a
        200 answer's non-empty body in the worker. OSError (ProtocolError, TimeoutError, ...) if the exchange
        fails."""
        return (await self.post_many([target], max_body, [check]))[0]

    async def post_many(
        self, targets: Sequence[str], max_body: int, checks: Sequence[Callable[[bytes], None] | None]
    ) -> list[tuple[int, str, bytes]]:
        """`post` for each target in turn, all in one worker thread (one connection at a time, one
        hand-off between trio and the thread for the lot instead of one per request); stops at the first
        failure, raising it."""
        root = trio.lowlevel.current_root_task()
        if self._limiter is None or self._limiter[0] is not root:  # one limiter per trio run
            assert root is not None
            self._limiter = (root, trio.CapacityLimiter(self.max_connections))
        exchange = _Exchange()
        full = [self.prefix + target for target in targets]
        try:
            return await trio.to_thread.run_sync(
                self._exchange_many,
                exchange,
                full,
                max_body,
                checks,
                limiter=self._limiter[1],
                abandon_on_cancel=True,  # type: ignore[call-arg]  # trio-typing's stubs predate it
            )
        except BaseException:
            exchange.abort()  # a no-op once the worker is done; else its socket is shut down
            raise

    def close(self) -> None:
        """Close the idle connections; connections in use are closed when their requests end."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # ---- worker-thread side ------------------------------------------------------------------------
    def _checkout(self, fresh: bool) -> tuple[_Connection, bool]:
        now = time.monotonic()
        with self._lock:
            while self._idle and not fresh:
                conn = self._idle.pop()  # most recently used first
                if conn.reusable(now, self.idle_limit):
                    return conn, True
                conn.close()
        return _Connection(self.host, self.port, self.connect_timeout, self.io_timeout), False

    def _checkin(self, conn: _Connection) -> None:
        conn.idle_since = time.monotonic()
        with self._lock:
            if not self._closed and len(self._idle) < self.max_connections:
                self._idle.append(conn)
                return
        conn.close()

    def _exchange_many(
        self,
        exchange: _Exchange,
        targets: Sequence[str],
        max_body: int,
        checks: Sequence[Callable[[bytes], None] | None],
    ) -> list[tuple[int, str, bytes]]:
        return [self._exchange(exchange, t, max_body, c) for t, c in zip(targets, checks, strict=True)]

    def _exchange(
        self, exchange: _Exchange, target: str, max_body: int, check: Callable[[bytes], None] | None
    ) -> tuple[int, str, bytes]:
        fresh = False
        while True:
            conn, reused = self._checkout(fresh)
            try:
                exchange.attach(conn)
            except _Abandoned:
                conn.close()
                raise
            done = False
            try:
                if conn.sock is None:
                    conn.connect()
                    exchange.attach(conn)  # raises if the task gave up during the connect
                try:
                    resp = conn.request(target)
                except (BrokenPipeError, ConnectionResetError):  # RemoteDisconnected is one
                    if reused and not exchange.aborted:
                        fresh = True  # the server closed it while idle: once more on a new connection
                        continue
                    raise
                data = conn.read_body(resp, max_body)
                done = resp.keep_alive
            finally:
                if exchange.detach() and done:
                    self._checkin(conn)
                else:
                    conn.close()
            if exchange.aborted:
                raise _Abandoned
            if check is not None and resp.status == 200 and data:
                check(data)
            return resp.status, resp.trailer, data


@dataclass
class PeergosHttp:
    """POSTs to one server (a base URL such as http://127.0.0.1:8000).

    `direct=True` lets block downloads use a `DirectPool` when `client` is a plain one (see the module
    docstring); its idle connections are closed when this object is collected or at exit.
    """

    base_url: str
    client: httpx.AsyncClient
    direct: bool = True
    pool: DirectPool | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.direct:
            self.pool = DirectPool.for_client(self.base_url, self.client)
            if self.pool is not None:
                weakref.finalize(self, self.pool.close)

    async def post(self, path: str, params: Sequence[tuple[str, str]] = (), body: bytes = b"") -> bytes:
        """POST and return the body, raising the typed error a refusal stands for."""
        url = f"{self.base_url}{path}{_query(params)}"
        try:
            request = self.client.build_request("POST", url, content=body, timeout=DEFAULT_TIMEOUT)
            request.stream = _OneShotBody(body)
            resp = await self.client.send(request)
        except httpx.HTTPError as e:
            raise RemoteError(0, f"cannot reach {self.base_url}: {type(e).__name__}: {e}") from None
        if resp.status_code != 200:
            _raise_refusal(resp.status_code, resp.headers.get("trailer", ""), path)
        return resp.content

    async def fetch(
        self, path: str, params: Sequence[tuple[str, str]], check: Callable[[bytes], None], max_body: int
    ) -> bytes:
        """POST with an empty body for a (possibly large) answer, which `check` (raising if it is bad)
        runs on off the event loop when not empty. Through the `DirectPool` if there is one."""
        if self.pool is None:
            data = await self.post(path, params)
            if len(data) > max_body:
                raise RemoteError(200, f"answer too large ({len(data)} bytes, limit {max_body})")
            if len(data) >= OFF_LOOP_CHECK:
                await trio.to_thread.run_sync(check, data)
            elif data:
                check(data)
            return data
        return (await self.fetch_many(path, [params], [check], max_body))[0]

    async def fetch_many(
        self,
        path: str,
        params: Sequence[Sequence[tuple[str, str]]],
        checks: Sequence[Callable[[bytes], None]],
        max_body: int,
    ) -> list[bytes]:
        """`fetch` for each parameter list in turn (through one `DirectPool` worker if there is a pool);
        the first failure is raised."""
        if self.pool is None:
            out: list[bytes] = []
            for p, check in zip(params, checks, strict=True):
                out.append(await self.fetch(path, p, check, max_body))
            return out
        targets = [f"{path}{_query(p)}" for p in params]
        try:
            answers = await self.pool.post_many(targets, max_body, checks)
        except OSError as e:
            raise RemoteError(0, f"cannot reach {self.base_url}: {type(e).__name__}: {e}") from None
        for status, trailer, _ in answers:
            if status != 200:
                _raise_refusal(status, trailer, path)
        return [data for _, _, data in answers]


class HttpStorage:
    """Block storage (`/api/v0/...`) of a Peergos server."""

    def __init__(self, http: PeergosHttp) -> None:
        self.http = http

    async def id(self) -> str:
        """The server's peer id (base58)."""
        return str(json.loads(await self.http.post("/api/v0/id"))["ID"])

    async def start_transaction(self, owner: PublicKeyHash) -> str:
        """Open a write transaction."""
        return (await self.http.post("/api/v0/transaction/start", [("owner", str(owner))])).decode()

    async def close_transaction(self, owner: PublicKeyHash, tid: str) -> bool:
        """Close a write transaction."""
        out = await self.http.post("/api/v0/transaction/close", [("arg", tid), ("owner", str(owner))])
        return out.strip() == b"1"

    async def put_blocks(
        self,
        owner: PublicKeyHash,
        writer: PublicKeyHash,
        signatures: Sequence[bytes],
        blocks: Sequence[bytes],
        tid: str,
        raw: bool,
    ) -> list[Cid]:
        """Write signed blocks (one request; callers group them to ≤ the server's limit)."""
        body = dag_cbor.encode({"b": list(blocks), "s": list(signatures)})
        params = [
            ("format", "raw" if raw else "dag-cbor"),
            ("owner", str(owner)),
            ("transaction", tid),
            ("writer", str(writer)),
        ]
        out = (await self.http.post("/api/v0/block/put/bulk", params, body)).decode()
        decoder = json.JSONDecoder()
        cids: list[Cid] = []
        i = 0
        while i < len(out):
            obj, i = decoder.raw_decode(out, i)
            cids.append(Cid.parse(obj["Hash"]))
        if len(cids) != len(blocks):
            raise RemoteError(200, f"server returned {len(cids)} hashes for {len(blocks)} blocks")
        return cids

    async def get_block(self, owner: PublicKeyHash, cid: Cid, bat: BatWithId | None = None) -> bytes | None:
        """A block (hash-verified here), or None if the server does not have it."""
        if cid.is_identity:
            return cid.digest
        params = [("arg", str(cid)), ("owner", str(owner))]
        if bat is not None:
            params.append(("bat", bat.encode()))
        data = await self.http.fetch("/api/v0/block/get", params, cid.verify, MAX_BLOCK_RESPONSE)
        return data or None

    async def get_blocks(
        self, owner: PublicKeyHash, wanted: Sequence[tuple[Cid, BatWithId | None]], parallel: int = 4
    ) -> list[bytes | None]:
        """Several blocks (each hash-verified here; None for one the server lacks), in order: `parallel`
        requests in flight, each run of consecutive blocks fetched by one worker (see `fetch_many`)."""
        out: list[bytes | None] = [None] * len(wanted)
        remote = [i for i, (cid, _) in enumerate(wanted) if not cid.is_identity]
        for i, (cid, _) in enumerate(wanted):
            if cid.is_identity:
                out[i] = cid.digest
        owner_text = str(owner)

        def params(cid: Cid, bat: BatWithId | None) -> list[tuple[str, str]]:
            p = [("arg", str(cid)), ("owner", owner_text)]
            if bat is not None:
                p.append(("bat", bat.encode()))
            return p

        async def run(indices: list[int]) -> None:
            got = await self.http.fetch_many(
                "/api/v0/block/get",
                [params(*wanted[i]) for i in indices],
                [wanted[i][0].verify for i in indices],
                MAX_BLOCK_RESPONSE,
            )
            for i, data in zip(indices, got, strict=True):
                out[i] = data or None

        if not remote:
            return out
        size = -(-len(remote) // max(1, min(parallel, len(remote))))
        async with task_group() as nursery:  # a failure surfaces as itself (HashMismatch, RemoteError)
            for lo in range(0, len(remote), size):
                nursery.start_soon(run, remote[lo : lo + size])
        return out

    async def champ_lookup(
        self, owner: PublicKeyHash, root: Cid, caps: Sequence[tuple[bytes, BatWithId | None]]
    ) -> list[bytes]:
        """Blocks of CHAMP lookups (`champ/get/bulk`); callers verify them with `champ.verify_paths`."""
        encoded = [{"m": k} if b is None else {"m": k, "b": b.to_cbor()} for k, b in caps]
        # base16 rather than Java's base58: a Peergos server decodes any multibase (`Multibase.decode`),
        # and hex is one C call both ways where base58 cost ~1 ms of client CPU per request (Python's
        # base32 is no faster); the query is ~4.5 KB instead of ~3 KB
        caps_text = multibase.encode(dag_cbor.encode(encoded), "base16")
        params = [("arg", str(root)), ("owner", str(owner)), ("caps", caps_text)]
        # `fetch` (the DirectPool when there is one): no httpx URL parsing of the ~2 KB query
        data = await self.http.fetch("/api/v0/champ/get/bulk", params, _no_check, MAX_CHAMP_RESPONSE)
        return _block_list(data)


def _no_check(_data: bytes) -> None:
    """Answers checked by their caller (`champ/get/bulk` blocks are verified against the tree)."""


def _block_list(data: bytes) -> list[bytes]:
    value = dag_cbor.decode(data)
    if type(value) is not list or not all(type(b) is bytes for b in value):
        raise DecodeError("champ/get/bulk: expected a CBOR list of byte strings")
    return value


class HttpMutablePointers:
    """Mutable pointers (`/peergos/v0/mutable/...`) of a Peergos server."""

    def __init__(self, http: PeergosHttp) -> None:
        self.http = http

    async def get_pointer(self, owner: PublicKeyHash, writer: PublicKeyHash) -> bytes | None:
        """The signed pointer, unverified (callers verify it against the writer key)."""
        out = await self.http.post(
            "/peergos/v0/mutable/getPointer", [("owner", str(owner)), ("writer", str(writer))]
        )
        return out or None

    async def set_pointer(self, owner: PublicKeyHash, writer: PublicKeyHash, signed: bytes) -> bool:
        """Commit one signed pointer update."""
        out = await self.http.post(
            "/peergos/v0/mutable/setPointer", [("owner", str(owner)), ("writer", str(writer))], signed
        )
        return out == b"\x01"

    async def set_pointers(self, owner: PublicKeyHash, updates: Sequence[SignedPointerUpdate]) -> bool:
        """Commit several writers' pointers atomically."""
        body = MultiWriterCommit(tuple(updates)).serialize()
        return (
            await self.http.post("/peergos/v0/mutable/setPointers", [("owner", str(owner))], body) == b"\x01"
        )


class HttpSpace:
    """Usage and quota (`/peergos/v0/storage/...`)."""

    def __init__(self, http: PeergosHttp) -> None:
        self.http = http

    async def usage(self, owner: PublicKeyHash, signed_time: bytes) -> int:
        """Bytes the owner uses (auth: identity-signed time, 300 s window)."""
        out = await self.http.post(
            "/peergos/v0/storage/usage", [("owner", str(owner)), ("auth", signed_time.hex())]
        )
        return _cbor_int(out)

    async def quota(self, owner: PublicKeyHash, signed_time: bytes) -> int:
        """The owner's quota (auth: identity-signed time, 24 h window)."""
        out = await self.http.post(
            "/peergos/v0/storage/quota", [("owner", str(owner)), ("auth", signed_time.hex())]
        )
        return _cbor_int(out)


def _cbor_int(data: bytes) -> int:
    value = dag_cbor.decode(data)
    if type(value) is not int:
        raise DecodeError("expected a CBOR integer")
    return value


class HttpCoreNode:
    """The PKI API (`/peergos/v0/core/...`) of a server (its mirror answers lookups locally)."""

    def __init__(self, http: PeergosHttp) -> None:
        self.http = http

    async def get_chain(self, username: str) -> tuple[UserPublicKeyLink, ...]:
        """The claim chain of a name (empty if unclaimed)."""
        return decode_chain_response(
            await self.http.post(CORE + "getChain", body=UsernameRequest(username).encode())
        )

    async def get_public_key(self, username: str) -> PublicKeyHash | None:
        """The identity key hash that holds a name."""
        body = await self.http.post(CORE + "getPublicKey", body=UsernameRequest(username).encode())
        return GetPublicKeyResponse.decode(body).owner

    async def get_username(self, key: PublicKeyHash) -> str:
        """The name of an identity key."""
        body = await self.http.post(CORE + "getUsername", body=GetUsernameRequest(key).encode())
        return GetUsernameResponse.decode(body).username

    async def get_usernames(self, prefix: str = "") -> list[str]:
        """Names starting with a prefix."""
        body = await self.http.post(CORE + "getUsernamesGzip/" + prefix)
        if body[:2] != b"\x1f\x8b":  # the HTTP client already undid Content-Encoding: gzip
            body = gzip.compress(body)
        return decode_usernames_gzip(body)

    async def signup(self, req: SignupRequest) -> DifficultyResponse:
        """Create an account (atomic OpLog replay after the PKI accepts the claim)."""
        return DifficultyResponse.decode(await self.http.post(CORE + "signup", body=req.encode()))

    async def update_chain(self, req: UpdateChainRequest) -> DifficultyResponse:
        """Renew, re-home or re-key a name."""
        return DifficultyResponse.decode(await self.http.post(CORE + "updateChain", body=req.encode()))


class HttpAccount:
    """Login data and second factors (`/peergos/v0/login/...`)."""

    def __init__(self, http: PeergosHttp) -> None:
        self.http = http

    async def set_login(self, login: LoginData, auth: bytes) -> bool:
        """Store login data (auth: the identity's detached signature over it)."""
        out = await self.http.post(LOGIN + "setLogin", [("auth", auth.hex())], login.serialize())
        return out == b"\x01"

    async def get_login(
        self,
        username: str,
        reader: PublicSigningKey,
        auth: bytes,
        mfa: MultiFactorAuthResponse | None = None,
        mfa_types: str = "1,3",
    ) -> LoginResponse:
        """The encrypted login data, or a second-factor challenge."""
        params = [
            ("username", username),
            ("author", reader.serialize().hex()),
            ("auth", auth.hex()),
            ("mfaTypes", mfa_types),
        ]
        if mfa is not None:
            params.append(("mfa", mfa.serialize().hex()))
        return LoginResponse.deserialize(await self.http.post(LOGIN + "getLogin", params))

    async def _mfa_call(
        self, method: str, username: str, auth: bytes, extra: Sequence[tuple[str, str]] = ()
    ) -> bytes:
        return await self.http.post(LOGIN + method, [("username", username), ("auth", auth.hex()), *extra])

    async def list_mfa(self, username: str, auth: bytes) -> list[MultiFactorAuthMethod]:
        """Second factors (auth: identity-signed request for this path)."""
        items = dag_cbor.decode(await self._mfa_call("listMfa", username, auth))
        if type(items) is not list:
            raise DecodeError("listMfa: expected a CBOR list")
        return [MultiFactorAuthMethod.from_cbor(i) for i in items]

    async def add_totp(self, username: str, auth: bytes) -> TotpKey:
        """Create a TOTP factor (enable it with a code)."""
        return TotpKey.from_string((await self._mfa_call("addTotp", username, auth)).decode())

    async def enable_totp(self, username: str, credential_id: bytes, code: str, auth: bytes) -> bool:
        """Enable a TOTP factor."""
        out = await self._mfa_call(
            "enableTotp", username, auth, [("credid", credential_id.hex()), ("code", code)]
        )
        return dag_cbor.decode(out) is True

    async def gen_backup_codes(self, username: str, auth: bytes) -> BackupCodes:
        """Single-use backup codes."""
        return BackupCodes.deserialize(await self._mfa_call("genBackupCodes", username, auth))

    async def delete_mfa(self, username: str, credential_id: bytes, auth: bytes) -> bool:
        """Remove a factor."""
        out = await self._mfa_call("deleteMfa", username, auth, [("credid", credential_id.hex())])
        return dag_cbor.decode(out) is True
