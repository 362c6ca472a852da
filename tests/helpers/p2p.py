"""In-memory stand-ins for the layers under yamux and multistream (unit tests only).

`memory_secure_pair()` gives two connected objects with the part of py-libp2p's ISecureConn that the
yamux connection uses (`read(None)` = whatever is available, `write`, `close`, `is_initiator`, addresses),
over trio's in-memory streams. `raw_yamux_peer()` pairs a real `YamuxConnection` with a bare byte stream,
so a test can speak yamux frame by frame (and misbehave).
"""

from __future__ import annotations

import struct
from typing import Any

import trio
import trio.testing

HEADER = struct.Struct(">BBHII")


class MemorySecureConn:
    """Duck-typed ISecureConn over a trio in-memory stream."""

    def __init__(self, stream: trio.abc.Stream, is_initiator: bool) -> None:
        self.stream = stream
        self.is_initiator = is_initiator
        self.closed = False

    async def read(self, n: int | None = None) -> bytes:
        try:
            return bytes(await self.stream.receive_some(n or 1 << 20))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return b""

    async def write(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def close(self) -> None:
        self.closed = True
        await self.stream.aclose()

    def get_remote_address(self) -> tuple[str, int]:
        return ("127.0.0.1", 1)

    def get_transport_addresses(self) -> list[Any]:
        return []

    def get_connection_type(self) -> Any:
        from libp2p.connection_types import ConnectionType

        return ConnectionType.DIRECT


def memory_secure_pair(lockstep: bool = False) -> tuple[MemorySecureConn, MemorySecureConn]:
    """(initiator side, responder side)."""
    a, b = trio.testing.lockstep_stream_pair() if lockstep else trio.testing.memory_stream_pair()
    return MemorySecureConn(a, True), MemorySecureConn(b, False)


def frame(ftype: int, flags: int, sid: int, length: int, payload: bytes = b"", version: int = 0) -> bytes:
    """One raw yamux frame."""
    return HEADER.pack(version, ftype, flags, sid, length) + payload


class FrameReader:
    """Parses the frames a YamuxConnection writes to a raw in-memory stream."""

    def __init__(self, conn: MemorySecureConn) -> None:
        self.conn = conn
        self.buf = b""

    async def next(self) -> tuple[int, int, int, int, bytes]:
        """(type, flags, stream id, length, payload); raises EOFError at the end of the stream."""
        await self._fill(12)
        _v, ftype, flags, sid, length = HEADER.unpack(self.buf[:12])
        self.buf = self.buf[12:]
        payload = b""
        if ftype == 0 and length:
            await self._fill(length)
            payload, self.buf = self.buf[:length], self.buf[length:]
        return ftype, flags, sid, length, payload

    async def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            data = await self.conn.read(None)
            if not data:
                raise EOFError("stream ended")
            self.buf += data


async def wait_for(predicate: Any, within: float = 5.0, interval: float = 0.01) -> None:
    """Poll `predicate()` until it is true; TooSlowError after `within` seconds."""
    with trio.fail_after(within):
        for _ in range(int(within / interval) + 2):
            if predicate():
                return
            await trio.sleep(interval)
    raise trio.TooSlowError


def count_trio_tasks() -> int:
    """Live trio tasks of the current run (walks the task tree from the root)."""
    stack = [trio.lowlevel.current_root_task()]
    n = 0
    while stack:
        task = stack.pop()
        n += 1
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return n


def open_fds() -> int:
    """File descriptors open in this process (Linux)."""
    import os

    return len(os.listdir("/proc/self/fd"))
