"""Hypothesis: every p2p decoder fed arbitrary input raises only its documented error (DecodeError, or
SecurityError for certificates), and the encoders round-trip."""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from nabu_py.errors import DecodeError
from nabu_py.p2p import multistream
from nabu_py.p2p.addrs import parse_multiaddr
from nabu_py.p2p.errors import ProtocolNegotiationError, SecurityError
from nabu_py.p2p.host import P2PHost
from nabu_py.p2p.identity import (
    HostIdentity,
    KeyType,
    canonical_public_key,
    decode_key,
    decode_signed_key,
    encode_key,
    encode_signed_key,
    verify_certificate,
)
from nabu_py.p2p.peer_id import PeerId
from tests.helpers.fuzz import fuzz_settings, round_trip_settings

PEER = HostIdentity.generate(bytes(32)).peer_id


@fuzz_settings
@given(st.text(max_size=120))
def test_peer_id_parse_text(text: str) -> None:
    try:
        PeerId.parse(text)
    except DecodeError:
        pass


@fuzz_settings
@given(st.binary(max_size=80))
def test_peer_id_from_bytes(data: bytes) -> None:
    try:
        pid = PeerId.from_bytes(data)
    except DecodeError:
        return
    assert PeerId.parse(pid.to_cid_string()) == pid == PeerId.parse(str(pid))


@fuzz_settings
@given(st.binary(max_size=200))
def test_key_decoders(data: bytes) -> None:
    for decode in (decode_key, canonical_public_key, decode_signed_key):
        try:
            decode(data)
        except DecodeError:
            pass


@fuzz_settings
@given(st.binary(max_size=600))
def test_certificate_verification_only_raises_security_error(data: bytes) -> None:
    try:
        verify_certificate(data)
    except SecurityError:
        pass


@fuzz_settings
@given(st.binary(max_size=120))
def test_binary_multiaddr(data: bytes) -> None:
    try:
        parse_multiaddr(data)
    except DecodeError:
        pass


@fuzz_settings
@given(st.binary(max_size=400))
def test_identify_message_parser(data: bytes) -> None:
    try:
        P2PHost._parse_identify(PEER, data, require_key=False)
    except DecodeError:
        pass


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read(self, n: int) -> bytes:
        out, self.data = self.data[:n], self.data[n:]
        return out

    async def write(self, data: bytes) -> None:
        return None


@fuzz_settings
@given(st.binary(max_size=64))
def test_multistream_reader(data: bytes) -> None:
    async def run() -> None:
        try:
            await multistream.handle(_Bytes(data), {"/a"})
        except (DecodeError, ProtocolNegotiationError):
            pass

    trio.run(run)


@round_trip_settings
@given(st.sampled_from(list(KeyType)), st.binary(max_size=300))
def test_key_encoding_round_trip(key_type: KeyType, data: bytes) -> None:
    assert decode_key(encode_key(key_type, data)) == (key_type, data)


@round_trip_settings
@given(st.binary(max_size=2000), st.binary(max_size=600))
def test_signed_key_round_trip(pub: bytes, sig: bytes) -> None:
    assert decode_signed_key(encode_signed_key(pub, sig)) == (pub, sig)


@fuzz_settings
@given(st.binary(max_size=300))
def test_yamux_survives_arbitrary_bytes(data: bytes) -> None:
    """Whatever a peer sends, the session either keeps going or closes itself; nothing else escapes."""
    from libp2p.peer.id import ID

    from nabu_py.p2p.yamux import YamuxConfig, YamuxConnection
    from tests.helpers.p2p import memory_secure_pair

    async def run() -> None:
        ours, theirs = memory_secure_pair()
        conn = YamuxConnection(ours, ID(b"\x00\x01x"), config=YamuxConfig(keepalive_interval=None))  # type: ignore[arg-type]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn.start)
            await conn.event_started.wait()
            await theirs.write(data)
            await trio.testing.wait_all_tasks_blocked()  # the reader has consumed everything it can
            try:
                while True:
                    conn._accept_recv.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                pass
            await conn.close()
        assert conn.is_closed

    trio.run(run)
