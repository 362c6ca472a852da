"""multistream-select 1.0 (libp2p specs, connections/README.md "multistream-select"), bounded and pipelined.

Messages are `uvarint(len(text) + 1) || text || "\\n"`. Both sides first send the header
`/multistream/1.0.0`; the initiator then proposes protocols one at a time, and the responder echoes the
one it accepts or answers `na`. The initiator may send its first proposal right behind its header without
waiting ("pipelining", what go-multistream's lazy client does): this saves a round trip on every
connection upgrade and on every new stream, and is how `select` always works.

Differences from py-libp2p 0.8.1's `Multiselect`/`MultiselectClient` that made us own this:
* every message is bounded (`MAX_MESSAGE`, 1 KiB, plenty for protocol ids); 0.8.1 reads whatever length
  the peer announces (a varint of 2^60 makes it buffer until the negotiation timeout);
* the number of proposals a responder answers is bounded (`MAX_PROPOSALS`);
* the client never waits for the header before proposing (one round trip instead of two), and the
  responder answers a pipelined proposal together with its header (one write instead of two);
* reads never go past the negotiation (varint bytes one at a time, then exactly the body), so the
  bytes that follow belong untouched to the next layer (TLS, Noise, yamux, the application).

`ByteStream` is the minimal I/O this needs; `read(n)` returns at most n bytes and `b""` at EOF.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Protocol

from nabu_py.errors import DecodeError
from nabu_py.multiformats import varint
from nabu_py.p2p.errors import ProtocolNegotiationError

__all__ = [
    "MAX_MESSAGE",
    "MAX_PROPOSALS",
    "NA",
    "PROTOCOL_ID",
    "ByteStream",
    "encode_message",
    "handle",
    "read_message",
    "select",
]

PROTOCOL_ID: Final = "/multistream/1.0.0"
NA: Final = "na"
LS: Final = "ls"
MAX_MESSAGE: Final = 1024
"""Largest multistream message body accepted, newline included (protocol ids are ~10-60 bytes)."""
MAX_PROPOSALS: Final = 32
"""Proposals a responder answers on one stream before giving up on the peer."""


class ByteStream(Protocol):
    """What negotiation needs from a connection or stream."""

    async def read(self, n: int) -> bytes:
        """At most `n` bytes; `b""` at EOF."""

    async def write(self, data: bytes) -> None:
        """Write all of `data`."""


def encode_message(text: str) -> bytes:
    """Frame one message (protocol id, `na`, `ls`)."""
    body = text.encode("utf-8") + b"\n"
    if len(body) > MAX_MESSAGE:
        raise ValueError(f"multistream message longer than {MAX_MESSAGE} bytes")
    return varint.encode(len(body)) + body


async def _read_exactly(stream: ByteStream, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.read(n - len(buf))
        if not chunk:
            raise ProtocolNegotiationError("stream ended during protocol negotiation")
        buf += chunk
    return bytes(buf)


async def read_message(stream: ByteStream) -> str:
    """Read one message; DecodeError if malformed or too long, ProtocolNegotiationError at EOF."""
    length = 0
    for shift in (0, 7):
        b = (await _read_exactly(stream, 1))[0]
        length |= (b & 0x7F) << shift
        if not b & 0x80:
            break
    else:
        raise DecodeError("multistream message length does not fit in two varint bytes")
    if length == 0 or length > MAX_MESSAGE:
        raise DecodeError(f"multistream message length {length} outside 1..{MAX_MESSAGE}")
    body = await _read_exactly(stream, length)
    if body[-1:] != b"\n":
        raise DecodeError("multistream message not terminated by a newline")
    try:
        return body[:-1].decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("multistream message is not UTF-8") from None


async def select(stream: ByteStream, protocols: Collection[str]) -> str:
    """Initiator: agree on the first of `protocols` the responder supports (pipelined proposal)."""
    order = list(protocols)
    if not order:
        raise ValueError("no protocols to propose")
    await stream.write(encode_message(PROTOCOL_ID) + encode_message(order[0]))
    header = await read_message(stream)
    if header != PROTOCOL_ID:
        raise ProtocolNegotiationError(f"remote does not speak {PROTOCOL_ID} (sent {header[:64]!r})")
    for i, proto in enumerate(order):
        if i:
            await stream.write(encode_message(proto))
        reply = await read_message(stream)
        if reply == proto:
            return proto
        if reply != NA:
            raise ProtocolNegotiationError(f"unexpected multistream reply {reply[:64]!r} to {proto!r}")
    raise ProtocolNegotiationError(f"remote supports none of {order}")


async def handle(stream: ByteStream, supported: Collection[str]) -> str:
    """Responder: answer proposals until one in `supported` is chosen; return it.

    Our header goes out as soon as the initiator's has arrived; if the initiator pipelined its first
    proposal (`stream.buffered()`, when the stream offers it, says bytes are already waiting), the header
    is sent together with the answer in one write instead.
    """
    header = await read_message(stream)
    if header != PROTOCOL_ID:
        raise ProtocolNegotiationError(f"remote does not speak {PROTOCOL_ID} (sent {header[:64]!r})")
    pending = encode_message(PROTOCOL_ID)
    buffered = getattr(stream, "buffered", None)
    if not callable(buffered) or not buffered():
        await stream.write(pending)
        pending = b""
    for _ in range(MAX_PROPOSALS):
        proposal = await read_message(stream)
        if proposal in supported:
            await stream.write(pending + encode_message(proposal))
            return proposal
        if proposal == LS:
            listing = b"".join(encode_message(p) for p in sorted(supported))
            await stream.write(pending + varint.encode(len(listing) + 1) + listing + b"\n")
        else:
            await stream.write(pending + encode_message(NA))
        pending = b""
    raise ProtocolNegotiationError(f"peer made more than {MAX_PROPOSALS} proposals")
