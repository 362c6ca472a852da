"""Stock py-libp2p 0.8.1 hosts, built the way spec/py-libp2p.md §1 recommends (explicit security, yamux),
to show in the regression tests that each defect fixed in nabu_py/p2p/libp2p_fixes.py is real."""

from __future__ import annotations

from typing import Any

import multiaddr
from libp2p import generate_new_ed25519_identity, new_host
from libp2p.abc import IHost
from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_ID
from libp2p.stream_muxer.yamux.yamux import Yamux


def stock_host(**kw: Any) -> IHost:
    """A stock host speaking Noise + py-libp2p's own yamux, one connection per peer."""
    kp = generate_new_ed25519_identity()
    kw.setdefault("connection_config", ConnectionConfig(max_connections_per_peer=1))
    return new_host(
        key_pair=kp,
        sec_opt={NOISE_ID: NoiseTransport(kp, noise_privkey=x25519_key_pair().private_key)},
        muxer_opt={TProtocol(YAMUX_ID): Yamux},
        **kw,
    )


def listen_addr(port: int = 0, ip: str = "127.0.0.1") -> multiaddr.Multiaddr:
    proto = "ip6" if ":" in ip else "ip4"
    return multiaddr.Multiaddr(f"/{proto}/{ip}/tcp/{port}")


def full_addr(host: IHost) -> multiaddr.Multiaddr:
    addr = host.get_addrs()[0]
    if "/p2p/" not in str(addr):
        addr = addr.encapsulate(multiaddr.Multiaddr(f"/p2p/{host.get_id()}"))
    return addr


def info(host: IHost) -> PeerInfo:
    return info_from_p2p_addr(full_addr(host))


def tcp_port(host: IHost) -> int:
    return int(host.get_addrs()[0].value_for_protocol("tcp"))
