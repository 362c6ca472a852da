"""yamux (nabu_py/p2p/yamux.py) over in-memory streams: framing per the spec, flow control that waits
instead of resetting, window growth, limits, misbehaving peers, keepalive, teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
from libp2p.peer.id import ID
from libp2p.stream_muxer.exceptions import (
    MuxedConnUnavailable,
    MuxedStreamEOF,
    MuxedStreamError,
    MuxedStreamReset,
)

from nabu_py.p2p.yamux import (
    FLAG_ACK,
    FLAG_FIN,
    FLAG_RST,
    FLAG_SYN,
    GO_AWAY_PROTOCOL_ERROR,
    INITIAL_WINDOW,
    TYPE_DATA,
    TYPE_GO_AWAY,
    TYPE_PING,
    TYPE_WINDOW_UPDATE,
    YamuxConfig,
    YamuxConnection,
)
from tests.helpers.p2p import FrameReader, MemorySecureConn, frame, memory_secure_pair

PEER = ID(b"\x00\x05hello")


@asynccontextmanager
async def pair(config: YamuxConfig | None = None) -> AsyncIterator[tuple[YamuxConnection, YamuxConnection]]:
    """Two started YamuxConnections talking to each other (dialer, listener)."""
    a_raw, b_raw = memory_secure_pair()
    a = YamuxConnection(a_raw, PEER, config=config)  # type: ignore[arg-type]
    b = YamuxConnection(b_raw, PEER, config=config)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(a.start)
        nursery.start_soon(b.start)
        await a.event_started.wait()
        await b.event_started.wait()
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()


@asynccontextmanager
async def raw_peer(
    config: YamuxConfig | None = None, *, we_dial: bool = True
) -> AsyncIterator[tuple[YamuxConnection, MemorySecureConn, FrameReader]]:
    """A started YamuxConnection and the raw byte stream of its peer (the test speaks frames by hand)."""
    ours, theirs = memory_secure_pair()
    if not we_dial:
        ours, theirs = theirs, ours
    conn = YamuxConnection(ours, PEER, config=config)  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.start)
        await conn.event_started.wait()
        try:
            yield conn, theirs, FrameReader(theirs)
        finally:
            await conn.close()


async def read_all(stream: object) -> bytes:
    out = bytearray()
    while True:
        try:
            out += await stream.read(1 << 20)  # type: ignore[attr-defined]
        except MuxedStreamEOF:
            return bytes(out)


async def test_open_accept_exchange_and_half_close() -> None:
    async with pair() as (a, b):
        s = await a.open_stream()
        await s.write(b"ping")
        t = await b.accept_stream()
        assert t.stream_id == s.stream_id == 1
        assert await t.read(100) == b"ping"
        await t.write(b"pong")
        assert await s.read(100) == b"pong"
        await s.close()  # half-close: t reads EOF, can still write
        with pytest.raises(MuxedStreamEOF):
            await t.read(10)
        await t.write(b"after")
        assert await s.read(100) == b"after"
        await t.close()
        with pytest.raises(MuxedStreamEOF):
            await s.read(10)
        assert a.stream_count == 0 and b.stream_count == 0


async def test_stream_ids_alternate_by_role() -> None:
    async with pair() as (a, b):
        ids_a = [(await a.open_stream()).stream_id for _ in range(3)]
        ids_b = [(await b.open_stream()).stream_id for _ in range(3)]
        assert ids_a == [1, 3, 5]
        assert ids_b == [2, 4, 6]


async def test_first_frame_is_data_with_syn_and_ack_rides_on_reply() -> None:
    async with raw_peer() as (conn, theirs, frames):
        s = await conn.open_stream()
        await s.write(b"hi")
        assert await frames.next() == (TYPE_DATA, FLAG_SYN, 1, 2, b"hi")
        # an inbound stream's ACK goes out with its first frame
        await theirs.write(frame(TYPE_DATA, FLAG_SYN, 2, 3, b"abc"))
        inbound = await conn.accept_stream()
        assert await inbound.read(10) == b"abc"
        await inbound.write(b"x")
        assert await frames.next() == (TYPE_DATA, FLAG_ACK, 2, 1, b"x")


async def test_read_before_write_sends_the_syn_alone() -> None:
    async with raw_peer() as (conn, theirs, frames):
        s = await conn.open_stream()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(s.read, 10)
            assert await frames.next() == (TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0, b"")
            await theirs.write(frame(TYPE_DATA, FLAG_ACK, 1, 2, b"ok"))


async def test_writer_waits_for_window_instead_of_resetting(autojump_clock: trio.testing.MockClock) -> None:
    """0.8.1's yamux reset the stream when its reader paused > 5 s; here the writer simply waits."""
    async with pair() as (a, b):
        s = await a.open_stream()
        payload = bytes(range(256)) * 4096  # 1 MiB: four times the initial window
        done = trio.Event()

        async def writer() -> None:
            await s.write(payload)
            await s.close()
            done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            t = await b.accept_stream()
            await trio.sleep(60)  # the reader pauses a minute (virtual time)
            assert not done.is_set()
            assert s._send_window == 0 and not s.is_reset
            assert t.buffered == INITIAL_WINDOW
            assert await read_all(t) == payload
        assert done.is_set()


async def test_window_grows_for_bulk_streams_but_not_for_idle_ones() -> None:
    config = YamuxConfig(max_window=4 * 1024 * 1024)
    async with pair(config) as (a, b):
        s = await a.open_stream()
        idle = await a.open_stream()
        await idle.write(b"x")
        async with trio.open_nursery() as nursery:

            async def writer() -> None:
                for _ in range(64):
                    await s.write(bytes(256 * 1024))
                await s.close()

            nursery.start_soon(writer)
            inbound = [await b.accept_stream(), await b.accept_stream()]
            bulk = next(t for t in inbound if t.stream_id == s.stream_id)
            assert len(await read_all(bulk)) == 64 * 256 * 1024
        assert s._send_window > INITIAL_WINDOW  # credit beyond the initial window was granted
        assert bulk._window == config.max_window
        quiet = next(t for t in inbound if t.stream_id == idle.stream_id)
        assert quiet._window == INITIAL_WINDOW


async def test_reset_reaches_the_other_side() -> None:
    async with pair() as (a, b):
        s = await a.open_stream()
        await s.write(b"data")
        t = await b.accept_stream()
        await t.reset()
        with pytest.raises(MuxedStreamReset):
            while True:
                await s.read(10)
        with pytest.raises(MuxedStreamReset):
            await s.write(b"more")
        with pytest.raises(MuxedStreamReset):
            await t.read(10)


async def test_stream_limit_rejects_excess_syn_with_rst() -> None:
    async with raw_peer(YamuxConfig(max_streams=2), we_dial=False) as (conn, theirs, frames):
        for sid in (1, 3, 5):
            await theirs.write(frame(TYPE_WINDOW_UPDATE, FLAG_SYN, sid, 0))
        assert await frames.next() == (TYPE_WINDOW_UPDATE, FLAG_RST, 5, 0, b"")
        assert conn.stream_count == 2
        assert (await conn.accept_stream()).stream_id == 1
        assert (await conn.accept_stream()).stream_id == 3


async def test_outbound_stream_limit() -> None:
    async with pair(YamuxConfig(max_streams=2)) as (a, _b):
        await a.open_stream()
        await a.open_stream()
        with pytest.raises(MuxedStreamError):
            await a.open_stream()


@pytest.mark.parametrize(
    "bad",
    [
        frame(TYPE_DATA, FLAG_SYN, 1, 0, version=1),  # unknown version
        frame(7, 0, 0, 0),  # unknown frame type
        frame(TYPE_WINDOW_UPDATE, FLAG_SYN, 2, 0),  # the listener's parity from the dialer
        frame(TYPE_DATA, FLAG_SYN, 1, INITIAL_WINDOW + 1, bytes(INITIAL_WINDOW + 1)),  # beyond the window
    ],
    ids=["version", "type", "parity", "window"],
)
async def test_protocol_violation_closes_the_connection_with_go_away(bad: bytes) -> None:
    async with raw_peer(we_dial=False) as (conn, theirs, frames):
        await theirs.write(bad)
        with trio.fail_after(5):
            await conn.event_closed.wait()
            ftype, _flags, sid, length, _ = await frames.next()
        assert (ftype, sid, length) == (TYPE_GO_AWAY, 0, GO_AWAY_PROTOCOL_ERROR)
        with pytest.raises(MuxedConnUnavailable):
            await conn.accept_stream()


async def test_duplicate_syn_is_a_protocol_error() -> None:
    async with raw_peer(we_dial=False) as (conn, theirs, _frames):
        await theirs.write(
            frame(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0) + frame(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0)
        )
        with trio.fail_after(5):
            await conn.event_closed.wait()


async def test_ping_is_answered_with_the_same_opaque_value() -> None:
    async with raw_peer() as (_conn, theirs, frames):
        await theirs.write(frame(TYPE_PING, FLAG_SYN, 0, 0xDEADBEEF))
        assert await frames.next() == (TYPE_PING, FLAG_ACK, 0, 0xDEADBEEF, b"")


async def test_keepalive_closes_a_silent_connection(autojump_clock: trio.testing.MockClock) -> None:
    config = YamuxConfig(keepalive_interval=30.0, keepalive_timeout=10.0)
    async with raw_peer(config) as (conn, _theirs, frames):
        ftype, flags, _sid, _nonce, _ = await frames.next()  # our ping after 30 s of silence
        assert (ftype, flags) == (TYPE_PING, FLAG_SYN)
        with trio.fail_after(11):
            await conn.event_closed.wait()


async def test_keepalive_is_satisfied_by_pongs(autojump_clock: trio.testing.MockClock) -> None:
    config = YamuxConfig(keepalive_interval=30.0, keepalive_timeout=10.0)
    async with raw_peer(config) as (conn, theirs, frames):
        for _ in range(3):
            ftype, flags, _sid, nonce, _ = await frames.next()
            assert (ftype, flags) == (TYPE_PING, FLAG_SYN)
            await theirs.write(frame(TYPE_PING, FLAG_ACK, 0, nonce))
        assert not conn.is_closed


async def test_remote_go_away_stops_new_streams() -> None:
    async with raw_peer() as (conn, theirs, _frames):
        await theirs.write(frame(TYPE_GO_AWAY, 0, 0, 0))
        await trio.testing.wait_all_tasks_blocked()
        assert conn._remote_goaway
        with pytest.raises(MuxedStreamError):
            await conn.open_stream()


async def test_close_sends_go_away_resets_streams_and_stops_accepting() -> None:
    async with raw_peer() as (conn, theirs, frames):
        await theirs.write(frame(TYPE_DATA, FLAG_SYN, 2, 1, b"x"))
        inbound = await conn.accept_stream()
        await conn.close()
        assert conn.is_closed
        assert await frames.next() == (TYPE_GO_AWAY, 0, 0, 0, b"")
        assert inbound.is_reset
        with pytest.raises(MuxedConnUnavailable):
            await conn.accept_stream()
        with pytest.raises(MuxedStreamError):
            await conn.open_stream()


async def test_peer_disconnect_resets_open_streams_but_keeps_finished_data() -> None:
    async with raw_peer(we_dial=False) as (conn, theirs, _frames):
        await theirs.write(
            frame(TYPE_DATA, FLAG_SYN | FLAG_FIN, 1, 4, b"done") + frame(TYPE_DATA, FLAG_SYN, 3, 1, b"x")
        )
        finished, open_ = await conn.accept_stream(), await conn.accept_stream()
        await theirs.close()
        with trio.fail_after(5):
            await conn.event_closed.wait()
        assert await read_all(finished) == b"done"
        with pytest.raises(MuxedStreamReset):
            while True:
                await open_.read(10)


async def test_deadline_fails_a_stuck_read(autojump_clock: trio.testing.MockClock) -> None:
    async with pair() as (a, b):
        s = await a.open_stream()
        await s.write(b"x")
        t = await b.accept_stream()
        assert await t.read(1) == b"x"
        t.set_deadline(5)
        with pytest.raises(MuxedStreamError):
            await t.read(1)


async def test_on_close_hook_runs_when_the_peer_goes_away() -> None:
    called = trio.Event()

    async def hook() -> None:
        called.set()

    async with raw_peer() as (conn, theirs, _frames):
        conn.on_close = hook
        await theirs.close()
        with trio.fail_after(5):
            await called.wait()
