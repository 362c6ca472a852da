"""Multiaddr helpers (nabu_py/p2p/addrs.py)."""

from __future__ import annotations

import pytest
from multiaddr import Multiaddr

from nabu_py.errors import DecodeError
from nabu_py.p2p.addrs import parse_multiaddr, split_peer, with_peer
from nabu_py.p2p.peer_id import PeerId

PID = "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv"
RELAY = "QmfXbAwNjJLXfesgztEHe8HwgVDCMMpZ9Eax1HYq6hn9uE"


def test_legacy_ipfs_spelling_and_bytes() -> None:
    m = parse_multiaddr(f"/ip4/104.131.131.82/tcp/4001/ipfs/{PID}")
    assert str(m) == f"/ip4/104.131.131.82/tcp/4001/p2p/{PID}"
    assert parse_multiaddr(m.to_bytes()) == m
    assert parse_multiaddr(m) is m


@pytest.mark.parametrize(
    "bad", ["", "/ip4/1.2.3.4/tcpx/1", "ip4/1.2.3.4", "/ip4/" + "1" * 2000, b"\xff\xff\xff"]
)
def test_malformed_multiaddrs(bad: str | bytes) -> None:
    with pytest.raises(DecodeError):
        parse_multiaddr(bad)


def test_split_peer() -> None:
    transport, peer = split_peer(f"/ip6/::1/tcp/4001/p2p/{PID}")
    assert str(transport) == "/ip6/::1/tcp/4001" and peer == PeerId.parse(PID)
    assert split_peer("/ip4/1.2.3.4/tcp/1") == (Multiaddr("/ip4/1.2.3.4/tcp/1"), None)
    assert split_peer(f"/p2p/{PID}") == (None, PeerId.parse(PID))
    circuit, target = split_peer(f"/ip4/1.2.3.4/tcp/1/p2p/{RELAY}/p2p-circuit/p2p/{PID}")
    assert str(circuit) == f"/ip4/1.2.3.4/tcp/1/p2p/{RELAY}/p2p-circuit" and target == PeerId.parse(PID)
    assert (
        str(with_peer(Multiaddr("/ip4/1.2.3.4/tcp/1"), PeerId.parse(PID))) == f"/ip4/1.2.3.4/tcp/1/p2p/{PID}"
    )
