"""multistream-select (nabu_py/p2p/multistream.py): wire format, pipelining, bounds, misbehaviour."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from nabu_py.errors import DecodeError
from nabu_py.p2p import multistream
from nabu_py.p2p.errors import ProtocolNegotiationError
from nabu_py.p2p.multistream import PROTOCOL_ID, encode_message


class Pipe:
    """ByteStream over one end of an in-memory stream pair, recording every write."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.writes: list[bytes] = []
        self.pending = b""

    async def read(self, n: int) -> bytes:
        if not self.pending:
            self.pending = bytes(await self.stream.receive_some(65536))
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    async def write(self, data: bytes) -> None:
        self.writes.append(data)
        await self.stream.send_all(data)

    def buffered(self) -> int:
        return len(self.pending)


def pipes() -> tuple[Pipe, Pipe]:
    a, b = trio.testing.memory_stream_pair()
    return Pipe(a), Pipe(b)


def test_encoding_matches_the_spec() -> None:
    assert encode_message("/multistream/1.0.0") == b"\x13/multistream/1.0.0\n"
    assert encode_message("na") == b"\x03na\n"
    with pytest.raises(ValueError):
        encode_message("x" * 2000)


async def test_select_pipelines_header_and_first_proposal() -> None:
    client, server = pipes()
    async with trio.open_nursery() as nursery:
        result: list[str] = []

        async def serve() -> None:
            result.append(await multistream.handle(server, {"/b/1.0.0"}))

        nursery.start_soon(serve)
        assert await multistream.select(client, ["/a/1.0.0", "/b/1.0.0"]) == "/b/1.0.0"
    assert result == ["/b/1.0.0"]
    # one write for header + first proposal, one for the second proposal
    assert client.writes[0] == encode_message(PROTOCOL_ID) + encode_message("/a/1.0.0")
    assert client.writes[1:] == [encode_message("/b/1.0.0")]
    # the responder answered the pipelined proposal together with its header
    assert server.writes[0] == encode_message(PROTOCOL_ID) + encode_message("na")


async def test_responder_sends_its_header_at_once_to_a_non_pipelining_client() -> None:
    client, server = pipes()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(multistream.handle, server, {"/x"})
        await client.write(encode_message(PROTOCOL_ID))  # a cautious client waits for the header first
        assert await multistream.read_message(client) == PROTOCOL_ID
        await client.write(encode_message("/x"))
        assert await multistream.read_message(client) == "/x"


async def test_ls_lists_supported_protocols() -> None:
    client, server = pipes()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(multistream.handle, server, {"/p/2", "/p/1"})
        await client.write(encode_message(PROTOCOL_ID) + encode_message("ls"))
        assert await multistream.read_message(client) == PROTOCOL_ID
        listing = await multistream.read_message(client)
        assert listing == (encode_message("/p/1") + encode_message("/p/2")).decode()
        await client.write(encode_message("/p/1"))
        assert await multistream.read_message(client) == "/p/1"


async def test_no_common_protocol() -> None:
    client, server = pipes()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_expect_eof_failure, server)
        with pytest.raises(ProtocolNegotiationError, match="none of"):
            await multistream.select(client, ["/a", "/b"])
        await client.stream.aclose()


async def _expect_eof_failure(server: Pipe) -> None:
    with pytest.raises(ProtocolNegotiationError):
        await multistream.handle(server, {"/c"})


async def test_wrong_header_is_rejected() -> None:
    client, server = pipes()
    await client.write(encode_message("/multistream/2.0.0") + encode_message("/a"))
    with pytest.raises(ProtocolNegotiationError, match="does not speak"):
        await multistream.handle(server, {"/a"})


@pytest.mark.parametrize(
    "wire",
    [
        b"\xff\xff\x03",  # length needs three varint bytes
        b"\x00",  # empty message
        b"\x88\x08" + b"x" * 1032,  # 1032 bytes: over the 1 KiB bound
        b"\x03abc",  # no newline terminator
        b"\x03\xff\xfe\n",  # not UTF-8
    ],
    ids=["varint", "empty", "too-long", "newline", "utf8"],
)
async def test_malformed_messages_are_decode_errors(wire: bytes) -> None:
    client, server = pipes()
    await client.write(wire)
    with pytest.raises(DecodeError):
        await multistream.read_message(server)


async def test_responder_bounds_the_number_of_proposals() -> None:
    client, server = pipes()
    async with trio.open_nursery() as nursery:

        async def spam() -> None:
            await client.write(encode_message(PROTOCOL_ID))
            for i in range(multistream.MAX_PROPOSALS + 1):
                await client.write(encode_message(f"/nope/{i}"))

        nursery.start_soon(spam)
        nursery.start_soon(_drain, client)
        with pytest.raises(ProtocolNegotiationError, match="more than"):
            await multistream.handle(server, {"/yes"})
        nursery.cancel_scope.cancel()


async def _drain(p: Pipe) -> None:
    while await p.stream.receive_some(65536):
        pass


async def test_reads_never_pass_the_negotiation() -> None:
    client, server = pipes()
    await client.write(encode_message(PROTOCOL_ID) + encode_message("/a") + b"APPLICATION BYTES")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_drain, client)
        assert await multistream.handle(server, {"/a"}) == "/a"
        assert server.pending == b"APPLICATION BYTES"
        nursery.cancel_scope.cancel()


async def test_eof_during_negotiation() -> None:
    client, server = pipes()
    await client.write(encode_message(PROTOCOL_ID)[:5])
    await client.stream.aclose()
    with pytest.raises(ProtocolNegotiationError, match="ended"):
        await multistream.handle(server, {"/a"})
