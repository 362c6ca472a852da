"""yamux `/yamux/1.0.0` stream multiplexer (libp2p specs, yamux/README.md = hashicorp's spec), replacing
py-libp2p 0.8.1's `Yamux`.

Framing: 12-byte header `version(0) type flags(u16) stream_id(u32) length(u32)`, big endian; types DATA,
WINDOW_UPDATE, PING, GO_AWAY; flags SYN, ACK, FIN, RST. The dialer uses odd stream ids, the listener even.

Flow control: every stream starts with a 256 KiB window in each direction and the receiver grants more
with WINDOW_UPDATE deltas. A writer whose window is exhausted *waits* on an event that the next update
sets -- it never polls and never gives up (0.8.1 polled every 10 ms and reset the stream after 5 s, so a
reader pausing 5 s lost its stream: spec/py-libp2p.md §7). The receiver grants credit back only as the
application consumes data, in updates of at least half the current window (0.8.1 sent one per read), and
doubles the window on each update up to `YamuxConfig.max_window` once a stream shows it moves bulk data;
a stream nobody reads therefore buffers at most 256 KiB.

Bounds and misbehaviour: at most `max_streams` open streams per connection (a SYN beyond that, or
beyond the accept backlog, is answered with RST); a DATA frame larger than the credit granted, a SYN
with the wrong parity or a reused id, or an unknown frame type is a protocol error: GO_AWAY(1) and the
connection closes. Control frames the reader must answer (pong, RST) go through a bounded queue served by
a writer task, so the reader never blocks on the socket (a flood of pings closes the connection).

Performance: the reader pulls up to 1 MiB per call from the secure channel and hands payload slices to
streams as they arrive (no per-frame reassembly, no per-read window update, no debug f-strings); writers
send header and payload of a frame in one `write`. ACKs for inbound streams ride on the first frame the
stream sends (allowed by the spec: "MAY delay acknowledging new streams").

Liveness: with `keepalive_interval` set, a PING goes out when the connection has been idle that long and
the connection closes if no pong arrives within `keepalive_timeout`.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final

import trio
from libp2p.abc import IMuxedConn, IMuxedStream, ISecureConn
from libp2p.connection_types import ConnectionType
from libp2p.peer.id import ID
from libp2p.stream_muxer.exceptions import (
    MuxedConnUnavailable,
    MuxedStreamClosed,
    MuxedStreamEOF,
    MuxedStreamError,
    MuxedStreamReset,
)
from multiaddr import Multiaddr

__all__ = ["PROTOCOL_ID", "YamuxConfig", "YamuxConnection", "YamuxStream"]

PROTOCOL_ID: Final = "/yamux/1.0.0"

_HEADER: Final = struct.Struct(">BBHII")
HEADER_SIZE: Final = 12
TYPE_DATA: Final = 0
TYPE_WINDOW_UPDATE: Final = 1
TYPE_PING: Final = 2
TYPE_GO_AWAY: Final = 3
FLAG_SYN: Final = 1
FLAG_ACK: Final = 2
FLAG_FIN: Final = 4
FLAG_RST: Final = 8
GO_AWAY_NORMAL: Final = 0
GO_AWAY_PROTOCOL_ERROR: Final = 1
GO_AWAY_INTERNAL_ERROR: Final = 2
INITIAL_WINDOW: Final = 256 * 1024
MAX_CONTROL_QUEUE: Final = 256

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class YamuxConfig:
    """Tunables; every one bounds memory or time a peer can make us spend."""

    max_window: int = 16 * 1024 * 1024
    """Largest receive window granted to one stream (bytes buffered per stream is at most this)."""
    max_streams: int = 512
    """Open streams per connection, both directions together."""
    accept_backlog: int = 64
    """Inbound streams waiting for the application to accept them."""
    max_frame: int = 256 * 1024
    """Largest DATA payload we send in one frame (fairness between streams)."""
    read_size: int = 1024 * 1024
    """Bytes requested from the secure channel per read."""
    keepalive_interval: float | None = 30.0
    """Idle time after which a PING checks the peer is alive (None: never)."""
    keepalive_timeout: float = 30.0
    """How long to wait for the pong before declaring the connection dead."""
    goaway_timeout: float = 1.0
    """How long close() tries to deliver GO_AWAY before dropping the connection."""

    def __post_init__(self) -> None:
        if self.max_window < INITIAL_WINDOW:
            raise ValueError("max_window must be at least the initial 256 KiB window")
        if self.max_streams < 1 or self.accept_backlog < 1 or self.max_frame < 1 or self.read_size < 1:
            raise ValueError("yamux limits must be positive")


class _ProtocolError(Exception):
    """The peer violated the yamux spec; the connection is closed with GO_AWAY(1)."""


class YamuxStream(IMuxedStream):
    """One yamux stream: `read`, `write`, `close` (half-close, FIN), `reset` (RST)."""

    def __init__(self, conn: YamuxConnection, stream_id: int, *, inbound: bool) -> None:
        self.muxed_conn = conn
        self._conn = conn
        self.stream_id = stream_id
        self.inbound = inbound
        # receive side
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._readable = trio.Event()
        self._recv_credit = INITIAL_WINDOW  # bytes the peer may still send
        self._window = INITIAL_WINDOW  # current target window we grant
        self._consumed = 0  # read by the application since our last window update
        self._total_consumed = 0
        self._fin_received = False
        # send side
        self._send_window = INITIAL_WINDOW
        self._writable = trio.Event()
        self._write_lock = trio.Lock()
        self._ack_pending = inbound
        self._syn_pending = not inbound  # outbound streams announce themselves with their first frame
        self._fin_sent = False
        self._reset = False
        self._deadline = float("inf")

    # ---- receive side (called by the connection's reader) ---------------------------------------------
    def _deliver(self, data: bytes) -> None:
        self._recv_credit -= len(data)
        if self._reset:
            return
        self._chunks.append(data)
        self._buffered += len(data)
        self._readable.set()

    def _on_fin(self) -> None:
        self._fin_received = True
        self._readable.set()
        self._conn._maybe_forget(self)

    def _on_reset(self) -> None:
        if self._reset:
            return
        self._reset = True
        self._chunks.clear()
        self._buffered = 0
        self._readable.set()
        self._writable.set()
        self._conn._forget(self)

    def _on_window_update(self, delta: int) -> None:
        self._send_window += delta
        if self._send_window > 0:
            self._writable.set()

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read."""
        return self._buffered

    @property
    def remote_closed(self) -> bool:
        """True once the peer sent FIN (its data may still be buffered)."""
        return self._fin_received

    @property
    def is_reset(self) -> bool:
        """True once either side reset the stream (or the connection died first)."""
        return self._reset

    # ---- application API --------------------------------------------------------------------------------
    async def read(self, n: int | None = None) -> bytes:
        """Up to `n` buffered bytes (everything buffered if None or negative), waiting if none.

        Raises MuxedStreamEOF after the peer's FIN once the buffer is empty, MuxedStreamReset after a reset.
        """
        if n == 0:
            return b""
        if self._syn_pending:
            await self._announce()
        while not self._buffered:
            if self._reset:
                raise MuxedStreamReset(f"yamux stream {self.stream_id} was reset")
            if self._fin_received:
                raise MuxedStreamEOF(f"yamux stream {self.stream_id} ended")
            self._readable = trio.Event()
            await self._wait(self._readable)
        out = self._take(n)
        self._consumed += len(out)
        self._total_consumed += len(out)
        if self._consumed >= self._window // 2 and not self._fin_received and not self._reset:
            await self._grant_credit()
        return out

    def _take(self, n: int | None) -> bytes:
        chunks = self._chunks
        if n is None or n < 0 or n >= self._buffered:
            out = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self._buffered = 0
            return out
        parts: list[bytes] = []
        need = n
        while need:
            head = chunks[0]
            if len(head) <= need:
                parts.append(chunks.popleft())
                need -= len(head)
            else:
                parts.append(head[:need])
                chunks[0] = head[need:]
                need = 0
        self._buffered -= n
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _grant_credit(self) -> None:
        grow = 0
        if self._total_consumed >= INITIAL_WINDOW and self._window < self._conn.config.max_window:
            new_window = min(self._window * 2, self._conn.config.max_window)
            grow = new_window - self._window
            self._window = new_window
        delta = self._consumed + grow
        self._consumed = 0
        self._recv_credit += delta
        try:
            await self._conn._send_frame(TYPE_WINDOW_UPDATE, self._take_ack_flag(), self.stream_id, delta)
        except MuxedConnUnavailable:
            pass  # the connection is gone; the next read reports it

    def _take_ack_flag(self) -> int:
        """SYN for the first frame of an outbound stream, ACK for the first of an inbound one."""
        if self._syn_pending:
            self._syn_pending = False
            return FLAG_SYN
        if self._ack_pending:
            self._ack_pending = False
            return FLAG_ACK
        return 0

    async def _announce(self) -> None:
        """Send the SYN on its own (the application reads before writing anything)."""
        try:
            await self._conn._send_frame(TYPE_WINDOW_UPDATE, self._take_ack_flag(), self.stream_id, 0)
        except MuxedConnUnavailable as e:
            raise MuxedStreamReset(f"yamux connection closed: {e}") from e

    async def write(self, data: bytes) -> None:
        """Send all of `data`, waiting for window credit as long as it takes (never resetting)."""
        view = memoryview(data)
        conn = self._conn
        async with self._write_lock:
            max_frame = conn.config.max_frame
            while view:
                if self._reset or conn._closing:
                    raise MuxedStreamReset(f"yamux stream {self.stream_id} was reset")
                if self._fin_sent:
                    raise MuxedStreamClosed(f"yamux stream {self.stream_id} is closed for writing")
                if self._send_window <= 0:
                    self._writable = trio.Event()
                    await self._wait(self._writable)
                    continue
                n = min(len(view), self._send_window, max_frame)
                self._send_window -= n
                try:
                    await conn._send_frame(TYPE_DATA, self._take_ack_flag(), self.stream_id, n, view[:n])
                except MuxedConnUnavailable as e:
                    raise MuxedStreamReset(f"yamux connection closed: {e}") from e
                view = view[n:]

    async def _wait(self, event: trio.Event) -> None:
        """Wait for `event`, honouring `set_deadline` (MuxedStreamError when it passes)."""
        if self._deadline == float("inf"):
            await event.wait()
            return
        with trio.move_on_at(self._deadline) as scope:
            await event.wait()
        if scope.cancelled_caught:
            raise MuxedStreamError(f"yamux stream {self.stream_id} deadline exceeded")

    async def close(self) -> None:
        """Half-close: send FIN (reads continue until the peer's FIN). Idempotent."""
        async with self._write_lock:
            if self._fin_sent or self._reset:
                return
            self._fin_sent = True
            try:
                await self._conn._send_frame(
                    TYPE_WINDOW_UPDATE, self._take_ack_flag() | FLAG_FIN, self.stream_id, 0
                )
            except MuxedConnUnavailable:
                self._on_reset()
                return
        self._conn._maybe_forget(self)

    close_write = close

    async def reset(self) -> None:
        """Abort both directions (RST); buffered data is dropped. Idempotent."""
        if self._reset:
            return
        announced = not self._syn_pending
        self._on_reset()
        if announced:  # a stream the peer never heard of needs no RST
            self._conn._queue_control(TYPE_WINDOW_UPDATE, FLAG_RST, self.stream_id, 0)

    def set_deadline(self, ttl: int) -> None:
        """Fail reads and writes that are still running `ttl` seconds from now (MuxedStreamError)."""
        if ttl < 0:
            raise ValueError("deadline ttl must be non-negative")
        self._deadline = trio.current_time() + ttl

    def get_remote_address(self) -> tuple[str, int] | None:
        return self._conn.get_remote_address()

    async def __aenter__(self) -> YamuxStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()


class YamuxConnection(IMuxedConn):
    """A yamux session over a secure connection, pluggable into py-libp2p's swarm as an `IMuxedConn`."""

    def __init__(
        self,
        secured_conn: ISecureConn,
        peer_id: ID,
        is_initiator: bool | None = None,
        on_close: Callable[[], Awaitable[Any]] | None = None,
        config: YamuxConfig | None = None,
    ) -> None:
        self.secured_conn = secured_conn
        self.peer_id = peer_id
        self.config = config or YamuxConfig()
        self.on_close = on_close
        self._initiator = secured_conn.is_initiator if is_initiator is None else is_initiator
        self._next_id = 1 if self._initiator else 2
        self._streams: dict[int, YamuxStream] = {}
        self._accept_send, self._accept_recv = trio.open_memory_channel[YamuxStream](
            self.config.accept_backlog
        )
        self._write_lock = trio.Lock()
        self._control: deque[bytes] = deque()
        self._control_ready = trio.Event()
        self._pong = trio.Event()
        self._ping_nonce = 0
        self._last_rx = trio.current_time()
        self._remote_goaway = False
        self._closing = False
        self._nursery: trio.Nursery | None = None
        self._started = False
        self.event_started = trio.Event()
        self.event_closed = trio.Event()
        self._close_reason: str = ""

    # ---- IMuxedConn -------------------------------------------------------------------------------------
    @property
    def is_initiator(self) -> bool:
        return self._initiator

    @property
    def is_established(self) -> bool:
        return self.event_started.is_set() and not self._closing

    @property
    def is_closed(self) -> bool:
        return self.event_closed.is_set()

    @property
    def stream_count(self) -> int:
        """Streams currently open in either direction."""
        return len(self._streams)

    def get_transport_addresses(self) -> list[Multiaddr]:
        return self.secured_conn.get_transport_addresses()

    def get_connection_type(self) -> ConnectionType:
        return self.secured_conn.get_connection_type()

    def get_remote_address(self) -> tuple[str, int] | None:
        return self.secured_conn.get_remote_address()

    async def start(self) -> None:
        """Run the session (reader, control writer, keepalive) until it closes; then clean up."""
        if self._started:
            return
        self._started = True
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._closing:
                    nursery.cancel_scope.cancel()
                nursery.start_soon(self._reader)
                nursery.start_soon(self._control_writer)
                if self.config.keepalive_interval is not None:
                    nursery.start_soon(self._keepalive, self.config.keepalive_interval)
                self.event_started.set()
        finally:
            self.event_started.set()
            with trio.CancelScope(shield=True):
                await self._finalize()

    async def close(self) -> None:
        """Say GO_AWAY (bounded wait), tear the session down and close the secure channel. Idempotent."""
        if self._closing:
            with trio.CancelScope(shield=True):
                if self._started:
                    await self.event_closed.wait()
                else:
                    await self._finalize()
            return
        self._closing = True
        with trio.move_on_after(self.config.goaway_timeout) as scope:
            scope.shield = True
            try:
                await self._send_frame(TYPE_GO_AWAY, 0, 0, GO_AWAY_NORMAL, _force=True)
            except MuxedConnUnavailable:
                pass
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        if self._started:
            with trio.CancelScope(shield=True):
                await self.event_closed.wait()
        else:
            with trio.CancelScope(shield=True):
                await self._finalize()

    async def open_stream(self) -> YamuxStream:
        """Open an outbound stream. Its SYN rides on the first frame it sends (usually the first data,
        which saves a frame per stream); a read before any write sends the SYN by itself."""
        if self._closing or self.is_closed:
            raise MuxedStreamError("yamux connection is closed")
        if self._remote_goaway:
            raise MuxedStreamError("peer sent GO_AWAY; no new streams")
        if len(self._streams) >= self.config.max_streams:
            raise MuxedStreamError(f"too many streams on this connection ({self.config.max_streams})")
        sid = self._next_id
        if sid > 0xFFFFFFFF:
            raise MuxedStreamError("yamux stream ids exhausted")
        self._next_id += 2
        stream = YamuxStream(self, sid, inbound=False)
        self._streams[sid] = stream
        await trio.lowlevel.checkpoint()
        return stream

    async def accept_stream(self) -> YamuxStream:
        """The next inbound stream; MuxedConnUnavailable once the connection closed."""
        try:
            return await self._accept_recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise MuxedConnUnavailable("yamux connection closed") from None

    # ---- stream bookkeeping -----------------------------------------------------------------------------
    def _forget(self, stream: YamuxStream) -> None:
        if self._streams.get(stream.stream_id) is stream:
            del self._streams[stream.stream_id]

    def _maybe_forget(self, stream: YamuxStream) -> None:
        if stream._fin_sent and stream._fin_received:
            self._forget(stream)

    # ---- writing ----------------------------------------------------------------------------------------
    async def _send_frame(
        self,
        ftype: int,
        flags: int,
        sid: int,
        length: int,
        payload: memoryview | bytes = b"",
        *,
        _force: bool = False,
    ) -> None:
        if (self._closing and not _force) or self.event_closed.is_set():
            raise MuxedConnUnavailable("yamux connection closed")
        header = _HEADER.pack(0, ftype, flags, sid, length)
        frame = header + payload if payload else header
        async with self._write_lock:
            try:
                await self.secured_conn.write(frame)
            except (trio.Cancelled, MuxedConnUnavailable):
                raise
            except Exception as e:
                self._abort(f"write failed: {type(e).__name__}: {e}")
                raise MuxedConnUnavailable(f"yamux connection lost: {e}") from e

    def _queue_control(self, ftype: int, flags: int, sid: int, length: int) -> None:
        if self._closing or self.event_closed.is_set():
            return
        if len(self._control) >= MAX_CONTROL_QUEUE:
            self._abort("control frame queue overflow (ping flood?)", GO_AWAY_PROTOCOL_ERROR)
            return
        self._control.append(_HEADER.pack(0, ftype, flags, sid, length))
        self._control_ready.set()

    async def _control_writer(self) -> None:
        while True:
            await self._control_ready.wait()
            self._control_ready = trio.Event()
            while self._control:
                frames = b"".join(self._control)
                self._control.clear()
                async with self._write_lock:
                    try:
                        await self.secured_conn.write(frames)
                    except Exception as e:
                        self._abort(f"write failed: {type(e).__name__}: {e}")
                        return

    # ---- reading ----------------------------------------------------------------------------------------
    async def _reader(self) -> None:
        try:
            await self._read_frames()
        except _ProtocolError as e:
            logger.debug("yamux protocol error from %s: %s", self.peer_id, e)
            self._abort(f"protocol error: {e}", GO_AWAY_PROTOCOL_ERROR)
        except trio.Cancelled:
            raise
        except Exception as e:
            self._abort(f"read failed: {type(e).__name__}: {e}")
        else:
            self._abort("peer closed the connection")

    async def _read_frames(self) -> None:
        # read(None): "whatever is available" for both TLS (up to 1 MiB) and py-libp2p's Noise session,
        # whose read(n) waits for exactly n bytes.
        secured_read = self.secured_conn.read

        async def read(_size: int) -> bytes:
            return await secured_read(None)

        size = self.config.read_size
        data = b""
        off = 0
        unpack = _HEADER.unpack_from
        while True:
            # -- header
            if len(data) - off < HEADER_SIZE:
                rest = data[off:]
                while len(rest) < HEADER_SIZE:
                    chunk = await read(size)
                    if not chunk:
                        if rest:
                            raise _ProtocolError("connection ended inside a frame header")
                        return
                    self._last_rx = trio.current_time()
                    rest = rest + chunk if rest else chunk
                data, off = rest, 0
            version, ftype, flags, sid, length = unpack(data, off)
            off += HEADER_SIZE
            if version != 0:
                raise _ProtocolError(f"unsupported yamux version {version}")
            if ftype == TYPE_DATA:
                stream = self._stream_for(sid, flags)
                if stream is not None and length > stream._recv_credit:
                    raise _ProtocolError(
                        f"stream {sid} sent {length} bytes with only {stream._recv_credit} of window"
                    )
                remaining = length
                while remaining:
                    if off == len(data):
                        data = await read(size)
                        off = 0
                        if not data:
                            raise _ProtocolError("connection ended inside a data frame")
                        self._last_rx = trio.current_time()
                    take = min(remaining, len(data) - off)
                    if stream is not None:
                        chunk = data if (off == 0 and take == len(data)) else data[off : off + take]
                        stream._deliver(chunk)
                    off += take
                    remaining -= take
                if stream is not None:
                    self._end_flags(stream, flags)
            elif ftype == TYPE_WINDOW_UPDATE:
                stream = self._stream_for(sid, flags)
                if stream is not None:
                    if length:
                        stream._on_window_update(length)
                    self._end_flags(stream, flags)
            elif ftype == TYPE_PING:
                if flags & FLAG_SYN:
                    self._queue_control(TYPE_PING, FLAG_ACK, 0, length)
                elif flags & FLAG_ACK and length == self._ping_nonce:
                    self._pong.set()
            elif ftype == TYPE_GO_AWAY:
                self._remote_goaway = True
                if length != GO_AWAY_NORMAL:
                    logger.debug("%s sent GO_AWAY with error code %d", self.peer_id, length)
            else:
                raise _ProtocolError(f"unknown frame type {ftype}")

    def _stream_for(self, sid: int, flags: int) -> YamuxStream | None:
        stream = self._streams.get(sid)
        if flags & FLAG_SYN:
            if stream is not None or sid == 0:
                raise _ProtocolError(f"SYN for stream id {sid} already in use")
            if (sid % 2 == 1) == self._initiator:
                raise _ProtocolError(f"SYN with stream id {sid} of the wrong parity")
            if self._closing or len(self._streams) >= self.config.max_streams:
                self._queue_control(TYPE_WINDOW_UPDATE, FLAG_RST, sid, 0)
                return None
            stream = YamuxStream(self, sid, inbound=True)
            try:
                self._accept_send.send_nowait(stream)
            except trio.WouldBlock:
                self._queue_control(TYPE_WINDOW_UPDATE, FLAG_RST, sid, 0)
                return None
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return None
            self._streams[sid] = stream
        return stream

    @staticmethod
    def _end_flags(stream: YamuxStream, flags: int) -> None:
        if flags & FLAG_RST:
            stream._on_reset()
        elif flags & FLAG_FIN:
            stream._on_fin()

    async def _keepalive(self, interval: float) -> None:
        while True:
            idle = trio.current_time() - self._last_rx
            if idle < interval:
                await trio.sleep(interval - idle)
                continue
            self._ping_nonce = (self._ping_nonce + 1) & 0xFFFFFFFF
            self._pong = trio.Event()
            self._queue_control(TYPE_PING, FLAG_SYN, 0, self._ping_nonce)
            with trio.move_on_after(self.config.keepalive_timeout):
                await self._pong.wait()
                self._last_rx = trio.current_time()
                continue
            self._abort(f"no pong within {self.config.keepalive_timeout} s")
            return

    # ---- teardown ---------------------------------------------------------------------------------------
    def _abort(self, reason: str, goaway: int | None = None) -> None:
        """Stop the session from inside (reader or writer failure); cleanup runs in `start`."""
        if not self._close_reason:
            self._close_reason = reason
            logger.debug("yamux connection to %s closing: %s", self.peer_id, reason)
        if goaway is not None and not self._closing:
            self._control.append(_HEADER.pack(0, TYPE_GO_AWAY, 0, 0, goaway))
        self._closing = True
        if self._nursery is not None:
            if goaway is not None:
                self._nursery.start_soon(self._flush_goaway_then_cancel)
            else:
                self._nursery.cancel_scope.cancel()

    async def _flush_goaway_then_cancel(self) -> None:
        assert self._nursery is not None
        with trio.move_on_after(self.config.goaway_timeout):
            frames = b"".join(self._control)
            self._control.clear()
            async with self._write_lock:
                try:
                    await self.secured_conn.write(frames)
                except Exception as e:
                    logger.debug("GO_AWAY to %s not delivered: %s", self.peer_id, e)
        self._nursery.cancel_scope.cancel()

    async def _finalize(self) -> None:
        if self.event_closed.is_set():
            return
        self._closing = True
        for stream in list(self._streams.values()):
            if not stream._fin_received or stream._buffered == 0:
                stream._on_reset()
            else:
                stream._writable.set()
        self._streams.clear()
        self._accept_send.close()
        while True:  # streams nobody accepted yet die with the connection
            try:
                self._accept_recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        with trio.move_on_after(2.0):
            try:
                await self.secured_conn.close()
            except Exception as e:
                logger.debug("closing the secure channel to %s: %s", self.peer_id, e)
        self.event_closed.set()
        if self.on_close is not None:
            with trio.move_on_after(5.0):
                try:
                    await self.on_close()
                except Exception as e:
                    logger.debug("on_close hook for %s failed: %s", self.peer_id, e)
